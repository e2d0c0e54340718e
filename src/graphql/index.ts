/** The graphql folder's public surface, for src/http/ (the app) and scripts/emit-schema.ts. */
export { buildGraphqlSchema, printGraphqlSchema } from './schema.js';
export { createApolloServer } from './apollo.js';
export type { ApolloOptions } from './apollo.js';
export { startGraphqlWs } from './subscriptions.js';
export type { AuthOutcome, GraphqlWs, GraphqlWsOptions } from './subscriptions.js';
export { createContext } from './context.js';
export type { GraphqlContext, GraphqlModels, GraphqlServices } from './context.js';
export { formatGraphqlError, graphqlErrorBody } from './formatError.js';
export type { GraphqlErrorBody } from './formatError.js';
export type { OperationLimits } from './limits.js';
export { documentSizeMiddleware } from './documentLimits.js';
export type { DocumentLimits } from './documentLimits.js';
export { createUploadMiddleware, readUploadedImages, GraphQLUpload, UploadRequestError } from './uploads.js';
export type { ReceivedFile, UploadedFile, UploadLimits } from './uploads.js';
export { FilesField, jobImagesFrom } from './imageSources.js';
export type { ImageSourceFields } from './imageSources.js';
