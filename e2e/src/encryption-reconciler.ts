import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpenBaoClient, type KubeObject } from '@kdc/shared';
import { CONTROLLER_RELEASE, renderChart } from './chart.ts';
import { startControllerProcess, type ControllerProcess } from './controller-process.ts';
import type { PlatformState } from './platform.ts';

/** KdcClusters with this label are handled only by the instances their test starts. */
export const ISOLATED_LABEL = 'kdc-e2e/isolated';

export const ENCRYPTION_RECONCILER_MAIN = fileURLToPath(
  new URL('../../packages/encryption-reconciler/src/main.ts', import.meta.url),
);

/** The name the runbook gives the controller's OpenBao policy. */
export const CONTROLLER_POLICY = 'kdc-encryption-reconciler';

export type ReconcilerProcess = ControllerProcess & { tokenFile: string };

let shipped: Promise<string> | undefined;

/** The controller policy exactly as the chart ships it (its ConfigMap, rendered from files/encryption-reconciler-policy.hcl). */
export function shippedControllerPolicy(): Promise<string> {
  shipped ??= renderChart({ release: CONTROLLER_RELEASE.name, namespace: CONTROLLER_RELEASE.namespace }).then(
    (objects) => {
      const configMap = objects.find(
        (o) => o.kind === 'ConfigMap' && o.metadata?.name === 'encryption-reconciler-openbao-policy',
      ) as (KubeObject & { data: Record<string, string> }) | undefined;
      if (!configMap?.data['policy.hcl'])
        throw new Error('the chart renders no encryption-reconciler-openbao-policy ConfigMap with policy.hcl');
      return configMap.data['policy.hcl'];
    },
  );
  return shipped;
}

const policyWritten = new Map<string, Promise<void>>();

/**
 * A token for an encryption-reconciler as an operator following the runbook makes it: the
 * shipped policy and nothing else (no default policy), renewable, with a short TTL so the
 * controller's renewal runs during the tests. Made with the root token; only the test uses root.
 */
export async function controllerOpenBaoToken(
  p: PlatformState,
  options: { ttl?: string; renewable?: boolean; explicitMaxTtl?: string } = {},
): Promise<string> {
  const root = new OpenBaoClient({
    endpoint: p.openbao.url,
    caBundle: p.openbao.caPem,
    token: p.openbao.rootToken,
    timeoutMs: 10_000,
  });
  if (!policyWritten.has(p.openbao.url))
    policyWritten.set(
      p.openbao.url,
      shippedControllerPolicy().then((policy) => root.writePolicy(CONTROLLER_POLICY, policy)),
    );
  await policyWritten.get(p.openbao.url);
  const auth = await root.createToken({
    policies: [CONTROLLER_POLICY],
    no_default_policy: true,
    renewable: options.renewable ?? true,
    // Three minutes: renewed every two, and long enough to outlast the outage tests' OpenBao restarts.
    ttl: options.ttl ?? '3m',
    ...(options.explicitMaxTtl ? { explicit_max_ttl: options.explicitMaxTtl } : {}),
  });
  return auth.clientToken;
}

/**
 * Runs the real encryption-reconciler program against the platform, with its token in a file
 * as the chart mounts it (OPENBAO_TOKEN_FILE). `tokenFile` reuses a file the test controls
 * (to rotate or revoke the token); otherwise a fresh controllerOpenBaoToken is written.
 */
export async function startEncryptionReconciler(
  p: PlatformState,
  input: {
    name: string;
    leaseNamespace: string;
    env?: Record<string, string>;
    tokenFile?: string;
    /** The program to run: the source by default, or e.g. the image's bundle. */
    main?: string;
  },
): Promise<ReconcilerProcess> {
  const tokenFile = input.tokenFile ?? join(p.dir, `${input.name}-openbao-token`);
  if (!input.tokenFile) writeFileSync(tokenFile, await controllerOpenBaoToken(p), { mode: 0o600 });
  const controller = await startControllerProcess(p, {
    name: input.name,
    main: input.main ?? ENCRYPTION_RECONCILER_MAIN,
    identity: 'encryption-reconciler',
    leaseNamespace: input.leaseNamespace,
    env: {
      OPENBAO_TOKEN_FILE: tokenFile,
      // Test processes share one Lease: whichever leads must behave the same, with test timings.
      RESYNC_PERIOD: '5s',
      // Drift is read back at most every 5 s (not on every event): tests of repair wait a resync.
      OPENBAO_DRIFT_CHECK_PERIOD: '5s',
      KMSKEY_DELETION_COUNTDOWN: '20s',
      // Rotation tests rotate every 30 s; the production floors (1h, 7d for etcd keys) are the
      // subject of attacks/07, which still finds a 1 s interval refused here.
      KMSKEY_MIN_ROTATION: '20s',
      KMSKEY_MIN_ROTATION_ETCD: '20s',
      // The leader serves every test file's objects at once (hundreds in the steady-state tests);
      // the work is OpenBao round trips, so more workers keep one file from queueing behind another.
      WORKERS: '12',
      // Tests that need controllers with another configuration label their clusters isolated.
      CLUSTER_SELECTOR: `!${ISOLATED_LABEL}`,
      ...input.env,
    },
  });
  return { ...controller, tokenFile };
}
