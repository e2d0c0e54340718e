/**
 * Liveness and readiness. `/health` answers 200 while the process serves HTTP at all; `/ready` answers
 * 200 only once the default model is loaded and warmed and the server is not shutting down, else 503
 * with the reason (so load balancers hold traffic during model load and drain).
 */
import express, { type Router } from 'express';

export interface Readiness {
  ready: boolean;
  /** Why not ready; null when ready. */
  reason: string | null;
}

export interface HealthOptions {
  /** The current readiness; called per request, must be cheap and must not throw (a Redis ping at most). */
  readiness: () => Readiness | Promise<Readiness>;
}

export function createHealthRouter(options: HealthOptions): Router {
  const router = express.Router();
  router.get('/health', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ status: 'ok' });
  });
  router.get('/ready', async (_req, res) => {
    const { ready, reason } = await options.readiness();
    res.setHeader('Cache-Control', 'no-store');
    res.status(ready ? 200 : 503).json(ready ? { ready: true } : { ready: false, reason });
  });
  return router;
}
