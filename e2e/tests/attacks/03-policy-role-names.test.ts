import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KDC_API_VERSION,
  OPENBAO_AUDIENCE,
  OPENBAO_K8S_AUTH_MOUNT,
  clusterNames,
  type KubeObject,
  type TenantControlPlane,
  RESOURCES,
} from '@kdc/shared';
import { sleep, waitFor } from '../../src/wait.ts';
import {
  condition,
  createNamespace,
  kdc,
  management,
  openBaoAnonymous,
  openBaoRoot,
  serviceAccountToken,
  shardControllers,
  unique,
} from '../helpers.ts';

// Finding 3: the per-organisation names `tcp-<cluster>` / `backup-<cluster>` could be taken over.
// The attacker creates an unencrypted `web` first, waits for the victim's encrypted `web`, then
// enables its own: the first scheme rebound the victim's role to the attacker's namespace, and
// deleting the attacker's cluster deleted the victim's policy and role.

type Cluster = KubeObject & {
  status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
};
const tcpRef = (ns: string, name: string) => ({ ...RESOURCES.tenantControlPlane, namespace: ns, name });
const argOf = (args: string[], flag: string) => args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);

describe("attack 3: a namesake in another namespace cannot take over, or delete, a cluster's OpenBao policy and role", () => {
  const kube = management();
  const id = unique('a03');
  const labels = { 'kdc-e2e/k8m': id };
  const stops: (() => Promise<void>)[] = [];
  let attackerNs: string;
  let victimNs: string;
  const spec = (enabled: boolean) => ({
    version: 'v1.35.0',
    controlPlane: { replicas: 1 },
    encryption: { etcd: { enabled } },
  });

  beforeAll(async () => {
    stops.push(...(await shardControllers(id)).map((c) => c.stop));
    attackerNs = await createNamespace(kube, 'attacker');
    victimNs = await createNamespace(kube, 'victim');
  }, 120_000);
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  /** The role and key the cluster's KMS plugin is configured with, once k8-manager attached it. */
  const pluginAccess = (ns: string) =>
    waitFor(
      `${ns}/web attached`,
      async () => {
        const tcp = await kube.getOrNull<TenantControlPlane & KubeObject>(
          tcpRef(ns, clusterNames('web').tenantControlPlane),
        );
        const args =
          tcp?.spec.controlPlane.deployment?.additionalInitContainers?.find((c) => c.name === 'kms-plugin')?.args ?? [];
        const role = argOf(args, '--auth-role');
        const key = argOf(args, '--transit-key');
        return role && key ? { role, key } : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );

  /** What the victim's plugin does: log in with its ServiceAccount's token, then encrypt and decrypt. */
  async function victimPluginWorks(access: { role: string; key: string }): Promise<void> {
    const jwt = await serviceAccountToken(kube, victimNs, clusterNames('web').kmsPluginServiceAccount, [
      OPENBAO_AUDIENCE,
    ]);
    const login = await openBaoAnonymous().loginKubernetes(OPENBAO_K8S_AUTH_MOUNT, access.role, jwt);
    const plugin = openBaoAnonymous().withToken(login.clientToken);
    const ct = await plugin.transit().encrypt(access.key, Buffer.from('victim row'));
    expect((await plugin.transit().decrypt(access.key, ct.ciphertext)).toString()).toBe('victim row');
    await plugin.revokeSelf();
  }

  it("the victim keeps working through the attacker's enable and delete, and keeps its pre-flight", async () => {
    await kube.create(kdc(attackerNs), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: 'web', labels },
      spec: spec(false),
    });
    await sleep(1100); // the attacker's cluster is the older one
    await kube.create(kdc(victimNs), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: 'web', labels },
      spec: spec(true),
    });
    const victim = await pluginAccess(victimNs);
    await victimPluginWorks(victim);

    // The attacker turns encryption on: it gets access of its own (positive control) ...
    await kube.patch(kdc(attackerNs, 'web'), { spec: { encryption: { etcd: { enabled: true } } } });
    const attacker = await pluginAccess(attackerNs);
    expect(attacker.role).not.toBe(victim.role);
    await waitFor(
      "the attacker's pre-flight",
      async () => condition(await kube.get<Cluster>(kdc(attackerNs, 'web')), 'KMSPreflight')?.status === 'True',
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    // ... and the victim's role is still bound to the victim alone.
    const role = await openBaoRoot().readAuthRole(OPENBAO_K8S_AUTH_MOUNT, victim.role);
    expect(role?.bound_service_account_namespaces).toEqual([victimNs]);
    await victimPluginWorks(victim);
    expect(condition(await kube.get<Cluster>(kdc(victimNs, 'web')), 'KMSPreflight')).toMatchObject({ status: 'True' });

    // The attacker deletes its cluster: its access goes (positive control), the victim's stays.
    await kube.delete(kdc(attackerNs, 'web'));
    await waitFor(
      "the attacker's role removed",
      async () => (await openBaoRoot().readAuthRole(OPENBAO_K8S_AUTH_MOUNT, attacker.role)) === null,
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    await victimPluginWorks(victim);
    await sleep(6_000); // a resync of every controller (RESYNC_PERIOD=5s)
    await victimPluginWorks(victim);
    expect(condition(await kube.get<Cluster>(kdc(victimNs, 'web')), 'KMSPreflight')).toMatchObject({ status: 'True' });
  }, 300_000);
});
