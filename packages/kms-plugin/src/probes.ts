import { createServer, type Server } from 'node:http';
import type { KeyState } from './key/key-state.ts';

// The listener kubelet's probes and k8-manager reach over the pod network. It answers only what
// they need: liveness, readiness (healthz ok), the Transit version behind the published key_id,
// and that key_id (public by design: kube-apiserver stores it in clear in every etcd row, SPEC 4),
// which k8-manager compares with the key_ids of the stored rows to prove coverage. Everything
// else (request rates, latencies, token TTL, error classes) stays on the loopback metrics port.

export function serveProbes(
  state: Pick<KeyState, 'healthz' | 'current'>,
  options: { host: string; port: number },
): Promise<Server> {
  const server = createServer((req, res) => {
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.statusCode = 405;
      return res.end();
    }
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz') return res.end('ok');
    if (path === '/readyz') {
      const ready = state.healthz() === 'ok';
      res.statusCode = ready ? 200 : 503;
      return res.end(ready ? 'ok' : 'not ready');
    }
    if (path === '/key-version' || path === '/key-id') {
      const current = state.current;
      res.statusCode = current ? 200 : 503;
      if (!current) return res.end('no key yet\n');
      return res.end(path === '/key-id' ? `${current.keyId}\n` : `${current.version}\n`);
    }
    res.statusCode = 404;
    res.end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve(server));
  });
}
