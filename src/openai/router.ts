/**
 * The OpenAI-compatible API, declared in one place. Mount it at `/v1` (behind the API-key check, which answers 401
 * `invalid_api_key` in OpenAI's shape):
 *
 * | method | path (under /v1)   | answer                                                                              |
 * | ------ | ------------------ | ----------------------------------------------------------------------------------- |
 * | POST   | /embeddings        | `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model", "usage"}` |
 * | GET    | /models            | `{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}`     |
 * | GET    | /models/{model}    | one model object                                                                    |
 *
 * Request shapes: ./request.ts; answers: ./response.ts; errors (OpenAI's `{"error": {…}}`): ./errors.ts. The
 * router parses its own JSON bodies (their structure bounded first, src/jsonShape.ts) so that malformed, oversized or too complex ones are answered in OpenAI's shape.
 */
import express, { type Router } from 'express';
import { jsonShapeVerifier } from '../jsonShape.js';
import type { OpenAiDeps } from './deps.js';
import { openAiErrorHandler, openAiNotFoundHandler } from './errors.js';
import { createOpenAiHandlers } from './handlers.js';

export function createOpenAiRouter(deps: OpenAiDeps): Router {
  const handlers = createOpenAiHandlers(deps);
  const router = express.Router();
  router.use(express.json({ limit: deps.maxBodyBytes, strict: true, verify: jsonShapeVerifier(deps.jsonLimits) }));
  router.post('/embeddings', handlers.embeddings);
  router.get('/models', handlers.listModels);
  router.get('/models/:model', handlers.getModel);
  router.use(openAiNotFoundHandler());
  router.use(openAiErrorHandler(deps.logger));
  return router;
}
