import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KMS_PLUGIN_IMAGE } from './images.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import type { PlatformState } from './platform.ts';
import { waitFor } from './wait.ts';

const MAIN = fileURLToPath(new URL('../../packages/k8-manager/src/main.ts', import.meta.url));

export interface K8ManagerProcess {
  process: ManagedProcess;
  metricsUrl: string;
  stop(): Promise<void>;
}

/**
 * Runs the real k8-manager program. `selector` shards it to the KdcClusters a test labels, and
 * `lease` keeps its leader election apart from other test instances.
 */
export async function startK8Manager(p: PlatformState, input: { name: string; leaseNamespace: string; selector: string; env?: Record<string, string> }): Promise<K8ManagerProcess> {
  const port = await freePort();
  const caFile = join(p.dir, 'openbao-ca.pem');
  writeFileSync(caFile, p.openbao.caPem);
  const process = ManagedProcess.start({
    name: input.name,
    binary: globalThis.process.execPath,
    args: ['--conditions=source', MAIN],
    logFile: join(p.logDir, `${input.name}.log`),
    env: {
      KUBECONFIG: p.management.kubeconfig,
      OPENBAO_URL: p.openbao.url,
      OPENBAO_CA_BUNDLE: caFile,
      KMS_PLUGIN_IMAGE,
      POD_NAMESPACE: input.leaseNamespace,
      POD_NAME: input.name,
      LEASE_NAME: input.name,
      CLUSTER_SELECTOR: input.selector,
      METRICS_ADDR: `127.0.0.1:${port}`,
      RESYNC_PERIOD: '5s',
      ...input.env,
    },
  });
  const metricsUrl = `http://127.0.0.1:${port}`;
  await waitFor(`${input.name} to be ready`, async () => {
    if (!process.running) throw new Error(`${input.name} exited:\n${process.tail()}`);
    return (await fetch(`${metricsUrl}/readyz`)).status === 200;
  }, { timeoutMs: 60_000 });
  return { process, metricsUrl, stop: () => process.stop() };
}
