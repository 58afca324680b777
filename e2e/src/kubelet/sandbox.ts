// The "pause" container of a pod run by the local node (node.ts, network.ts). It runs in
// the pod's own network namespace (`bwrap --unshare-net`) and holds it open for the pod's
// containers, which join it with nsenter. Unix sockets are files, so they cross network
// namespaces: this process bridges TCP ports to Unix sockets in the pod's socket directory.
//   outbound: 127.0.0.1:<port> inside the pod  -> <socket> (the runner forwards it to the host's 127.0.0.1:<port>)
//   inbound:  <socket>                         -> <pod IP>:<port> inside the pod (the apiserver, container ports, probes),
//             or 127.0.0.1:<port> when nothing listens on the pod IP (a loopback-only listener, reached as the runner always did)
//   control:  "connect <port>\n" -> "ok\n" | "fail <error>\n" (tcpSocket probes)
//             "outbound <port> <socket>\n" -> "ok\n" | "fail <error>\n" (a Service that appeared after the pod)
// Node builtins only: it starts in a few tens of milliseconds.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

interface SandboxConfig {
  podIP?: string;
  outbound: { port: number; socket: string }[];
  inbound: { port: number; socket: string }[];
  control: string;
  readyFile: string;
}

const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as SandboxConfig;

function bridge(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

function listen(server: Server, target: { port: number; host: string } | string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (typeof target === 'string') server.listen(target, resolve);
    else server.listen(target.port, target.host, resolve);
  });
}

const outbound = (port: number, socket: string) =>
  listen(
    createServer((client) => bridge(client, createConnection(socket))),
    { port, host: '127.0.0.1' },
  );
const servers: Promise<void>[] = [];
for (const { port, socket } of config.outbound) servers.push(outbound(port, socket));
for (const { port, socket } of config.inbound) {
  rmSync(socket, { force: true });
  const server = createServer((client) => {
    const viaPodIp = createConnection({ port, host: config.podIP ?? '127.0.0.1' });
    viaPodIp.once('connect', () => bridge(client, viaPodIp));
    viaPodIp.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' && config.podIP) bridge(client, createConnection({ port, host: '127.0.0.1' }));
      else client.destroy();
    });
  });
  servers.push(listen(server, socket));
}
rmSync(config.control, { force: true });
const control = createServer((client) => {
  client.setEncoding('utf8');
  let line = '';
  client.on('data', (chunk: string) => {
    line += chunk;
    const added = /^outbound (\d+) (\S+)\n/.exec(line);
    if (added) {
      outbound(Number(added[1]), added[2]!).then(
        () => client.end('ok\n'),
        (error: Error) => client.end(`fail ${error.message}\n`),
      );
      return;
    }
    const match = /^connect (\d+)\n/.exec(line);
    if (!match) return;
    const probe = createConnection({ port: Number(match[1]), host: '127.0.0.1' });
    probe.once('connect', () => {
      probe.destroy();
      client.end('ok\n');
    });
    probe.once('error', (error) => client.end(`fail ${error.message}\n`));
  });
  client.on('error', () => undefined);
});
servers.push(listen(control, config.control));

await Promise.all(servers);
writeFileSync(`${config.readyFile}.tmp`, JSON.stringify({ pid: process.pid }));
renameSync(`${config.readyFile}.tmp`, config.readyFile);

for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
