import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KDC_API_VERSION,
  KMSKEY_API_VERSION,
  OpenBaoClient,
  type KubeClient,
  kdcClusterSpecSchema,
  type KubeObject,
  RESOURCES,
} from '@kdc/shared';
import { buildAutoKey } from '@kdc/k8-manager';
import { controllerKubeconfigs } from '../../src/chart.ts';
import { startControllerProcess, type ControllerProcess } from '../../src/controller-process.ts';
import {
  ENCRYPTION_RECONCILER_MAIN,
  ISOLATED_LABEL,
  startEncryptionReconciler,
} from '../../src/encryption-reconciler.ts';
import { isolatedManagement, type IsolatedManagement } from '../../src/isolated.ts';
import { sleep, waitFor } from '../../src/wait.ts';
import {
  condition,
  createNamespace,
  kdc,
  management,
  openBaoRoot,
  platform,
  unique,
  type TestCondition,
} from '../helpers.ts';

// Finding 13: the encryption-reconciler's OpenBao token. It must carry a shipped least-privilege
// policy (the e2e controllers used the root token), be renewed while it runs, be re-read when the
// Secret is rotated, and a refused token must show on the objects and in the metrics.
const SHIPPED_POLICY = fileURLToPath(
  new URL('../../../charts/kdc-encryption/files/encryption-reconciler-policy.hcl', import.meta.url),
);
const POLICY = 'kdc-encryption-reconciler';

type Obj = KubeObject & { status?: { conditions?: TestCondition[] } };
const kmsKey = (ns: string, name?: string) => ({ ...RESOURCES.kmsKey, namespace: ns, name });
const root = () => openBaoRoot();

/** The shipped policy, written to the platform's OpenBao under the name the runbook gives it. */
async function shippedPolicy(): Promise<void> {
  expect(existsSync(SHIPPED_POLICY), `the chart ships no controller policy at ${SHIPPED_POLICY}`).toBe(true);
  await root().writePolicy(POLICY, readFileSync(SHIPPED_POLICY, 'utf8'));
}

async function controllerToken(body: { ttl: string; renewable: boolean }): Promise<string> {
  await shippedPolicy();
  return (await root().createToken({ policies: [POLICY], no_default_policy: true, ...body })).clientToken;
}

/** What a metric line of the controller says now. */
async function metric(controller: ControllerProcess, line: RegExp): Promise<number | undefined> {
  const match = line.exec(await (await fetch(`${controller.metricsUrl}/metrics`)).text());
  return match ? Number(match[1]) : undefined;
}

/** The token a running controller process was given: its OPENBAO_TOKEN, or the content of its OPENBAO_TOKEN_FILE. */
function tokenOf(controller: ControllerProcess): string {
  const env = Object.fromEntries(
    readFileSync(`/proc/${controller.process.pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  return env.OPENBAO_TOKEN || readFileSync(env.OPENBAO_TOKEN_FILE!, 'utf8').trim();
}

/** Writes the token file as kubelet updates a Secret volume: a new file renamed over the old one. */
function rotate(file: string, token: string): void {
  writeFileSync(`${file}.new`, token, { mode: 0o600 });
  renameSync(`${file}.new`, file);
}

describe("attack 13: the encryption-reconciler's OpenBao token", () => {
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it('the controllers run with exactly the shipped policy, which cannot seal, mint tokens, export keys or touch other mounts', async () => {
    const p = platform();
    const id = unique('a13');
    const lease = await createNamespace(management(), 'lease');
    // Isolated: no KMSKey controller, no cluster of another test.
    const controller = await startEncryptionReconciler(p, {
      name: `er-${id}`,
      leaseNamespace: lease,
      env: { CONTROLLERS: 'kdccluster-openbao', CLUSTER_SELECTOR: `${ISOLATED_LABEL}=${id}` },
    });
    stops.push(controller.stop);
    const token = tokenOf(controller);
    const { data } = await root().request<{ data: { policies: string[]; renewable: boolean; ttl: number } }>(
      'POST',
      'auth/token/lookup',
      { token },
    );
    expect(data.policies, 'the controller token carries these policies').toEqual([POLICY]);
    expect(data.renewable).toBe(true);
    expect(data.ttl).toBeGreaterThan(0);
    expect((await root().readPolicy(POLICY))!.trim()).toBe(readFileSync(SHIPPED_POLICY, 'utf8').trim());

    const key = 'acme.web';
    const caps = async (paths: string[]) => {
      const answer = await root().request<Record<string, unknown>>('POST', 'sys/capabilities', { token, paths });
      return Object.fromEntries(
        paths.map((path) => [
          path,
          ((answer[path] ?? (answer.data as Record<string, unknown>)?.[path]) as string[]).sort(),
        ]),
      );
    };
    const forbidden = [
      'sys/seal',
      'sys/unseal',
      'sys/step-down',
      'sys/audit/file',
      'sys/raw/core',
      'sys/rotate',
      'sys/generate-root/attempt',
      'auth/token/create',
      'auth/token/create-orphan',
      'auth/token/revoke-accessor',
      'sys/auth/k8s-host',
      'auth/k8s-host/config',
      'auth/k8s-host/role/admin',
      `sys/policies/acl/${POLICY}`,
      'sys/policies/acl/default',
      'sys/policies/acl/admin',
      'sys/mounts/secret',
      'sys/mounts/transit/tune',
      `transit/export/encryption-key/${key}`,
      `transit/backup/${key}`,
      `transit/restore/${key}`,
      `transit/keys/${key}/trim`,
      `transit/keys/${key}/import`,
      `transit/encrypt/${key}`,
      `transit/decrypt/${key}`,
      `transit/datakey/plaintext/${key}`,
      `transit/rewrap/${key}`,
      'transit/keys',
      'secret/data/anything',
      'kdc/data/other',
      'cubbyhole/x',
      'identity/entity',
      'sys/namespaces/acme/sub',
    ];
    const granted = Object.entries(await caps(forbidden)).filter(([, c]) => c.join() !== 'deny');
    expect(granted, 'the controller token may do these').toEqual([]);
    // Positive control: what it needs, and only that.
    expect(
      await caps([
        `transit/keys/${key}`,
        `transit/keys/${key}/rotate`,
        `transit/keys/${key}/config`,
        'sys/policies/acl/tcp-acme.web',
        'auth/k8s-host/role/backup-acme.web',
        'kdc/data/owners/acme.web',
        'kdc/metadata/owners/acme.web',
      ]),
    ).toEqual({
      [`transit/keys/${key}`]: ['create', 'delete', 'read', 'update'],
      [`transit/keys/${key}/rotate`]: ['update'],
      [`transit/keys/${key}/config`]: ['update'],
      'sys/policies/acl/tcp-acme.web': ['create', 'delete', 'read', 'update'],
      'auth/k8s-host/role/backup-acme.web': ['create', 'delete', 'read', 'update'],
      'kdc/data/owners/acme.web': ['create', 'read', 'update'],
      'kdc/metadata/owners/acme.web': ['delete', 'list', 'read'],
    });

    // And for real, where trying is harmless: OpenBao refuses.
    const asController = new OpenBaoClient({
      endpoint: p.openbao.url,
      caBundle: p.openbao.caPem,
      token,
      timeoutMs: 10_000,
    });
    await expect(asController.createToken({ policies: ['default'], ttl: '1m' })).rejects.toMatchObject({ status: 403 });
    await expect(asController.transit().createKey(unique('exportable'), { exportable: true })).rejects.toMatchObject({
      status: 403,
    });
    await expect(asController.readPolicy('default')).rejects.toMatchObject({ status: 403 });
  });

  describe('with its own management apiserver (a KMSKey controller of its own)', () => {
    let own: IsolatedManagement;
    let kube: KubeClient;
    beforeAll(async () => {
      own = await isolatedManagement(platform(), unique('a13'));
      stops.push(() => own.stop());
      kube = own.kube;
    });

    const start = async (name: string, env: Record<string, string>) => {
      const p = platform();
      const controller = await startControllerProcess(
        { ...own.state, openbao: p.openbao },
        {
          name,
          main: ENCRYPTION_RECONCILER_MAIN,
          identity: 'encryption-reconciler',
          leaseNamespace: 'kube-dc-system',
          env: { RESYNC_PERIOD: '3s', KMSKEY_DELETION_COUNTDOWN: '20s', ...env },
        },
      );
      stops.push(controller.stop);
      return controller;
    };
    const ready = (ns: string, name: string, timeoutMs = 30_000) =>
      waitFor(
        `KMSKey ${ns}/${name} Ready`,
        async () => {
          const key = await kube.getOrNull<Obj>(kmsKey(ns, name));
          return condition(key, 'Ready')?.status === 'True' ? key : undefined;
        },
        { timeoutMs, intervalMs: 500 },
      );
    const readyCondition = async (ns: string, name: string) =>
      condition(await kube.getOrNull<Obj>(kmsKey(ns, name)), 'Ready');
    const createKey = (ns: string, name: string) =>
      kube.create(kmsKey(ns), { apiVersion: KMSKEY_API_VERSION, kind: 'KMSKey', metadata: { name }, spec: {} });
    const namespace = async (prefix: string) => {
      const name = unique(prefix);
      await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
      return name;
    };

    it('a controller whose token has a 20 s TTL keeps working long after it (renewed at two thirds)', async () => {
      // The controller identity first (a chart render, seconds on a loaded machine), so the TTL
      // runs from just before the controller starts.
      await controllerKubeconfigs(own.state);
      const token = await controllerToken({ ttl: '20s', renewable: true });
      const controller = await start(unique('er-ttl'), { OPENBAO_TOKEN: token });
      // Stopped (releasing the Lease) even when an assertion fails: the next test's controller must lead.
      try {
        const ns = await namespace('ttl');
        await createKey(ns, 'before');
        await ready(ns, 'before');
        await sleep(50_000); // two and a half TTLs
        await createKey(ns, 'after');
        const after = await ready(ns, 'after').catch(async (error: Error) => {
          throw new Error(
            `${error.message}; its Ready condition: ${JSON.stringify(await readyCondition(ns, 'after'))}`,
          );
        });
        expect(after).toBeDefined();
        expect(
          await metric(controller, /^kdc_openbao_token_renewals_total\{result="ok"\} (\d+)/m),
        ).toBeGreaterThanOrEqual(2);
        const { data } = await root().request<{ data: { ttl: number } }>('POST', 'auth/token/lookup', { token });
        expect(data.ttl).toBeGreaterThan(0);
      } finally {
        await controller.stop();
      }
    }, 180_000);

    it('a revoked or expired token shows on KMSKeys and KdcClusters and in the metrics; a rotated token file recovers without a restart', async () => {
      const p = platform();
      const file = join(p.dir, `${unique('a13')}-token`);
      const first = await controllerToken({ ttl: '1h', renewable: true });
      writeFileSync(file, first, { mode: 0o600 });
      const controller = await start(unique('er-rot'), { OPENBAO_TOKEN_FILE: file });
      const pid = controller.process.pid;
      const ns = await namespace('rot');
      const cluster = unique('c');
      await kube.create(
        kmsKey(ns),
        buildAutoKey(
          ns,
          cluster,
          kdcClusterSpecSchema.parse({ version: 'v1.35.0', encryption: { etcd: { enabled: true } } }),
        ),
      );
      await kube.create(kdc(ns), {
        apiVersion: KDC_API_VERSION,
        kind: 'KdcCluster',
        metadata: { name: cluster },
        spec: { version: 'v1.35.0', encryption: { etcd: { enabled: true } } },
      });
      await createKey(ns, 'k1');
      await ready(ns, 'k1');
      // The cluster's pre-flight runs (and fails: this apiserver is not the one OpenBao's
      // Kubernetes auth trusts); what matters is that the policy and role writes got that far.
      await waitFor(
        'the cluster pre-flight to run',
        async () => condition(await kube.getOrNull<Obj>(kdc(ns, cluster)), 'KMSPreflight'),
        { timeoutMs: 30_000 },
      );

      const rejected = async (what: string) => {
        const key = await waitFor(
          `k1 to report the ${what} token`,
          async () => {
            const c = await readyCondition(ns, 'k1');
            return c?.reason === 'OpenBaoTokenRejected' ? c : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 500 },
        ).catch(async (error: Error) => {
          throw new Error(`${error.message}; k1 Ready is ${JSON.stringify(await readyCondition(ns, 'k1'))}`);
        });
        const preflight = await waitFor(
          `${cluster} to report the ${what} token`,
          async () => {
            const c = condition(await kube.getOrNull<Obj>(kdc(ns, cluster)), 'KMSPreflight');
            return c?.reason === 'OpenBaoTokenRejected' ? c : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 500 },
        );
        expect(await metric(controller, /^kdc_openbao_token_valid (\S+)/m)).toBe(0);
        expect(await metric(controller, /^kdc_openbao_token_ttl_seconds (\S+)/m)).toBe(0);
        return [key, preflight];
      };
      const recovered = async () => {
        await ready(ns, 'k1');
        await waitFor(
          `${cluster} to stop reporting a rejected token`,
          async () =>
            condition(await kube.getOrNull<Obj>(kdc(ns, cluster)), 'KMSPreflight')?.reason !== 'OpenBaoTokenRejected',
          { timeoutMs: 30_000 },
        );
        expect(await metric(controller, /^kdc_openbao_token_valid (\S+)/m)).toBe(1);
        expect(controller.process.running && controller.process.pid).toBe(pid);
      };

      await root().revokeToken(first);
      for (const c of await rejected('revoked')) {
        expect(c).toMatchObject({
          status: 'False',
          message: expect.stringContaining(
            `OpenBao token was refused (403): it was revoked; put a valid token with the controller policy into the token file ${file}`,
          ),
        });
      }

      // A short, non-renewable token: it works, then it expires, and says so.
      rotate(file, await controllerToken({ ttl: '20s', renewable: false }));
      await recovered();
      await createKey(ns, 'k2');
      await ready(ns, 'k2');
      for (const c of await rejected('expired')) expect(c.message).toContain('its TTL ran out (it expired)');

      rotate(file, await controllerToken({ ttl: '1h', renewable: true }));
      await recovered();
      expect(await metric(controller, /^kdc_openbao_token_reloads_total (\d+)/m)).toBe(2);
      // Nothing in the controller's log carries a token.
      const log = readFileSync(controller.process.logFile, 'utf8');
      expect(log).not.toContain(first);
      expect(log).not.toContain(readFileSync(file, 'utf8').trim());
    }, 240_000);
  });
});
