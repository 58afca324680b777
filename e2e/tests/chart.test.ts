import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient, type KubeObject } from '@kdc/shared';
import { platformCrds } from '../src/crds.ts';
import {
  bindControllerNamespace,
  CONTROLLER_RELEASE,
  controllerKubeconfigs,
  refOf,
  renderChart,
  type ControllerIdentity,
} from '../src/chart.ts';
import {
  controllerOpenBaoToken,
  ENCRYPTION_RECONCILER_MAIN,
  ISOLATED_LABEL,
  startEncryptionReconciler,
} from '../src/encryption-reconciler.ts';
import { BACKUP_IMAGE, KMS_PLUGIN_IMAGE } from '../src/images.ts';
import { K8_MANAGER_MAIN, startK8Manager } from '../src/k8-manager.ts';
import { expandVars } from '../src/kubelet/env.ts';
import { freePort } from '../src/ports.ts';
import { ManagedProcess } from '../src/process.ts';
import { waitFor } from '../src/wait.ts';
import { createNamespace, management, platform, unique } from './helpers.ts';
import { nodeProgram } from '../src/programs.ts';

type Container = {
  name: string;
  env: { name: string; value?: string }[];
  securityContext: Record<string, unknown>;
  livenessProbe?: unknown;
  readinessProbe?: unknown;
};
type Deployment = KubeObject & {
  spec: {
    template: {
      spec: { serviceAccountName: string; containers: Container[]; securityContext: Record<string, unknown> };
    };
  };
};

// The Helm chart: what it renders must be accepted by the real apiserver, and the RBAC it grants
// is what every other e2e test runs the controllers with (src/chart.ts), so those tests prove the
// grants suffice; this file proves they go no further.
describe('Helm chart kdc-encryption', () => {
  const kube = management();
  const accessReview = async (user: string, attributes: Record<string, string>) => {
    const review = await kube.post<{ status: { allowed: boolean } }>(
      { group: 'authorization.k8s.io', version: 'v1', plural: 'subjectaccessreviews' },
      {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user,
          groups: [
            'system:serviceaccounts',
            `system:serviceaccounts:${CONTROLLER_RELEASE.namespace}`,
            'system:authenticated',
          ],
          resourceAttributes: attributes,
        },
      },
    );
    return review.status.allowed;
  };

  it('renders CRDs, Deployments, Services, PDBs, RBAC and the CA ConfigMap that the apiserver accepts (server-side dry run)', async () => {
    const release = unique('chart');
    const ns = await createNamespace(kube, 'chart');
    const objects = await renderChart({ release, namespace: ns });
    const kinds = objects.map((o) => o.kind).sort();
    // ClusterRoles: two controllers, their own namespace, cleanup tasks, tenant edit and view.
    // ConfigMaps: the OpenBao CA and the controller's OpenBao policy.
    // The helm test hook: a Pod, its ServiceAccount, a Role and a RoleBinding.
    expect(kinds).toEqual([
      ...Array(6).fill('ClusterRole'),
      'ClusterRoleBinding',
      'ClusterRoleBinding',
      'ConfigMap',
      'ConfigMap',
      'CustomResourceDefinition',
      'CustomResourceDefinition',
      'Deployment',
      'Deployment',
      'Pod',
      'PodDisruptionBudget',
      'PodDisruptionBudget',
      'PrometheusRule',
      'Role',
      'RoleBinding',
      'RoleBinding',
      'RoleBinding',
      'Service',
      'Service',
      'ServiceAccount',
      'ServiceAccount',
      'ServiceAccount',
      'ServiceMonitor',
      'ServiceMonitor',
    ]);
    const test = objects.find((o) => o.kind === 'Role')! as KubeObject & { rules: unknown[] };
    expect(test.metadata?.annotations?.['helm.sh/hook']).toBe('test');
    expect(test.rules).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['k8-manager', 'encryption-reconciler'],
        verbs: ['get'],
      },
    ]);
    // The CRDs are the generated ones, kept on uninstall (the platform already serves them: not created again here).
    const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition');
    for (const crd of crds) expect(crd.metadata?.annotations?.['helm.sh/resource-policy']).toBe('keep');
    expect(crds.map((c) => ({ ...c, metadata: { name: c.metadata?.name } }))).toEqual(
      platformCrds().map((c) => ({ ...c, metadata: { name: c.metadata?.name } })),
    );
    // The platform has no prometheus-operator CRDs; everything else goes through admission and schema.
    // The test Pod's admission looks its ServiceAccount up: that one is created for real first.
    for (const sa of objects.filter((o) => o.kind === 'ServiceAccount' && o.metadata?.annotations?.['helm.sh/hook']))
      await kube.create(refOf(sa), sa);
    for (const object of objects.filter(
      (o) =>
        !['PrometheusRule', 'ServiceMonitor', 'CustomResourceDefinition'].includes(o.kind!) &&
        !(o.kind === 'ServiceAccount' && o.metadata?.annotations?.['helm.sh/hook']),
    )) {
      await expect(
        kube.create(refOf(object), object, { dryRun: 'All' }),
        `${object.kind} ${object.metadata?.name}`,
      ).resolves.toMatchObject({ kind: object.kind });
    }
    for (const deployment of objects.filter((o): o is Deployment => o.kind === 'Deployment')) {
      const pod = deployment.spec.template.spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      const [container] = pod.containers;
      expect(container!.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(container!.livenessProbe && container!.readinessProbe).toBeTruthy();
      expect(container!.env.map((e) => e.name)).toEqual(
        expect.arrayContaining([
          'POD_NAME',
          'POD_NAMESPACE',
          'METRICS_ADDR',
          'OPENBAO_URL',
          'OPENBAO_CA_BUNDLE',
          'KMS_PLUGIN_IMAGE',
        ]),
      );
    }
    // Each controller has its own heap cap, the top-level nodeOptions where it sets none.
    const nodeOptions = (rendered: KubeObject[]) =>
      Object.fromEntries(
        rendered
          .filter((o): o is Deployment => o.kind === 'Deployment')
          .map((d) => d.spec.template.spec.containers[0]!)
          .map((c) => [c.name, c.env.find((e) => e.name === 'NODE_OPTIONS')?.value]),
      );
    expect(nodeOptions(objects)).toEqual({
      'k8-manager': '--max-old-space-size=192',
      'encryption-reconciler': '--max-old-space-size=128',
    });
    const cases: [Record<string, string>, Record<string, string>][] = [
      [
        { nodeOptions: '--max-old-space-size=300', 'k8Manager.nodeOptions': '--max-old-space-size=100' },
        { 'k8-manager': '--max-old-space-size=100', 'encryption-reconciler': '--max-old-space-size=128' },
      ],
      [
        { nodeOptions: '--max-old-space-size=300', 'encryptionReconciler.nodeOptions': '' },
        { 'k8-manager': '--max-old-space-size=300', 'encryption-reconciler': '--max-old-space-size=300' },
      ],
    ];
    for (const [set, want] of cases)
      expect(nodeOptions(await renderChart({ release, namespace: ns, set })), JSON.stringify(set)).toEqual(want);
    // ci/test-values.yaml pins k8-manager by digest; the others take the chart's appVersion as tag.
    const images = Object.fromEntries(
      objects
        .filter((o): o is Deployment => o.kind === 'Deployment')
        .map((d) => [
          d.spec.template.spec.containers[0]!.name,
          (d.spec.template.spec.containers[0] as unknown as { image: string }).image,
        ]),
    );
    expect(images).toEqual({
      'k8-manager': `registry.example/kdc/k8-manager:0.1.0@sha256:${'0'.repeat(63)}1`,
      'encryption-reconciler': 'registry.example/kdc/encryption-reconciler:0.1.0',
    });
  });

  it('images default to what `npm run images` builds; a setting turned off, a bad digest or an unknown or mistyped value is refused naming it', async () => {
    const render = (set: Record<string, string>) =>
      renderChart({ release: 'kdc', namespace: 'kube-dc-system', valuesFile: '/dev/null', set });
    const base = { 'openBao.url': 'https://bao:8200', 'openBao.tokenSecret.name': 'kdc-openbao-token' };
    const envOf = (objects: KubeObject[], name: string) =>
      (objects.find((o) => o.kind === 'Deployment' && o.metadata?.name === name) as Deployment).spec.template.spec
        .containers[0]!.env as { name: string; value?: string }[];
    const defaults = await render(base);
    expect(envOf(defaults, 'k8-manager')).toEqual(
      expect.arrayContaining([
        { name: 'KMS_PLUGIN_IMAGE', value: 'kdc.local/kms-plugin:0.1.0' },
        { name: 'KDC_BACKUP_IMAGE', value: 'kdc.local/kdc-backup:0.1.0' },
      ]),
    );
    await expect(render({ ...base, 'k8Manager.image.repository': '' })).rejects.toThrow(
      /k8Manager\.image\.repository is required/,
    );
    await expect(render({ ...base, 'encryptionReconciler.image.digest': 'sha256:abc' })).rejects.toThrow(
      /encryptionReconciler\/image\/digest|sha256/,
    );
    await expect(render({ ...base, 'k8Manager.imagee': 'x' })).rejects.toThrow(
      /additional properties 'imagee' not allowed/,
    );
    await expect(render({ ...base, 'k8Manager.replicas': 'two' })).rejects.toThrow(/k8Manager\/replicas.*want integer/);
    await expect(render({ ...base, 'k8Manager.image': 'k8m:1' })).rejects.toThrow(/k8Manager\/image.*want object/);
    await expect(render({})).rejects.toThrow(/openBao\.url is required/);
    await expect(render({ 'openBao.url': 'https://bao:8200' })).rejects.toThrow(
      /openBao\.tokenSecret\.name is required/,
    );
    // OpenBao off: no encryption-reconciler, and k8-manager is told so (clusters asking for encryption get OpenBaoDisabled).
    const objects = await render({ 'openBao.enabled': 'false', 'k8Manager.podDisruptionBudget.maxUnavailable': '50%' });
    const deployments = objects.filter((o): o is Deployment => o.kind === 'Deployment');
    expect(deployments.map((d) => d.metadata!.name)).toEqual(['k8-manager']);
    expect(envOf(objects, 'k8-manager').map((e) => e.name)).not.toContain('OPENBAO_URL');
    expect(envOf(objects, 'k8-manager')).toContainEqual({ name: 'OPENBAO_ENABLED', value: 'false' });
    expect(
      objects
        .filter((o) => o.kind === 'PodDisruptionBudget')
        .map((o) => (o as KubeObject & { spec: { maxUnavailable: unknown } }).spec.maxUnavailable),
    ).toEqual(['50%']);
    expect(objects.filter((o) => o.kind === 'ServiceMonitor' || o.kind === 'PrometheusRule')).toEqual([]);
    const withoutCrds = await render({
      ...base,
      'crds.enabled': 'false',
      'k8Manager.podDisruptionBudget.enabled': 'false',
    });
    expect(
      withoutCrds
        .filter((o) => o.kind === 'CustomResourceDefinition' || o.kind === 'PodDisruptionBudget')
        .map((o) => o.metadata?.name),
    ).toEqual(['encryption-reconciler']);
  });

  it("the controllers authenticate as the chart's ServiceAccounts", async () => {
    const kubeconfigs = await controllerKubeconfigs(platform());
    for (const identity of ['k8-manager', 'encryption-reconciler'] as const) {
      const review = await KubeClient.fromFile(kubeconfigs[identity]).post<{
        status: { userInfo: { username: string } };
      }>(
        { group: 'authentication.k8s.io', version: 'v1', plural: 'selfsubjectreviews' },
        { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      );
      expect(review.status.userInfo.username).toBe(`system:serviceaccount:${CONTROLLER_RELEASE.namespace}:${identity}`);
    }
  });

  it('grants no more than the controllers use: no secret listing, no deletes of tenant objects, no RBAC, no leases elsewhere', async () => {
    await controllerKubeconfigs(platform());
    const sa = (identity: ControllerIdentity) => `system:serviceaccount:${CONTROLLER_RELEASE.namespace}:${identity}`;
    const denied: [ControllerIdentity, Record<string, string>][] = [];
    for (const identity of ['k8-manager', 'encryption-reconciler'] as const) {
      denied.push(
        [identity, { verb: 'list', resource: 'secrets' }],
        [identity, { verb: 'watch', resource: 'secrets', namespace: 'default' }],
        [identity, { verb: 'delete', resource: 'secrets', namespace: 'default' }],
        [
          identity,
          { verb: 'delete', group: 'kamaji.clastix.io', resource: 'tenantcontrolplanes', namespace: 'default' },
        ],
        [identity, { verb: 'delete', group: 'k8s.kube-dc.com', resource: 'kdcclusters', namespace: 'default' }],
        [identity, { verb: 'delete', group: 'security.kube-dc.com', resource: 'kmskeys', namespace: 'default' }],
        [identity, { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' }],
        [identity, { verb: 'create', resource: 'pods', namespace: 'default' }],
        [identity, { verb: 'impersonate', resource: 'serviceaccounts', namespace: 'default' }],
        [
          identity,
          {
            verb: 'update',
            group: 'coordination.k8s.io',
            resource: 'leases',
            namespace: 'default',
            name: 'k8-manager',
          },
        ],
      );
    }
    denied.push(
      ['encryption-reconciler', { verb: 'get', resource: 'secrets', namespace: 'default', name: 'anything' }],
      [
        'encryption-reconciler',
        { verb: 'create', group: 'kamaji.clastix.io', resource: 'tenantcontrolplanes', namespace: 'default' },
      ],
      [
        'encryption-reconciler',
        { verb: 'create', group: 'security.kube-dc.com', resource: 'kmskeys', namespace: 'default' },
      ],
      [
        'k8-manager',
        { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: 'default', name: 'x' },
      ],
      // Cleanup tasks live in the controllers' namespace only; k8-manager has none.
      ['encryption-reconciler', { verb: 'create', resource: 'configmaps', namespace: 'default' }],
      ['k8-manager', { verb: 'create', resource: 'configmaps', namespace: CONTROLLER_RELEASE.namespace }],
    );
    const allowedAnyway = [];
    for (const [identity, attributes] of denied)
      if (await accessReview(sa(identity), attributes)) allowedAnyway.push({ identity, ...attributes });
    expect(allowedAnyway).toEqual([]);
    // And the narrow grants are there: the own-namespace master-config Secret, nothing else by name.
    expect(
      await accessReview(sa('encryption-reconciler'), {
        verb: 'get',
        resource: 'secrets',
        namespace: CONTROLLER_RELEASE.namespace,
        name: 'master-config',
      }),
    ).toBe(true);
    expect(
      await accessReview(sa('encryption-reconciler'), {
        verb: 'get',
        resource: 'secrets',
        namespace: CONTROLLER_RELEASE.namespace,
        name: 'other',
      }),
    ).toBe(false);
    expect(
      await accessReview(sa('encryption-reconciler'), {
        verb: 'create',
        resource: 'configmaps',
        namespace: CONTROLLER_RELEASE.namespace,
      }),
    ).toBe(true);
  });

  describe('alerts', () => {
    const stops: (() => Promise<void>)[] = [];
    let metricNames: Set<string>;
    beforeAll(async () => {
      const id = unique('chart');
      const lease = await createNamespace(kube, 'lease');
      // Isolated: they select no cluster of other tests, and this reconciler runs no KMSKey controller.
      const manager = await startK8Manager(platform(), {
        name: `k8m-${id}`,
        leaseNamespace: lease,
        selector: `kdc-e2e/k8m=${id}`,
      });
      const reconciler = await startEncryptionReconciler(platform(), {
        name: `er-${id}`,
        leaseNamespace: lease,
        env: { CLUSTER_SELECTOR: `${ISOLATED_LABEL}=${id}`, CONTROLLERS: 'kdccluster-openbao' },
      });
      stops.push(manager.stop, reconciler.stop);
      const texts = await Promise.all(
        [manager, reconciler].map(async (c) => (await fetch(`${c.metricsUrl}/metrics`)).text()),
      );
      metricNames = new Set(texts.flatMap((t) => [...t.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!)));
    }, 120_000);
    afterAll(async () => {
      for (const stop of stops) await stop();
    });

    it('use only metrics the controllers export', async () => {
      const [rule] = (await renderChart({ release: 'kdc', namespace: 'kube-dc-system' })).filter(
        (o) => o.kind === 'PrometheusRule',
      ) as (KubeObject & { spec: { groups: { rules: { alert: string; expr: string }[] }[] } })[];
      const rules = rule!.spec.groups.flatMap((g) => g.rules);
      expect(rules.length).toBeGreaterThanOrEqual(5);
      for (const { alert, expr } of rules) {
        const used = [...expr.matchAll(/\b(kdc_[a-z_]+)\b/g)].map((m) => m[1]!);
        expect(used.length, alert).toBeGreaterThan(0);
        for (const name of used) expect(metricNames.has(name), `${alert} uses ${name}`).toBe(true);
      }
    });
  });
});

type PodSpec = {
  containers: (Container & {
    env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
    volumeMounts?: { name: string; mountPath: string }[];
  })[];
  volumes?: {
    name: string;
    configMap?: { name: string };
    secret?: { secretName: string; items?: { key: string; path: string }[] };
  }[];
};

describe('the Deployments run the controller programs', () => {
  const kube = management();
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  it("each controller becomes ready and leads with exactly its Deployment's environment and mounted files", async () => {
    const p = platform();
    const id = unique('chart-run');
    const ns = await createNamespace(kube, 'release');
    const dir = join(p.dir, id);
    mkdirSync(dir, { recursive: true });
    const caFile = join(dir, 'openbao-ca.pem');
    writeFileSync(caFile, p.openbao.caPem);
    // Isolated: its own shard and Lease, and no KMSKey controller (KMSKeys cannot be sharded).
    const objects = await renderChart({
      release: 'kdc',
      namespace: ns,
      set: {
        'openBao.url': p.openbao.url,
        'openBao.tokenSecret.name': 'kdc-openbao-token',
        s3Endpoint: p.s3.endpoint,
        'k8Manager.kmsPluginImage.tag': KMS_PLUGIN_IMAGE.split(':')[1]!,
        'k8Manager.backupImage.tag': BACKUP_IMAGE.split(':')[1]!,
        'k8Manager.clusterSelector': `kdc-e2e/k8m=${id}`,
        'k8Manager.leaseName': `k8m-${id}`,
        'encryptionReconciler.clusterSelector': `${ISOLATED_LABEL}=${id}`,
        'encryptionReconciler.leaseName': `er-${id}`,
        'encryptionReconciler.controllers': 'kdccluster-openbao',
      },
      setFile: { 'openBao.caBundle': caFile },
    });
    // What the kubelet would provide: the Secret the operator created (a token with the shipped policy), and the chart's ConfigMaps.
    const secrets: Record<string, Record<string, string>> = {
      'kdc-openbao-token': { token: await controllerOpenBaoToken(p) },
    };
    const configMaps = Object.fromEntries(
      objects
        .filter((o) => o.kind === 'ConfigMap')
        .map((o) => [o.metadata!.name!, (o as KubeObject & { data: Record<string, string> }).data]),
    );
    const kubeconfigs = await controllerKubeconfigs(p);
    const mains: Record<ControllerIdentity, string> = {
      'k8-manager': K8_MANAGER_MAIN,
      'encryption-reconciler': ENCRYPTION_RECONCILER_MAIN,
    };

    for (const deployment of objects.filter((o): o is Deployment => o.kind === 'Deployment')) {
      const identity = deployment.spec.template.spec.serviceAccountName as ControllerIdentity;
      await bindControllerNamespace(p, identity, ns);
      const pod = deployment.spec.template.spec as unknown as PodSpec;
      const container = pod.containers[0]!;
      const podName = `${identity}-${id}`;
      // Volumes become directories; paths in the environment follow their mount points.
      const mounts = new Map<string, string>();
      for (const mount of container.volumeMounts ?? []) {
        const volume = pod.volumes!.find((v) => v.name === mount.name)!;
        const local = join(dir, identity, mount.name);
        mkdirSync(local, { recursive: true });
        if (volume.configMap)
          for (const [key, value] of Object.entries(configMaps[volume.configMap.name]!))
            writeFileSync(join(local, key), value);
        if (volume.secret)
          for (const item of volume.secret.items!)
            writeFileSync(join(local, item.path), secrets[volume.secret.secretName]![item.key]!, { mode: 0o400 });
        mounts.set(mount.mountPath, local);
      }
      const env: Record<string, string> = {};
      for (const e of container.env) {
        const field = e.valueFrom?.fieldRef?.fieldPath;
        // The pod IP is loopback here; $(VAR) expands from earlier variables, as the kubelet does.
        let value =
          field === 'metadata.name'
            ? podName
            : field === 'metadata.namespace'
              ? ns
              : field === 'status.podIP'
                ? '127.0.0.1'
                : expandVars(e.value!, env);
        for (const [mountPath, local] of mounts)
          if (value.startsWith(`${mountPath}/`)) value = local + value.slice(mountPath.length);
        env[e.name] = value;
      }
      expect(env.METRICS_ADDR).toBe('127.0.0.1:8080');
      // Only the network differs from a pod: loopback and a free port instead of the pod's own IP,
      // and the ServiceAccount's kubeconfig instead of the in-cluster files.
      const port = await freePort();
      const proc = ManagedProcess.start({
        name: podName,
        binary: process.execPath,
        args: nodeProgram(mains[identity]),
        logFile: join(p.logDir, `${podName}.log`),
        env: { ...env, METRICS_ADDR: `127.0.0.1:${port}`, KUBECONFIG: kubeconfigs[identity] },
      });
      stops.push(() => proc.stop());
      const lease = identity === 'k8-manager' ? `k8m-${id}` : `er-${id}`;
      await waitFor(
        `${podName} to lead`,
        async () => {
          if (!proc.running) throw new Error(`${podName} exited:\n${proc.tail()}`);
          const ready = (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
          const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          return ready && metrics.includes(`kdc_leader{lease="${lease}"} 1`);
        },
        { timeoutMs: 60_000 },
      );
    }
  });
});
