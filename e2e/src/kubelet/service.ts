// kube-proxy's part on the local node: a Service is a stable host port whose connections go to
// whichever pod the Service's owner picks at connect time (a TCP's ready replicas in turn, a
// StatefulSet's pod), through that pod's inbound socket.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { freePort } from '../ports.ts';

export class ServiceProxy {
  readonly port: number;
  private readonly server: Server;
  private readonly connections = new Set<Socket>();

  private constructor(port: number, backend: () => string | undefined) {
    this.port = port;
    this.server = createServer((client) => {
      const socket = backend();
      if (!socket) return client.destroy();
      const upstream = createConnection(socket);
      for (const sock of [client, upstream]) {
        this.connections.add(sock);
        sock.on('close', () => this.connections.delete(sock));
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
  }

  /** Listens on a free port of 127.0.0.1; `backend` names the pod socket for each new connection (none: refused). */
  static async open(backend: () => string | undefined): Promise<ServiceProxy> {
    const proxy = new ServiceProxy(await freePort(), backend);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(proxy.port, '127.0.0.1', resolve);
    });
    return proxy;
  }

  /** close() alone would wait for open connections (clients keep them alive): they end first. */
  async close(): Promise<void> {
    for (const c of this.connections) c.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
