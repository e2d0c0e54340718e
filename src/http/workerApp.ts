/**
 * The worker's Express app: GET /health, GET /ready and GET /metrics, to the hosts ALLOWED_HOSTS lets in; anything
 * else is 404 naming what a worker serves.
 */
import express, { type Express } from 'express';
import { ErrorCode } from '../errors.js';
import { refuseForeignHosts } from './allowedHosts.js';
import { createHealthRouter, type Readiness } from './health.js';
import type { Metrics } from './metrics.js';

export interface WorkerAppOptions {
  isAllowedHost: (hostHeader: string | undefined) => boolean;
  /** What /ready answers; called per request. */
  readiness: () => Promise<Readiness>;
  metrics: Metrics;
}

export function createWorkerApp(options: WorkerAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(refuseForeignHosts(options.isAllowedHost));
  app.use(createHealthRouter({ readiness: options.readiness }));
  app.get('/metrics', options.metrics.handler);
  app.use((req, res) => {
    res.status(404).json({
      error: {
        code: ErrorCode.NotFound,
        message: `No route ${req.method} ${req.path} (a worker serves /health, /ready and /metrics)`,
      },
    });
  });
  return app;
}
