import net from 'node:net';

/** Host every harness service binds to. */
export const LOOPBACK = '127.0.0.1';

/**
 * Ask the kernel for `count` distinct free TCP ports on `host`: every port is held open until all have been
 * picked, so the returned ports never collide with each other. Another process can still take a port between
 * this call and the moment the service binds it; callers that must be robust retry on "address in use".
 */
export async function freePorts(count: number, host = LOOPBACK): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ port: 0, host, exclusive: true }, () => {
            const address = server.address();
            if (address === null || typeof address === 'string') {
              reject(new Error(`unexpected server address ${String(address)}`));
              return;
            }
            resolve(address.port);
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())),
      ),
    );
  }
}

/** One free TCP port on `host` (see {@link freePorts}). */
export async function freePort(host = LOOPBACK): Promise<number> {
  const [port] = await freePorts(1, host);
  return port;
}

/** True when a TCP connection to host:port is accepted within `timeoutMs`. */
export function canConnect(port: number, host = LOOPBACK, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
