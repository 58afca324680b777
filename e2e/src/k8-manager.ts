import { fileURLToPath } from 'node:url';
import { startControllerProcess, type ControllerProcess } from './controller-process.ts';
import type { PlatformState } from './platform.ts';

export const K8_MANAGER_MAIN = fileURLToPath(new URL('../../packages/k8-manager/src/main.ts', import.meta.url));

export type K8ManagerProcess = ControllerProcess;

/**
 * Runs the real k8-manager program. `selector` shards it to the KdcClusters a test labels, and
 * its own Lease keeps its leader election apart from other test instances.
 */
export async function startK8Manager(
  p: PlatformState,
  input: {
    name: string;
    leaseNamespace: string;
    selector: string;
    env?: Record<string, string>;
    /** The program to run: the source by default, or e.g. the image's bundle. */
    main?: string;
  },
): Promise<K8ManagerProcess> {
  return startControllerProcess(p, {
    name: input.name,
    main: input.main ?? K8_MANAGER_MAIN,
    identity: 'k8-manager',
    leaseNamespace: input.leaseNamespace,
    env: {
      LEASE_NAME: input.name,
      CLUSTER_SELECTOR: input.selector,
      RESYNC_PERIOD: '5s',
      ...input.env,
    },
  });
}
