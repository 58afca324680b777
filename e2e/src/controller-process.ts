import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bindControllerNamespace, controllerKubeconfigs, type ControllerIdentity } from './chart.ts';
import { BACKUP_IMAGE, KMS_PLUGIN_IMAGE } from './images.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import type { PlatformState } from './platform.ts';
import { waitFor } from './wait.ts';
import { nodeProgram } from './programs.ts';

export interface ControllerProcess {
  process: ManagedProcess;
  metricsUrl: string;
  stop(): Promise<void>;
}

/**
 * Runs one of our controller programs (a main.ts) against the platform's apiserver and OpenBao,
 * ready once its /readyz says so. It authenticates as the chart's ServiceAccount for `identity`,
 * so it has exactly the chart's RBAC, in `leaseNamespace` too.
 */
export async function startControllerProcess(
  p: PlatformState,
  input: {
    name: string;
    main: string;
    identity: ControllerIdentity;
    leaseNamespace: string;
    env: Record<string, string>;
  },
): Promise<ControllerProcess> {
  const kubeconfig = (await controllerKubeconfigs(p))[input.identity];
  await bindControllerNamespace(p, input.identity, input.leaseNamespace);
  const port = await freePort();
  // One CA file per process: tests start controllers against other OpenBao servers in parallel.
  const caFile = join(p.dir, `${input.name}-openbao-ca.pem`);
  writeFileSync(caFile, p.openbao.caPem);
  const process = ManagedProcess.start({
    name: input.name,
    binary: globalThis.process.execPath,
    args: nodeProgram(input.main),
    logFile: join(p.logDir, `${input.name}.log`),
    env: {
      KUBECONFIG: kubeconfig,
      POD_NAME: input.name,
      POD_NAMESPACE: input.leaseNamespace,
      METRICS_ADDR: `127.0.0.1:${port}`,
      OPENBAO_URL: p.openbao.url,
      OPENBAO_CA_BUNDLE: caFile,
      KMS_PLUGIN_IMAGE,
      KDC_BACKUP_IMAGE: BACKUP_IMAGE,
      S3_ENDPOINT: p.s3.endpoint,
      ...input.env,
    },
  });
  const metricsUrl = `http://127.0.0.1:${port}`;
  await waitFor(
    `${input.name} to be ready`,
    async () => {
      if (!process.running) throw new Error(`${input.name} exited:\n${process.tail()}`);
      return (await fetch(`${metricsUrl}/readyz`)).status === 200;
    },
    { timeoutMs: 60_000 },
  );
  return { process, metricsUrl, stop: () => process.stop() };
}
