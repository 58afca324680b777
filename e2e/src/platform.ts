import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient, OPENBAO_K8S_AUTH_MOUNT, requestServiceAccountToken, at, RESOURCES } from '@kdc/shared';
import { ensureBinaries, type BinaryName } from './binaries.ts';
import { applyCrds, kamajiCrds, platformCrds } from './crds.ts';
import { startEtcd, type EtcdServer } from './etcd.ts';
import { startKubeApiserver, type KubeApiserver } from './kube-apiserver.ts';
import { configureKubernetesAuth, openBaoVersion, startOpenBao, type OpenBaoServer } from './openbao.ts';
import { createCA } from './pki.ts';
import { startS3, type S3Server } from './s3.ts';

/** Everything a test or a later process needs to reach the running platform (JSON-safe). */
export interface PlatformState {
  dir: string;
  logDir: string;
  binaries: Record<BinaryName, string>;
  etcd: { endpoint: string; pid: number; dataDir: string };
  management: { url: string; kubeconfig: string; caPem: string; pid: number; serviceAccountIssuer: string };
  openbao: {
    url: string;
    caPem: string;
    rootToken: string;
    pid: number;
    auditLog: string;
    flavor: string;
    kubernetesAuthMount: string;
  };
  s3: { endpoint: string; accessKeyId: string; secretAccessKey: string; region: string; bucket: string; pid: number };
  versions: { etcd: string; kubeApiserver: string; openbao: string; s3: string };
  readyMs: { etcd: number; kubeApiserver: number; openbao: number; s3: number; total: number };
}

export interface Platform {
  state: PlatformState;
  etcd: EtcdServer;
  management: KubeApiserver;
  openbao: OpenBaoServer;
  s3: S3Server;
  /** Stops every server this platform started (by pid) and removes its temp dir, keeping logs. */
  stop(options?: { keepLogs?: boolean }): Promise<void>;
}

export interface PlatformOptions {
  dir?: string;
  detached?: boolean;
  /** Default: ours and Kamaji's. The demo installs ours with the chart: `{ kdc: false, kamaji: true }`. */
  installCrds?: boolean | { kdc: boolean; kamaji: boolean };
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, Math.round(performance.now() - start)];
}

function versionOf(binary: string, args: string[], pattern: RegExp): string {
  const out = execFileSync(binary, args, { encoding: 'utf8' });
  return pattern.exec(out)?.[1] ?? out.trim().split('\n')[0]!;
}

/** The ServiceAccount whose token OpenBao uses for TokenReviews against the management cluster. */
export async function reviewerToken(kube: KubeClient): Promise<string> {
  const sa = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'openbao-auth', namespace: 'kube-system' } };
  await kube.apply(at(RESOURCES.serviceAccount, 'kube-system', 'openbao-auth'), sa, 'kdc-platform');
  await kube.apply(
    { ...RESOURCES.clusterRoleBinding, name: 'openbao-auth-delegator' },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'openbao-auth-delegator' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'openbao-auth', namespace: 'kube-system' }],
    },
    'kdc-platform',
  );
  return requestServiceAccountToken(kube, 'kube-system', 'openbao-auth', undefined, 7 * 86_400);
}

export async function startPlatform(options: PlatformOptions = {}): Promise<Platform> {
  const totalStart = performance.now();
  const binaries = await ensureBinaries(['etcd', 'kubernetes', 'vault', 'minio']);
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'kdc-platform-'));
  const logDir = join(dir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const ca = createCA(join(dir, 'pki'), 'platform');
  const detached = options.detached ?? false;

  const started: { stop(): Promise<void> }[] = [];
  try {
    const etcdP = timed(() => startEtcd({ binary: binaries.etcd, dir, logDir, detached })).then(
      (r) => (started.push(r[0]), r),
    );
    const baoP = timed(() => startOpenBao({ binary: binaries.vault, dir, logDir, ca, detached })).then(
      (r) => (started.push(r[0]), r),
    );
    const s3P = timed(() => startS3({ binary: binaries.minio, dir, logDir, detached })).then(
      (r) => (started.push(r[0]), r),
    );
    const [etcd, etcdMs] = await etcdP;
    const [management, apiMs] = await timed(() =>
      startKubeApiserver({
        binary: binaries['kube-apiserver'],
        dir,
        logDir,
        etcdEndpoint: etcd.endpoint,
        name: 'management',
        detached,
      }),
    );
    started.push(management);
    const [[openbao, baoMs], [s3, s3Ms]] = await Promise.all([baoP, s3P]);

    const kube = KubeClient.fromFile(management.kubeconfig);
    await configureKubernetesAuth(openbao, {
      mount: OPENBAO_K8S_AUTH_MOUNT,
      kubernetesHost: management.url,
      caPem: management.ca.certPem,
      reviewerJwt: await reviewerToken(kube),
    });
    const crds = options.installCrds ?? true;
    const wanted = typeof crds === 'boolean' ? { kdc: crds, kamaji: crds } : crds;
    await applyCrds(kube, [...(wanted.kdc ? platformCrds() : []), ...(wanted.kamaji ? kamajiCrds() : [])]);

    const state: PlatformState = {
      dir,
      logDir,
      binaries,
      etcd: { endpoint: etcd.endpoint, pid: etcd.process.pid, dataDir: etcd.dataDir },
      management: {
        url: management.url,
        kubeconfig: management.kubeconfig,
        caPem: management.ca.certPem,
        pid: management.process.pid,
        serviceAccountIssuer: management.serviceAccountIssuer,
      },
      openbao: {
        url: openbao.url,
        caPem: openbao.caPem,
        rootToken: openbao.rootToken,
        pid: openbao.process.pid,
        auditLog: openbao.auditLog,
        flavor: openbao.flavor,
        kubernetesAuthMount: OPENBAO_K8S_AUTH_MOUNT,
      },
      s3: {
        endpoint: s3.endpoint,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        region: s3.region,
        bucket: s3.bucket,
        pid: s3.process.pid,
      },
      versions: {
        etcd: versionOf(binaries.etcd, ['--version'], /etcd Version: (\S+)/),
        kubeApiserver: versionOf(binaries['kube-apiserver'], ['--version'], /Kubernetes (\S+)/),
        openbao: `${openbao.flavor} ${await openBaoVersion(binaries.vault)}`,
        s3: `minio ${versionOf(binaries.minio, ['--version'], /version (\S+)/)}`,
      },
      readyMs: {
        etcd: etcdMs,
        kubeApiserver: apiMs,
        openbao: baoMs,
        s3: s3Ms,
        total: Math.round(performance.now() - totalStart),
      },
    };
    writeFileSync(join(dir, 'platform.json'), JSON.stringify(state, null, 2), { mode: 0o600 });
    return {
      state,
      etcd,
      management,
      openbao,
      s3,
      stop: async (stopOptions = {}) => {
        await Promise.all([management.stop(), openbao.stop(), s3.stop()]);
        await etcd.stop();
        removePlatformDir(dir, stopOptions.keepLogs ?? true);
      },
    };
  } catch (error) {
    await Promise.all(started.map((s) => s.stop().catch(() => undefined)));
    throw error;
  }
}

/** Removes a platform's temp dir; with keepLogs, everything but `logs/`. */
export function removePlatformDir(dir: string, keepLogs: boolean): void {
  if (!keepLogs) return rmSync(dir, { recursive: true, force: true });
  for (const entry of readdirSync(dir)) {
    if (entry !== 'logs') rmSync(join(dir, entry), { recursive: true, force: true });
  }
}
