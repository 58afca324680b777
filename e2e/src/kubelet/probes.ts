// A container's startup, readiness and liveness probes, with the kubelet's thresholds. Probes
// may run more often than the spec says (the runner's cap), with the failure window (period x
// threshold) kept, so a test waits seconds where a cluster would wait tens of them.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { sleep } from '../wait.ts';
import type { ContainerState } from './container.ts';
import { resolvePort, type ProbeSpec } from './pod-spec.ts';

/** What the probes need of the pod around the container. */
export interface ProbeHost {
  readonly name: string;
  stopping(): boolean;
  readonly probePeriodCapSeconds: number;
  inboundSocket(port: number): string;
  /** A line to the sandbox's control socket (tcpSocket probes connect from inside the pod). */
  control(line: string, timeoutMs: number): Promise<string>;
  exec(c: ContainerState, command: string[], timeoutMs: number): Promise<number | null>;
  /** The container's readiness or startup changed. */
  changed(): void;
  /** Liveness or startup failed: the container is killed (and restarted by its supervisor). */
  kill(c: ContainerState): void;
  log(message: string, fields?: Record<string, unknown>): void;
}

type ProbeKind = 'startup' | 'readiness' | 'liveness';

async function sleepWhile(alive: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (alive() && Date.now() < end) await sleep(Math.min(50, end - Date.now()));
}

async function waitWhile(alive: () => boolean, condition: () => boolean): Promise<void> {
  while (alive() && condition()) await sleep(50);
}

/** Starts the probe loops of one run of a container (`generation`); they end with that run. */
export function startProbes(host: ProbeHost, c: ContainerState, generation: number): void {
  const alive = () => !host.stopping() && c.generation === generation && c.running;
  const loop = async (probe: ProbeSpec, kind: ProbeKind) => {
    const period = probe.periodSeconds ?? 10;
    const effectivePeriod = Math.min(period, host.probePeriodCapSeconds);
    const failureThreshold = Math.ceil(((probe.failureThreshold ?? 3) * period) / effectivePeriod);
    const successThreshold = probe.successThreshold ?? 1;
    let failures = 0;
    let successes = 0;
    await sleepWhile(alive, (probe.initialDelaySeconds ?? 0) * 1000);
    while (alive()) {
      if (kind !== 'startup') await waitWhile(alive, () => !c.startupDone);
      if (!alive()) return;
      const result = await runProbe(host, c, probe);
      if (!alive()) return;
      if (result.ok) {
        failures = 0;
        successes++;
        if (kind === 'startup') {
          c.startupDone = true;
          c.started = true;
          host.changed();
          return;
        }
        if (kind === 'readiness' && successes >= successThreshold && !c.ready) {
          c.ready = true;
          host.changed();
        }
      } else {
        successes = 0;
        failures++;
        if (kind === 'readiness' && failures >= failureThreshold && c.ready) {
          c.ready = false;
          host.log('readiness probe failed', { pod: host.name, container: c.spec.name, error: result.message });
          host.changed();
        }
        if (kind !== 'readiness' && failures >= failureThreshold) {
          c.note(
            `${new Date().toISOString()} ${kind} probe failed ${failures} times (${result.message}); killing ${c.spec.name}`,
          );
          host.log(`${kind} probe failed; restarting container`, {
            pod: host.name,
            container: c.spec.name,
            error: result.message,
          });
          host.kill(c);
          return;
        }
      }
      await sleepWhile(alive, effectivePeriod * 1000);
    }
  };
  const run = (probe: ProbeSpec, kind: ProbeKind) =>
    void loop(probe, kind).catch((error: unknown) =>
      host.log('probe loop failed', {
        pod: host.name,
        container: c.spec.name,
        kind,
        error: String((error as Error)?.message ?? error),
      }),
    );
  if (c.spec.startupProbe) run(c.spec.startupProbe, 'startup');
  if (c.spec.livenessProbe) run(c.spec.livenessProbe, 'liveness');
  if (c.spec.readinessProbe) run(c.spec.readinessProbe, 'readiness');
  else if (c.kind !== 'init') {
    // No readiness probe: ready once started, as a kubelet has it.
    void waitWhile(alive, () => !c.startupDone).then(() => {
      if (!alive()) return;
      c.ready = true;
      host.changed();
    });
  }
}

async function runProbe(
  host: ProbeHost,
  c: ContainerState,
  probe: ProbeSpec,
): Promise<{ ok: boolean; message?: string }> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  try {
    if (probe.httpGet) {
      const port = resolvePort(c.spec, probe.httpGet.port);
      if (!port) return { ok: false, message: `unknown port ${probe.httpGet.port}` };
      const status = await httpProbe(host.inboundSocket(port), probe.httpGet, port, timeoutMs);
      return status >= 200 && status < 400
        ? { ok: true }
        : { ok: false, message: `HTTP probe failed with statuscode: ${status}` };
    }
    if (probe.tcpSocket) {
      const port = resolvePort(c.spec, probe.tcpSocket.port);
      if (!port) return { ok: false, message: `unknown port ${probe.tcpSocket.port}` };
      const answer = await host.control(`connect ${port}\n`, timeoutMs);
      return answer.startsWith('ok') ? { ok: true } : { ok: false, message: answer.trim() };
    }
    if (probe.exec?.command?.length) {
      const code = await host.exec(c, probe.exec.command, timeoutMs);
      return code === 0 ? { ok: true } : { ok: false, message: `command exited with ${code}` };
    }
    return { ok: false, message: 'probe type not supported by the local runner (grpc)' };
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
}

function httpProbe(
  socketPath: string,
  action: NonNullable<ProbeSpec['httpGet']>,
  port: number,
  timeoutMs: number,
): Promise<number> {
  const https = (action.scheme ?? 'HTTP').toUpperCase() === 'HTTPS';
  const headers: Record<string, string> = {
    Host: `${action.host ?? '127.0.0.1'}:${port}`,
    'User-Agent': 'kube-probe/1.36',
    Accept: '*/*',
  };
  for (const h of action.httpHeaders ?? []) headers[h.name] = h.value;
  const path = action.path ?? '/';
  return new Promise((resolve, reject) => {
    const options = {
      socketPath,
      path: path.startsWith('/') ? path : `/${path}`,
      method: 'GET',
      headers,
      timeout: timeoutMs,
    };
    const req = https ? httpsRequest({ ...options, rejectUnauthorized: false }) : httpRequest(options);
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`probe timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
