import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient, type KubeObject } from '@kdc/shared';
import { CONTROLLER_RELEASE, controllerKubeconfigs, refOf, renderChart, type ControllerIdentity } from '../src/chart.ts';
import { ISOLATED_LABEL, startEncryptionReconciler } from '../src/encryption-reconciler.ts';
import { startK8Manager } from '../src/k8-manager.ts';
import { createNamespace, management, platform, unique } from './helpers.ts';

type Container = { name: string; env: { name: string }[]; securityContext: Record<string, unknown>; livenessProbe?: unknown; readinessProbe?: unknown };
type Deployment = KubeObject & { spec: { template: { spec: { serviceAccountName: string; containers: Container[]; securityContext: Record<string, unknown> } } } };

// The Helm chart: what it renders must be accepted by the real apiserver, and the RBAC it grants
// is what every other e2e test runs the controllers with (src/chart.ts), so those tests prove the
// grants suffice; this file proves they go no further.
describe('Helm chart kdc-encryption', () => {
  const kube = management();
  let accessReview: (user: string, attributes: Record<string, string>) => Promise<boolean>;

  beforeAll(() => {
    accessReview = async (user, attributes) => {
      const review = await kube.post<{ status: { allowed: boolean } }>(
        { group: 'authorization.k8s.io', version: 'v1', plural: 'subjectaccessreviews' },
        { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user, groups: ['system:serviceaccounts', `system:serviceaccounts:${CONTROLLER_RELEASE.namespace}`, 'system:authenticated'], resourceAttributes: attributes } },
      );
      return review.status.allowed;
    };
  });

  it('renders Deployments, Services, PDBs, RBAC and the CA ConfigMap that the apiserver accepts (server-side dry run)', async () => {
    const release = unique('chart');
    const ns = await createNamespace(kube, 'chart');
    const objects = await renderChart({ release, namespace: ns });
    const kinds = objects.map((o) => o.kind).sort();
    expect(kinds).toEqual(['ClusterRole', 'ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'Deployment', 'PodDisruptionBudget', 'PodDisruptionBudget', 'PrometheusRule', 'RoleBinding', 'Service', 'Service', 'ServiceAccount', 'ServiceAccount']);
    // The platform has no prometheus-operator CRD; everything else goes through admission and schema.
    for (const object of objects.filter((o) => o.kind !== 'PrometheusRule')) {
      await expect(kube.create(refOf(object), object, { dryRun: 'All' }), `${object.kind} ${object.metadata?.name}`).resolves.toMatchObject({ kind: object.kind });
    }
    for (const deployment of objects.filter((o): o is Deployment => o.kind === 'Deployment')) {
      const pod = deployment.spec.template.spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      const [container] = pod.containers;
      expect(container!.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      expect(container!.livenessProbe && container!.readinessProbe).toBeTruthy();
      expect(container!.env.map((e) => e.name)).toEqual(expect.arrayContaining(['POD_NAME', 'POD_NAMESPACE', 'METRICS_ADDR', 'OPENBAO_URL', 'OPENBAO_CA_BUNDLE', 'KMS_PLUGIN_IMAGE']));
    }
  });

  it('refuses to render without the controller images or, with OpenBao on, without its URL and token Secret', async () => {
    const render = (set: Record<string, string>) => renderChart({ release: 'kdc', namespace: 'kube-dc-system', valuesFile: '/dev/null', set });
    await expect(render({})).rejects.toThrow(/k8Manager\.image is required/);
    await expect(render({ 'k8Manager.image': 'k8m:1' })).rejects.toThrow(/encryptionReconciler\.image is required/);
    await expect(render({ 'k8Manager.image': 'k8m:1', 'encryptionReconciler.image': 'er:1' })).rejects.toThrow(/openBao\.url is required/);
    await expect(render({ 'k8Manager.image': 'k8m:1', 'encryptionReconciler.image': 'er:1', 'openBao.url': 'https://bao:8200' })).rejects.toThrow(/openBao\.tokenSecret\.name is required/);
    // OpenBao off: no encryption-reconciler, and k8-manager gets no OPENBAO_URL (it then reports EncryptionConfigError).
    const objects = await render({ 'k8Manager.image': 'k8m:1', 'openBao.enabled': 'false' });
    const deployments = objects.filter((o): o is Deployment => o.kind === 'Deployment');
    expect(deployments.map((d) => d.metadata!.name)).toEqual(['k8-manager']);
    expect(deployments[0]!.spec.template.spec.containers[0]!.env.map((e) => e.name)).not.toContain('OPENBAO_URL');
  });

  it('the controllers authenticate as the chart\'s ServiceAccounts', async () => {
    const kubeconfigs = await controllerKubeconfigs(platform());
    for (const identity of ['k8-manager', 'encryption-reconciler'] as const) {
      const review = await KubeClient.fromFile(kubeconfigs[identity]).post<{ status: { userInfo: { username: string } } }>(
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
        [identity, { verb: 'delete', group: 'kamaji.clastix.io', resource: 'tenantcontrolplanes', namespace: 'default' }],
        [identity, { verb: 'delete', group: 'k8s.kube-dc.com', resource: 'kdcclusters', namespace: 'default' }],
        [identity, { verb: 'delete', group: 'security.kube-dc.com', resource: 'kmskeys', namespace: 'default' }],
        [identity, { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' }],
        [identity, { verb: 'create', resource: 'pods', namespace: 'default' }],
        [identity, { verb: 'impersonate', resource: 'serviceaccounts', namespace: 'default' }],
        [identity, { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: 'default', name: 'k8-manager' }],
      );
    }
    denied.push(
      ['encryption-reconciler', { verb: 'get', resource: 'secrets', namespace: 'default', name: 'anything' }],
      ['encryption-reconciler', { verb: 'create', group: 'kamaji.clastix.io', resource: 'tenantcontrolplanes', namespace: 'default' }],
      ['encryption-reconciler', { verb: 'create', group: 'security.kube-dc.com', resource: 'kmskeys', namespace: 'default' }],
      ['k8-manager', { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: 'default', name: 'x' }],
    );
    const allowedAnyway = [];
    for (const [identity, attributes] of denied) if (await accessReview(sa(identity), attributes)) allowedAnyway.push({ identity, ...attributes });
    expect(allowedAnyway).toEqual([]);
    // And the narrow grants are there: the own-namespace master-config Secret, nothing else by name.
    expect(await accessReview(sa('encryption-reconciler'), { verb: 'get', resource: 'secrets', namespace: CONTROLLER_RELEASE.namespace, name: 'master-config' })).toBe(true);
    expect(await accessReview(sa('encryption-reconciler'), { verb: 'get', resource: 'secrets', namespace: CONTROLLER_RELEASE.namespace, name: 'other' })).toBe(false);
  });

  describe('alerts', () => {
    const stops: (() => Promise<void>)[] = [];
    let metricNames: Set<string>;
    beforeAll(async () => {
      const id = unique('chart');
      const lease = await createNamespace(kube, 'lease');
      // Isolated: they select no cluster of other tests, and this reconciler runs no KMSKey controller.
      const manager = await startK8Manager(platform(), { name: `k8m-${id}`, leaseNamespace: lease, selector: `kdc-e2e/k8m=${id}` });
      const reconciler = await startEncryptionReconciler(platform(), { name: `er-${id}`, leaseNamespace: lease, env: { CLUSTER_SELECTOR: `${ISOLATED_LABEL}=${id}`, CONTROLLERS: 'kdccluster-openbao' } });
      stops.push(manager.stop, reconciler.stop);
      const texts = await Promise.all([manager, reconciler].map(async (c) => (await fetch(`${c.metricsUrl}/metrics`)).text()));
      metricNames = new Set(texts.flatMap((t) => [...t.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!)));
    }, 120_000);
    afterAll(async () => {
      for (const stop of stops) await stop();
    });

    it('use only metrics the controllers export', async () => {
      const [rule] = (await renderChart({ release: 'kdc', namespace: 'kube-dc-system' })).filter((o) => o.kind === 'PrometheusRule') as (KubeObject & { spec: { groups: { rules: { alert: string; expr: string }[] }[] } })[];
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
