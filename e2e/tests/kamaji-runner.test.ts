import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient, at, RESOURCES } from '@kdc/shared';
import { listRaw } from '../src/etcd-raw.ts';
import { localImage } from '../src/kubelet/image.ts';
import { mergeApiServerArgs, startKamajiRunner, type KamajiRunner } from '../src/kamaji-runner.ts';
import { pidAlive } from '../src/process.ts';
import { waitFor } from '../src/wait.ts';
import { createNamespace, management, platform } from './helpers.ts';

const TCP = (namespace: string, name?: string) => ({ ...RESOURCES.tenantControlPlane, namespace, name });
const NODE_IMAGE = 'example.local/node-http';

// A generic native sidecar: a tiny HTTP server that is only ready once the init container's file
// exists, and that serves its projected token and its identity so the test sees what it sees.
const SIDECAR = `
const http = require('node:http');
const fs = require('node:fs');
http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok');
  if (req.url === '/ready') { res.statusCode = fs.existsSync('/var/run/kdc-e2e/shared/init-done') ? 200 : 503; return res.end(); }
  if (req.url === '/id') return res.end(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), groups: process.getgroups() }));
  if (req.url === '/token') { try { return res.end(fs.readFileSync('/var/run/secrets/openbao/token')); } catch (e) { res.statusCode = 500; return res.end(String(e)); } }
  if (req.url === '/write-root') { try { fs.writeFileSync('/tmp/kdc-e2e-ro-test', 'x'); return res.end('wrote'); } catch (e) { return res.end(e.code); } }
  res.statusCode = 404; res.end();
}).listen(8080, '0.0.0.0');
`;

const AUDIT_POLICY = ['apiVersion: audit.k8s.io/v1', 'kind: Policy', 'rules:', '  - level: Metadata'].join('\n');

function tcpObject(name: string) {
  return {
    apiVersion: 'kamaji.clastix.io/v1alpha1',
    kind: 'TenantControlPlane',
    metadata: { name },
    spec: {
      kubernetes: { version: 'v1.36.3', kubelet: { cgroupfs: 'systemd' } },
      // The real CRD's CEL rules read spec.networkProfile: an object without it is refused.
      networkProfile: {},
      controlPlane: {
        service: { serviceType: 'ClusterIP' },
        deployment: {
          replicas: 1,
          serviceAccountName: 'tenant-sa',
          podSecurityContext: { fsGroup: 65532 },
          additionalInitContainers: [
            // Image not in the runner's table, command given: runs from the host filesystem.
            {
              name: 'write-marker',
              image: 'docker.io/library/busybox:1.36',
              command: ['sh', '-c', 'echo ok > /var/run/kdc-e2e/shared/init-done'],
              volumeMounts: [{ name: 'shared', mountPath: '/var/run/kdc-e2e/shared' }],
            },
            {
              name: 'web',
              image: `${NODE_IMAGE}:1.0`,
              restartPolicy: 'Always',
              args: ['-e', SIDECAR],
              ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
              startupProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1, failureThreshold: 30 },
              readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 5, failureThreshold: 3 },
              livenessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 10, failureThreshold: 3 },
              securityContext: {
                runAsUser: 65532,
                runAsGroup: 65532,
                runAsNonRoot: true,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'shared', mountPath: '/var/run/kdc-e2e/shared' },
                { name: 'openbao-token', mountPath: '/var/run/secrets/openbao', readOnly: true },
              ],
            },
          ],
          additionalVolumes: [
            { name: 'shared', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
            {
              name: 'openbao-token',
              projected: {
                defaultMode: 0o440,
                sources: [{ serviceAccountToken: { audience: 'openbao', expirationSeconds: 3600, path: 'token' } }],
              },
            },
            {
              name: 'audit-policy',
              secret: {
                secretName: 'tenant-audit-policy',
                items: [{ key: 'policy.yaml', path: 'policy.yaml' }],
                defaultMode: 0o440,
              },
            },
          ],
          additionalVolumeMounts: {
            apiServer: [
              { name: 'audit-policy', mountPath: '/etc/kubernetes/kdc-e2e-audit', readOnly: true },
              { name: 'shared', mountPath: '/var/run/kdc-e2e/apiserver-shared' },
            ],
          },
          extraArgs: {
            apiServer: [
              '--audit-policy-file=/etc/kubernetes/kdc-e2e-audit/policy.yaml',
              '--audit-log-path=/var/run/kdc-e2e/apiserver-shared/audit.log',
            ],
          },
        },
      },
    },
  };
}

const jwtPayload = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as {
    aud: string[];
    sub: string;
    exp: number;
    iat: number;
    'kubernetes.io': { pod?: { name: string } };
  };
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

describe('local Kamaji runner', () => {
  const kube = management();
  let runner: KamajiRunner;
  let namespace: string;

  beforeAll(async () => {
    namespace = await createNamespace(kube, 'kamaji-runner');
    runner = await startKamajiRunner(platform(), {
      images: { [NODE_IMAGE]: [process.execPath] },
      namespaces: [namespace],
    });
  });
  afterAll(async () => {
    await runner?.stop();
  });

  it('resolves images and merges apiserver flags like Kamaji', () => {
    expect(localImage({ 'r.io/a': ['/bin/a'] }, 'r.io/a:1.2')).toEqual(['/bin/a']);
    expect(localImage({ 'r.io/a:1.2': ['/bin/a'] }, 'r.io/a:1.3')).toBeUndefined();
    const args = mergeApiServerArgs(
      ['--secure-port=1', '--authorization-mode=RBAC', '--x=1'],
      { '--authorization-mode': 'Node,RBAC', '--y': '2' },
      { '--secure-port': '6443' },
    );
    expect(args).toEqual(['--secure-port=6443', '--y=2', '--authorization-mode=RBAC', '--x=1']);
  });

  it('runs a TenantControlPlane generically: init container, native sidecar, volumes, extraArgs; restarts, rolls and cleans up', async () => {
    const { etcd } = platform();
    const name = 'tenant';
    await kube.create(at(RESOURCES.serviceAccount, namespace), {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'tenant-sa' },
    });
    await kube.create(at(RESOURCES.secret, namespace), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'tenant-audit-policy' },
      stringData: { 'policy.yaml': AUDIT_POLICY },
    });
    const created = performance.now();
    await kube.create(TCP(namespace), tcpObject(name));

    const pod = await runner.waitForPod(namespace, name, { timeoutMs: 60_000 });
    const startMs = Math.round(performance.now() - created);
    console.log(`TCP -> pod Ready in ${startMs} ms (pod start -> Ready ${pod.readyAt! - pod.startedAt} ms)`);

    // Kamaji's reporting: status, endpoint, admin kubeconfig Secret that works.
    const tcp = await waitFor(
      'TCP status Ready',
      async () => {
        const t = await kube.get<any>(TCP(namespace, name));
        return t.status?.kubernetesResources?.version?.status === 'Ready' && t;
      },
      { timeoutMs: 10_000 },
    );
    expect(tcp.status.controlPlaneEndpoint).toBe(`127.0.0.1:${pod.hostPort}`);
    expect(tcp.status.kubernetesResources.version.version).toBe('v1.36.3');
    const adminSecret = await kube.get<any>(at(RESOURCES.secret, namespace, tcp.status.kubeconfig.admin.secretName));
    const kubeconfigFile = join(pod.dir, 'from-secret.kubeconfig');
    writeFileSync(kubeconfigFile, Buffer.from(adminSecret.data['admin.conf'], 'base64'));
    const tenant = KubeClient.fromFile(kubeconfigFile);
    const namespaces = await tenant.list<any>(RESOURCES.namespace);
    expect(namespaces.items.map((n: any) => n.metadata.name)).toContain('default');
    await tenant.create(at(RESOURCES.configMap, 'default'), {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'marker' },
      data: { a: 'b' },
    });

    // The tenant's rows are in the platform etcd under /<ns>_<tcp>/.
    const prefix = `/${namespace}_${name}/`;
    const rows = (await listRaw(etcd.endpoint, prefix)).map((kv) => kv.key);
    expect(rows).toContain(`${prefix}configmaps/default/marker`);

    // The init container ran (image not in the table, command from the host) before the sidecar became ready.
    expect(readFileSync(join(runner.volumePath(namespace, name, 'shared')!, 'init-done'), 'utf8')).toBe('ok\n');
    const web = pod.containers.find((c) => c.name === 'web')!;
    const apiserver = pod.containers.find((c) => c.name === 'kube-apiserver')!;
    expect(pod.containers.find((c) => c.name === 'write-marker')).toMatchObject({
      kind: 'init',
      running: false,
      lastExitCode: 0,
    });
    expect(web).toMatchObject({ kind: 'sidecar', running: true, ready: true, restartCount: 0 });

    // The sidecar runs as 65532 with the fsGroup, on a read-only root, and reads its projected token.
    const sidecarUrl = `http://127.0.0.1:${pod.ports[8080]}`;
    const id = (await (await fetch(`${sidecarUrl}/id`)).json()) as { uid: number; gid: number; groups: number[] };
    expect(id).toMatchObject({ uid: 65532, gid: 65532 });
    expect(id.groups).toContain(65532);
    expect(await (await fetch(`${sidecarUrl}/write-root`)).text()).toBe('EROFS');
    const token = await (await fetch(`${sidecarUrl}/token`)).text();
    const claims = jwtPayload(token);
    expect(claims.aud).toEqual(['openbao']);
    expect(claims.sub).toBe(`system:serviceaccount:${namespace}:tenant-sa`);
    expect(claims.exp - claims.iat).toBe(3600);
    expect(claims['kubernetes.io'].pod?.name).toBe(pod.podName);

    // extraArgs and additionalVolumeMounts reached the apiserver: its argv, and an audit log in the shared emptyDir.
    expect(cmdline(apiserver.pid!)).toEqual(
      expect.arrayContaining([
        '--audit-policy-file=/etc/kubernetes/kdc-e2e-audit/policy.yaml',
        `--etcd-prefix=/${namespace}_${name}`,
      ]),
    );
    await waitFor(
      'audit log',
      async () =>
        readFileSync(join(runner.volumePath(namespace, name, 'shared')!, 'audit.log'), 'utf8').includes(
          '"resource":"configmaps"',
        ),
      { timeoutMs: 10_000 },
    );

    // The Pod object in the TCP namespace carries the kubelet's view.
    const podObject = await kube.get<any>(at(RESOURCES.pod, namespace, pod.podName));
    expect(podObject.spec.nodeName).toBe('kamaji-local-runner');
    expect(podObject.metadata.labels['kamaji.clastix.io/name']).toBe(name);
    await waitFor(
      'Pod object Ready',
      async () => {
        const p = await kube.get<any>(at(RESOURCES.pod, namespace, pod.podName));
        return (
          p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') &&
          p.status.initContainerStatuses.find((c: any) => c.name === 'web')?.ready === true
        );
      },
      { timeoutMs: 10_000 },
    );

    // A killed native sidecar is restarted and becomes ready again; the apiserver keeps running.
    process.kill(web.pid!, 'SIGKILL');
    const restarted = await waitFor(
      'sidecar restart',
      async () => {
        const c = runner.pod(namespace, name)?.containers.find((x) => x.name === 'web');
        return c && c.restartCount === 1 && c.ready && c.pid !== web.pid && c;
      },
      { timeoutMs: 20_000 },
    );
    expect(pidAlive(apiserver.pid!)).toBe(true);
    await waitFor(
      'restartCount on the Pod object',
      async () => {
        const p = await kube.get<any>(at(RESOURCES.pod, namespace, pod.podName));
        return p.status.initContainerStatuses.find((c: any) => c.name === 'web')?.restartCount === 1;
      },
      { timeoutMs: 10_000 },
    );

    // A template change (pod annotations here) replaces the pod; data and admin kubeconfig stay valid.
    await kube.patch(
      TCP(namespace, name),
      {
        spec: { controlPlane: { deployment: { podAdditionalMetadata: { annotations: { 'example.com/rev': '2' } } } } },
      },
      'merge',
    );
    const rolled = await runner.waitForPod(namespace, name, { notHash: pod.hash, timeoutMs: 60_000 });
    console.log(`template change -> new pod Ready in ${rolled.readyAt! - rolled.startedAt} ms after its start`);
    const gone = (pids: number[]) =>
      waitFor(`processes ${pids.join(', ')} to be gone`, async () => pids.every((p) => !pidAlive(p)), {
        timeoutMs: 5000,
      });
    await gone([restarted.pid!, apiserver.pid!, pod.sandboxPid!]);
    expect(rolled.hostPort).toBe(pod.hostPort);
    expect(await kube.getOrNull(at(RESOURCES.pod, namespace, pod.podName))).toBeNull();
    expect((await tenant.get<any>(at(RESOURCES.configMap, 'default', 'marker'))).data).toEqual({ a: 'b' });

    // Deleting the TCP stops everything and removes what the runner created.
    const pids = [...rolled.containers.map((c) => c.pid).filter((p): p is number => !!p), rolled.sandboxPid!];
    await kube.delete(TCP(namespace, name));
    await runner.waitForNoPod(namespace, name, 30_000);
    await gone(pids);
    expect((await kube.list<any>(at(RESOURCES.pod, namespace))).items).toEqual([]);
    expect(await kube.getOrNull(at(RESOURCES.secret, namespace, tcp.status.kubeconfig.admin.secretName))).toBeNull();
    expect(await listRaw(etcd.endpoint, prefix, 1)).toEqual([]);
  });
});
