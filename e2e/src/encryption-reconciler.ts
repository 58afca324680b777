import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KMS_PLUGIN_IMAGE } from './images.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import type { PlatformState } from './platform.ts';
import { waitFor } from './wait.ts';

/** KdcClusters with this label are handled only by the instances their test starts. */
export const ISOLATED_LABEL = 'kdc-e2e/isolated';

const MAIN = fileURLToPath(new URL('../../packages/encryption-reconciler/src/main.ts', import.meta.url));

export interface ReconcilerProcess {
  process: ManagedProcess;
  metricsUrl: string;
  stop(): Promise<void>;
}

/** Runs the real encryption-reconciler program against the platform. */
export async function startEncryptionReconciler(p: PlatformState, input: { name: string; leaseNamespace: string; env?: Record<string, string> }): Promise<ReconcilerProcess> {
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
      OPENBAO_TOKEN: p.openbao.rootToken,
      OPENBAO_CA_BUNDLE: caFile,
      KMS_PLUGIN_IMAGE,
      POD_NAMESPACE: input.leaseNamespace,
      POD_NAME: input.name,
      METRICS_ADDR: `127.0.0.1:${port}`,
      // Test processes share one Lease: whichever leads must behave the same, with test timings.
      RESYNC_PERIOD: '5s',
      KMSKEY_DELETION_COUNTDOWN: '20s',
      // Tests that need controllers with another configuration label their clusters isolated.
      CLUSTER_SELECTOR: `!${ISOLATED_LABEL}`,
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
