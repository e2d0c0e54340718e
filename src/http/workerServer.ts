/**
 * ROLE=worker: loads the models, consumes the Redis queue with a JobWorker, publishes job changes; serves only
 * GET /health, GET /ready (models warm and Redis reachable) and GET /metrics on PORT, to the hosts ALLOWED_HOSTS lets
 * in and within the request deadlines (HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS), as the API does.
 *
 * stop(): stop taking jobs and finish the running batch (bounded by DRAIN_TIMEOUT_MS; past it, the jobs are left
 * to BullMQ's stalled-job recovery on the other workers), hand unstarted jobs back (they never left Redis),
 * then release the ONNX sessions and the connections. Idempotent.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { allowedHostNames, type Config } from '../config.js';
import { ErrorCode } from '../errors.js';
import { createLogger } from '../logger.js';
import { createHostCheck, refuseForeignHosts } from './allowedHosts.js';
import { createHealthRouter, type Readiness } from './health.js';
import { createMetrics } from './metrics.js';
import {
  createClip,
  createHttpServer,
  jobsFromConfig,
  type CreateServerOptions,
  type Server,
  type ServerAddress,
} from './server.js';

export function createWorkerServer(config: Config, options: CreateServerOptions = {}): Server {
  const logger = options.logger ?? createLogger(config.logLevel);
  if (config.redisUrl === undefined) throw new TypeError('ROLE=worker needs REDIS_URL');
  const clip = createClip(config, logger);
  const jobsLayer = jobsFromConfig(config, 'worker', clip, logger);
  const jobs = jobsLayer.service;
  let stopping = false;
  const readiness = async (): Promise<Readiness> => {
    if (stopping) return { ready: false, reason: 'shutting down' };
    const models = clip.readiness();
    if (!models.ready) return models;
    if (!(await jobsLayer.reachable())) return { ready: false, reason: 'Redis is unreachable' };
    return models;
  };
  const metrics = createMetrics({ clip, jobs, logger });
  const app = express();
  app.disable('x-powered-by');
  app.use(refuseForeignHosts(createHostCheck(allowedHostNames(config))));
  app.use(createHealthRouter({ readiness }));
  app.get('/metrics', metrics.handler);
  app.use((req, res) => {
    res.status(404).json({
      error: {
        code: ErrorCode.NotFound,
        message: `No route ${req.method} ${req.path} (a worker serves /health, /ready and /metrics)`,
      },
    });
  });
  const httpServer = createHttpServer(config, app);

  let started: Promise<ServerAddress> | null = null;
  let stopped: Promise<void> | null = null;

  async function doStart(): Promise<ServerAddress> {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(config.port, config.host, () => resolve());
    });
    const { port } = httpServer.address() as AddressInfo;
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    const address = { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, port };
    logger.info({ url: address.url, model: clip.defaultModelName }, 'worker listening; loading models');
    if (!(await jobsLayer.connect(5_000)))
      logger.warn('Redis is unreachable at start; the worker takes jobs once it is back');
    // APIs load no model: they learn each model's status and metadata from what the workers register.
    const registry = jobsLayer.models;
    if (registry !== undefined) {
      registry.register(randomUUID(), () => clip.models());
      clip.events.on('modelStatusChanged', () => registry.refresh());
      // A start or stop sent to any API: applied here, to this worker's copy of the model.
      registry.onControl(({ model, change }) => {
        if (clip.resolveModelName(model) === undefined) return;
        const done = change === 'start' ? clip.startModel(model) : clip.stopModel(model);
        done.catch((error: unknown) => logger.warn({ model, change, err: error }, 'model control did not complete'));
      });
    }
    await clip.start();
    jobsLayer.startWorker();
    logger.info({ url: address.url }, 'worker ready');
    return address;
  }

  async function doStop(): Promise<void> {
    stopping = true;
    await started?.catch(() => undefined);
    const failed = await jobs.drain(config.drainTimeoutMs);
    if (failed > 0) logger.warn({ failedJobs: failed }, 'drain timed out; unfinished jobs failed');
    if (httpServer.listening) {
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    }
    await clip.stop();
    await jobsLayer.close();
    metrics.dispose();
    logger.info('worker stopped');
  }

  return {
    clip,
    jobs,
    httpServer,
    logger,
    start: () => {
      started ??= doStart();
      return started;
    },
    stop: () => {
      stopped ??= doStop();
      return stopped;
    },
  };
}
