/**
 * Loopback image hosts for image-URL tests: `startImageHost` serves given bytes at `/{name}` on 127.0.0.1 (the
 * address tests list in IMAGE_URL_ALLOWED_NETWORKS); `startForbiddenHost` listens on 127.0.0.2 (loopback, never
 * listed) and counts the connections it receives, which must stay 0. Both are closed in the file's afterAll.
 * Nothing here ever sends traffic off loopback.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll } from 'vitest';

export interface LoopbackHost {
  /** `http://<address>:<port>`. */
  url: string;
  port: number;
  /** TCP connections accepted so far. */
  connections(): number;
  /** Request paths received so far, in order. */
  paths: string[];
  close(): Promise<void>;
}

const open = new Set<LoopbackHost>();

afterAll(async () => {
  await Promise.all([...open].map((host) => host.close()));
});

async function listen(address: string, handler: http.RequestListener): Promise<LoopbackHost> {
  const server = http.createServer(handler);
  const sockets = new Set<Socket>();
  let connections = 0;
  const paths: string[] = [];
  server.on('connection', (socket: Socket) => {
    connections += 1;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('request', (req: http.IncomingMessage) => paths.push(req.url ?? ''));
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const port = (server.address() as AddressInfo).port;
  const host: LoopbackHost = {
    url: `http://${address}:${port}`,
    port,
    connections: () => connections,
    paths,
    close: async () => {
      open.delete(host);
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  open.add(host);
  return host;
}

/** Serves `files[name]` at `/{name}` (404 otherwise) on 127.0.0.1. */
export function startImageHost(files: Record<string, Buffer>): Promise<LoopbackHost> {
  return listen('127.0.0.1', (req, res) => {
    const body = files[decodeURIComponent((req.url ?? '/').slice(1))];
    if (body === undefined) res.writeHead(404).end('not found');
    else res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
  });
}

/** A loopback server on 127.0.0.2 that answers an image, so that only the guard stands between it and a job. */
export function startForbiddenHost(body: Buffer): Promise<LoopbackHost> {
  return listen('127.0.0.2', (_req, res) => res.end(body));
}

/** The bytes of a `data:…;base64,` URL. */
export function bytesOfDataUrl(dataUrl: string): Buffer {
  return Buffer.from(dataUrl.slice(dataUrl.indexOf(',') + 1), 'base64');
}
