import { createConnection, createServer, type Socket } from 'node:net';
import { freePort } from './ports.ts';

/**
 * A loopback TCP proxy that can go silent: while stalled it keeps every connection open and
 * accepts new ones, but forwards no byte either way, as a half-dead network path or an
 * apiserver that stopped answering looks to a client. Used to prove that nothing in a
 * controller waits for an answer without a deadline.
 */
export interface StallProxy {
  /** host:port of the proxy. */
  address: string;
  port: number;
  stall(): void;
  close(): Promise<void>;
}

export async function startStallProxy(target: { host: string; port: number }): Promise<StallProxy> {
  let stalled = false;
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const forward = (from: Socket, to: Socket) =>
    from.on('data', (chunk: Buffer) => {
      if (!stalled) to.write(chunk);
    });
  const server = createServer((client) => {
    track(client);
    const upstream = createConnection(target);
    track(upstream);
    forward(client, upstream);
    forward(upstream, client);
    // A black hole tells neither side anything: while stalled, a close does not travel either.
    client.on('close', () => stalled || upstream.destroy());
    upstream.on('close', () => stalled || client.destroy());
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    address: `127.0.0.1:${port}`,
    port,
    stall: () => {
      stalled = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
