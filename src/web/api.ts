/**
 * @file The page's only way to the server: the public GraphQL API. Queries and the `classify` mutation go over
 * HTTP (the mutation as a GraphQL multipart request, the image as a file upload), job updates come over
 * graphql-ws. An API key, when set, goes as `Authorization: Bearer …` on HTTP and as `connectionParams.apiKey`
 * on the websocket.
 */
import { createClient, type Client } from 'graphql-ws';
import type { PendingImage } from './imageSources.js';

export type JobStatus = 'QUEUED' | 'RUNNING' | 'COMPLETE' | 'FAILED' | 'CANCELLED';

export interface JobUpdate {
  id: string;
  status: JobStatus;
  model: string;
  classes: string[];
  result: { images: { probabilities: number[] }[] } | null;
  error: { code: string; message: string } | null;
}

export interface ModelSummary {
  name: string;
  isDefault: boolean;
  ready: boolean;
}

/** A refusal or failure as the page shows it: the server's code (or a page-side one) and its message. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface GraphqlAnswer<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: unknown } }[];
}

const JOB_FIELDS = 'id status model classes result { images { probabilities } } error { code message }';
const CLASSIFY = `mutation Classify($input: ClassifyInput!) { classify(input: $input) { ${JOB_FIELDS} } }`;
const JOB_UPDATED = `subscription JobUpdated($id: ID!) { jobUpdated(id: $id) { ${JOB_FIELDS} } }`;
const MODELS = 'query Models { models { name isDefault ready } }';
const CLASSIFIERS = 'query Classifiers { classifiers { id name preset status classCount } }';

/** A stored classifier or a preset, as the page offers it instead of typed classes. */
export interface ClassifierSummary {
  id: string;
  name: string;
  preset: boolean;
  status: string;
  classCount: number;
}

export interface ClassifyRequest {
  image: PendingImage;
  classes: string[];
  /** A stored classifier instead of `classes`. */
  classifier: string | undefined;
  model: string | undefined;
  promptTemplate: string | undefined;
}

export interface JobWatcher {
  next(job: JobUpdate): void;
  error(error: ApiError): void;
}

export interface ApiOptions {
  /** Path of the GraphQL endpoint (HTTP and websocket), e.g. `/graphql`. */
  endpoint: string;
}

export class Api {
  readonly #httpUrl: string;
  readonly #wsUrl: string;
  #apiKey = '';
  #ws: Client | null = null;

  constructor(options: ApiOptions) {
    this.#httpUrl = new URL(options.endpoint, window.location.href).href;
    // Same host as the page: http → ws, https → wss (behind a TLS proxy too).
    this.#wsUrl = `${window.location.protocol === 'https:' ? 'wss:' : 'ws:'}//${window.location.host}${options.endpoint}`;
  }

  /** The key for later requests; a new key reconnects the websocket (it is sent once, at connection_init). */
  setApiKey(key: string): void {
    const trimmed = key.trim();
    if (trimmed === this.#apiKey) return;
    this.#apiKey = trimmed;
    void this.#ws?.dispose();
    this.#ws = null;
  }

  async models(): Promise<ModelSummary[]> {
    const answer = await this.#post<{ models: ModelSummary[] }>(
      { 'content-type': 'application/json' },
      JSON.stringify({ query: MODELS, operationName: 'Models' }),
    );
    return answer.models;
  }

  /** The presets and the caller's saved classifiers; none where the server keeps no classifiers. */
  async classifiers(): Promise<ClassifierSummary[]> {
    const answer = await this.#post<{ classifiers: ClassifierSummary[] }>(
      { 'content-type': 'application/json' },
      JSON.stringify({ query: CLASSIFIERS, operationName: 'Classifiers' }),
    );
    return answer.classifiers;
  }

  /**
   * Creates a job for one image: a file as a file upload (no base64), a URL as `image` (the server fetches it).
   * Resolves with the job as created.
   */
  async classify(request: ClassifyRequest): Promise<JobUpdate> {
    const input: Record<string, unknown> =
      request.classifier === undefined ? { classes: request.classes } : { classifier: request.classifier };
    if (request.model !== undefined) input.model = request.model;
    // A classifier brings its own templates.
    if (request.promptTemplate !== undefined && request.classifier === undefined)
      input.prompt = { template: request.promptTemplate };
    if (request.image.kind === 'url') {
      input.image = request.image.url;
      const answer = await this.#post<{ classify: JobUpdate }>(
        { 'content-type': 'application/json' },
        JSON.stringify({ query: CLASSIFY, operationName: 'Classify', variables: { input } }),
      );
      return answer.classify;
    }
    input.files = [null];
    const form = new FormData();
    form.append('operations', JSON.stringify({ query: CLASSIFY, operationName: 'Classify', variables: { input } }));
    form.append('map', JSON.stringify({ 0: ['variables.input.files.0'] }));
    form.append('0', request.image.file, request.image.file.name);
    // Apollo's CSRF prevention: a multipart request must carry a preflight header.
    const answer = await this.#post<{ classify: JobUpdate }>({ 'apollo-require-preflight': 'true' }, form);
    return answer.classify;
  }

  /** Follows a job until it finishes; returns a function that stops following. */
  watchJob(id: string, watcher: JobWatcher): () => void {
    return this.#socket().subscribe<{ jobUpdated: JobUpdate }>(
      { query: JOB_UPDATED, operationName: 'JobUpdated', variables: { id } },
      {
        next: (message) => {
          const job = message.data?.jobUpdated;
          if (job) watcher.next(job);
          else if (message.errors?.[0]) watcher.error(toApiError(message.errors[0]));
        },
        error: (error: unknown) => watcher.error(socketError(error)),
        complete: () => undefined,
      },
    );
  }

  #socket(): Client {
    this.#ws ??= createClient({
      url: this.#wsUrl,
      lazy: true,
      retryAttempts: 3,
      connectionParams: () => (this.#apiKey === '' ? {} : { apiKey: this.#apiKey }),
    });
    return this.#ws;
  }

  async #post<T>(headers: Record<string, string>, body: BodyInit): Promise<T> {
    const allHeaders: Record<string, string> = {
      accept: 'application/graphql-response+json, application/json',
      ...headers,
    };
    if (this.#apiKey !== '') allHeaders.authorization = `Bearer ${this.#apiKey}`;
    let response: Response;
    try {
      response = await fetch(this.#httpUrl, { method: 'POST', headers: allHeaders, body });
    } catch {
      throw new ApiError('NETWORK_ERROR', 'The server could not be reached');
    }
    let answer: GraphqlAnswer<T>;
    try {
      answer = (await response.json()) as GraphqlAnswer<T>;
    } catch {
      throw new ApiError('BAD_RESPONSE', `The server answered ${response.status} without a GraphQL body`);
    }
    const first = answer.errors?.[0];
    if (first !== undefined) throw toApiError(first);
    if (answer.data === undefined || answer.data === null)
      throw new ApiError('BAD_RESPONSE', `The server answered ${response.status} without data`);
    return answer.data;
  }
}

function toApiError(error: { message: string; extensions?: { code?: unknown } }): ApiError {
  const code = typeof error.extensions?.code === 'string' ? error.extensions.code : 'ERROR';
  return new ApiError(code, error.message);
}

/** graphql-ws reports GraphQL errors as an array, a refused or lost connection as a CloseEvent. */
function socketError(error: unknown): ApiError {
  if (Array.isArray(error) && error.length > 0) return toApiError(error[0] as { message: string });
  if (error instanceof CloseEvent) {
    if (error.code === 4401 || error.code === 4403)
      return new ApiError('UNAUTHENTICATED', error.reason || 'The API key was refused');
    return new ApiError(
      'CONNECTION_CLOSED',
      `The live connection closed (${error.code}${error.reason ? `: ${error.reason}` : ''})`,
    );
  }
  return new ApiError('CONNECTION_FAILED', 'The live connection to the server failed');
}
