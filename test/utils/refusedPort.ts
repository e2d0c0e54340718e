import net from 'node:net';

/**
 * A loopback port where a connection is refused, and stays refused for the test's duration.
 *
 * Not "listen on port 0, then close": the kernel hands that ephemeral port to the next server any parallel test
 * starts, which then answers (a CI run got a 404 from another test's server instead of ECONNREFUSED). Ports
 * below 1024 are never handed out for port 0 and no test binds one, so the first of these that refuses now is
 * kept. None is on fetch's "bad ports" list, which undici refuses before connecting.
 */
const CANDIDATES = [2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18];

export async function refusedPort(): Promise<number> {
  for (const port of CANDIDATES) {
    if (await refuses(port)) return port;
  }
  throw new Error(`every candidate port (${CANDIDATES.join(', ')}) accepted a connection on 127.0.0.1`);
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}
