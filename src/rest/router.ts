/**
 * The feature-extraction-server (FES) REST job API, declared in one place. Mount it at `/api`:
 *
 * | method | path (under /api)                                            | answer                                  |
 * | ------ | ------------------------------------------------------------ | --------------------------------------- |
 * | GET    | /tasks                                                       | the three task names below              |
 * | GET    | /models                                                      | model names, kebab case                 |
 * | GET    | /tasks/{task}/models                                         | model names, kebab case                 |
 * | GET    | /models/{model}/tasks                                        | the three task names                    |
 * | POST   | /tasks/{task}/{model}/jobs                                   | `{"id", "status": "starting"}`          |
 * | POST   | /tasks/{task}/batched/{model}/jobs                           | `{"id", "status": "starting"}`          |
 * | GET    | /tasks/{task}/jobs/{id}                                      | `{"status", "result"?: output}`         |
 * | GET    | /tasks/{task}/batched/jobs/{id}                              | `{"status", "result"?: [output, …]}`    |
 * | POST   | /legacy/tasks/{task}/{model}/jobs                            | `output` once done (synchronous)        |
 * | POST   | /models/{model}/start                                        | 200, empty, once starting (admin)       |
 * | POST   | /models/{model}/stop                                         | 200, empty, once stopping (admin)       |
 * | GET    | /models/{model}/status                                       | `{"status", "jobs": [{"id", "status"}]}`|
 *
 * Tasks, their bodies and their outputs (one per input, in input order on the batched routes):
 * - `zero-shot-image-classification`: `{"image", "classes", "config"?}` → `{probabilities}`
 * - `image-embedding`: `{"image", "config"?}` → `{embedding}`
 * - `text-embedding`: `{"text", "config"?}` → `{embedding}`
 * with `image` a data URL, bare base64 or an http(s) URL (fetched by the server, docs/image-urls.md) and `image`/`text` lists on the batched routes. A job is read on its
 * own task's routes (another task's: 404 NOT_FOUND). Task and model names are accepted in kebab or snake case. Status mapping and error
 * shapes: src/rest/shapes.ts and src/rest/errors.ts. The router parses its own JSON bodies (bounded in bytes and in
 * structure, src/jsonShape.ts) so that
 * malformed or oversized ones are answered by its error exit: do not put another JSON parser in front of it.
 */
import express, { type Router } from 'express';
import { jsonShapeVerifier } from '../jsonShape.js';
import type { RestDeps } from './deps.js';
import { restErrorHandler, restNotFoundHandler } from './errors.js';
import { createRestHandlers } from './handlers.js';

export type { ClipModels, JobSubmitter, RestDeps } from './deps.js';

/** Builds the REST router; every answer, errors included, is JSON. */
export function createRestRouter(deps: RestDeps): Router {
  const { maxBodyBytes } = deps;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0) {
    throw new TypeError(
      `createRestRouter expects maxBodyBytes to be a positive integer, but got ${String(maxBodyBytes)}`,
    );
  }
  const handlers = createRestHandlers(deps);
  const router = express.Router();

  // The structure is checked on the raw bytes before they are parsed: a body of millions of tiny values would
  // otherwise hold the event loop for seconds in JSON.parse, only to be refused by validation afterwards.
  router.use(express.json({ limit: maxBodyBytes, strict: true, verify: jsonShapeVerifier(deps.jsonLimits) }));

  router.get('/tasks', handlers.listTasks);
  router.get('/models', handlers.listModels);
  router.get('/tasks/:task/models', handlers.listModelsForTask);
  router.get('/models/:model/tasks', handlers.listTasksForModel);
  router.post('/models/:model/start', handlers.startModel);
  router.post('/models/:model/stop', handlers.stopModel);
  router.get('/models/:model/status', handlers.modelStatus);

  // The batched routes come first: `batched` would otherwise be taken for a model name.
  router.post('/tasks/:task/batched/:model/jobs', handlers.newJob(true));
  router.get('/tasks/:task/batched/jobs/:id', handlers.getJob(true));
  router.post('/tasks/:task/:model/jobs', handlers.newJob(false));
  router.get('/tasks/:task/jobs/:id', handlers.getJob(false));

  router.post('/legacy/tasks/:task/:model/jobs', handlers.runLegacyJob);

  router.use(restNotFoundHandler());
  router.use(restErrorHandler(deps.logger));
  return router;
}
