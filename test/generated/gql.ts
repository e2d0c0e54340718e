/* eslint-disable */
import * as types from './graphql.js';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "fragment JobFields on Job {\n  id\n  status\n  model\n  classes\n  imageCount\n  createdAt\n  startedAt\n  finishedAt\n  expiresAt\n  error {\n    code\n    message\n  }\n  result {\n    images {\n      probabilities\n      top(k: 3) {\n        label\n        probability\n      }\n    }\n  }\n}\n\nmutation Classify($input: ClassifyInput!) {\n  classify(input: $input) {\n    ...JobFields\n  }\n}\n\nquery Job($id: ID!) {\n  job(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Jobs($status: JobStatus, $first: Int, $after: String) {\n  jobs(status: $status, first: $first, after: $after) {\n    nodes {\n      id\n      status\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nmutation CancelJob($id: ID!) {\n  cancelJob(id: $id) {\n    ...JobFields\n  }\n}\n\nsubscription JobUpdated($id: ID!) {\n  jobUpdated(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Models {\n  models {\n    name\n    source\n    precision\n    status\n    ready\n    isDefault\n    embeddingSize\n    contextLength\n    imageSize\n    logitScale\n    scoring\n    logitBias\n    layout\n    error\n  }\n}": typeof types.JobFieldsFragmentDoc,
};
const documents: Documents = {
    "fragment JobFields on Job {\n  id\n  status\n  model\n  classes\n  imageCount\n  createdAt\n  startedAt\n  finishedAt\n  expiresAt\n  error {\n    code\n    message\n  }\n  result {\n    images {\n      probabilities\n      top(k: 3) {\n        label\n        probability\n      }\n    }\n  }\n}\n\nmutation Classify($input: ClassifyInput!) {\n  classify(input: $input) {\n    ...JobFields\n  }\n}\n\nquery Job($id: ID!) {\n  job(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Jobs($status: JobStatus, $first: Int, $after: String) {\n  jobs(status: $status, first: $first, after: $after) {\n    nodes {\n      id\n      status\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nmutation CancelJob($id: ID!) {\n  cancelJob(id: $id) {\n    ...JobFields\n  }\n}\n\nsubscription JobUpdated($id: ID!) {\n  jobUpdated(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Models {\n  models {\n    name\n    source\n    precision\n    status\n    ready\n    isDefault\n    embeddingSize\n    contextLength\n    imageSize\n    logitScale\n    scoring\n    logitBias\n    layout\n    error\n  }\n}": types.JobFieldsFragmentDoc,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment JobFields on Job {\n  id\n  status\n  model\n  classes\n  imageCount\n  createdAt\n  startedAt\n  finishedAt\n  expiresAt\n  error {\n    code\n    message\n  }\n  result {\n    images {\n      probabilities\n      top(k: 3) {\n        label\n        probability\n      }\n    }\n  }\n}\n\nmutation Classify($input: ClassifyInput!) {\n  classify(input: $input) {\n    ...JobFields\n  }\n}\n\nquery Job($id: ID!) {\n  job(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Jobs($status: JobStatus, $first: Int, $after: String) {\n  jobs(status: $status, first: $first, after: $after) {\n    nodes {\n      id\n      status\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nmutation CancelJob($id: ID!) {\n  cancelJob(id: $id) {\n    ...JobFields\n  }\n}\n\nsubscription JobUpdated($id: ID!) {\n  jobUpdated(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Models {\n  models {\n    name\n    source\n    precision\n    status\n    ready\n    isDefault\n    embeddingSize\n    contextLength\n    imageSize\n    logitScale\n    scoring\n    logitBias\n    layout\n    error\n  }\n}"): (typeof documents)["fragment JobFields on Job {\n  id\n  status\n  model\n  classes\n  imageCount\n  createdAt\n  startedAt\n  finishedAt\n  expiresAt\n  error {\n    code\n    message\n  }\n  result {\n    images {\n      probabilities\n      top(k: 3) {\n        label\n        probability\n      }\n    }\n  }\n}\n\nmutation Classify($input: ClassifyInput!) {\n  classify(input: $input) {\n    ...JobFields\n  }\n}\n\nquery Job($id: ID!) {\n  job(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Jobs($status: JobStatus, $first: Int, $after: String) {\n  jobs(status: $status, first: $first, after: $after) {\n    nodes {\n      id\n      status\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nmutation CancelJob($id: ID!) {\n  cancelJob(id: $id) {\n    ...JobFields\n  }\n}\n\nsubscription JobUpdated($id: ID!) {\n  jobUpdated(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Models {\n  models {\n    name\n    source\n    precision\n    status\n    ready\n    isDefault\n    embeddingSize\n    contextLength\n    imageSize\n    logitScale\n    scoring\n    logitBias\n    layout\n    error\n  }\n}"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;