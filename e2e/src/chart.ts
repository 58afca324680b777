import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { KubeClient, requestServiceAccountToken, type KubeObject, type ResourceRef, RESOURCES } from '@kdc/shared';
import { ensureBinaries } from './binaries.ts';
import type { PlatformState } from './platform.ts';

export const CHART_DIR = fileURLToPath(new URL('../../charts/kdc-encryption', import.meta.url));
export const CHART_CI_VALUES = join(CHART_DIR, 'ci/test-values.yaml');

/** The controllers run as the chart's ServiceAccounts, installed as release `kdc` here. */
export const CONTROLLER_RELEASE = { name: 'kdc', namespace: 'kube-dc-system' };
export type ControllerIdentity = 'k8-manager' | 'encryption-reconciler';

let helm: Promise<string> | undefined;

/** `helm template` of our chart: the objects it would install. */
export async function renderChart(input: {
  release: string;
  namespace: string;
  valuesFile?: string;
  set?: Record<string, string>;
  setFile?: Record<string, string>;
}): Promise<KubeObject[]> {
  helm ??= ensureBinaries(['helm']).then((b) => b.helm);
  const args = [
    'template',
    input.release,
    CHART_DIR,
    '--namespace',
    input.namespace,
    '-f',
    input.valuesFile ?? CHART_CI_VALUES,
  ];
  for (const [key, value] of Object.entries(input.set ?? {})) args.push('--set', `${key}=${value}`);
  for (const [key, file] of Object.entries(input.setFile ?? {})) args.push('--set-file', `${key}=${file}`);
  const { stdout } = await promisify(execFile)(await helm, args, { maxBuffer: 1 << 24 });
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => Boolean(o?.kind));
}

/** Runs helm against the apiserver of `kubeconfig`; the output, or an error with helm's own message. */
export async function helmRun(
  kubeconfig: string,
  args: string[],
  options: { timeoutMs?: number } = {},
): Promise<string> {
  helm ??= ensureBinaries(['helm']).then((b) => b.helm);
  try {
    const { stdout } = await promisify(execFile)(await helm, [...args, '--kubeconfig', kubeconfig], {
      maxBuffer: 1 << 24,
      timeout: options.timeoutMs ?? 600_000,
    });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`helm ${args.slice(0, 2).join(' ')} failed: ${(e.stderr || e.message).trim()}`);
  }
}

/** The chart values that point each image at one we built (tag and digest): what an operator pinning digests sets. */
export function imageValues(built: Record<string, { ref: string; digest: string }>): Record<string, string> {
  const keys: Record<string, string> = {
    'k8-manager': 'k8Manager.image',
    'encryption-reconciler': 'encryptionReconciler.image',
    'kms-plugin': 'k8Manager.kmsPluginImage',
    'kdc-backup': 'k8Manager.backupImage',
  };
  const values: Record<string, string> = {};
  for (const [name, key] of Object.entries(keys)) {
    const image = built[name];
    if (!image) throw new Error(`no built image ${name}`);
    const [registryAndRepo, tag] = [
      image.ref.slice(0, image.ref.lastIndexOf(':')),
      image.ref.slice(image.ref.lastIndexOf(':') + 1),
    ];
    const slash = registryAndRepo.indexOf('/');
    Object.assign(values, {
      [`${key}.registry`]: registryAndRepo.slice(0, slash),
      [`${key}.repository`]: registryAndRepo.slice(slash + 1),
      [`${key}.tag`]: tag,
      [`${key}.digest`]: image.digest,
    });
  }
  return values;
}

/** Where an object of the rendered chart lives on the API. */
export function refOf(object: KubeObject): ResourceRef {
  const [group, version] = object.apiVersion!.includes('/') ? object.apiVersion!.split('/') : ['', object.apiVersion!];
  // Every kind the chart renders pluralises regularly.
  return {
    group: group!,
    version: version!,
    plural: `${object.kind!.toLowerCase()}s`,
    namespace: object.metadata?.namespace,
    name: object.metadata?.name,
  };
}

const IDENTITY_KINDS = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'RoleBinding']);
// Per management apiserver (some tests run their own), once per test process.
const installed = new Map<string, Promise<Record<ControllerIdentity, string>>>();

/**
 * The chart's ServiceAccounts and RBAC on the management apiserver, and a kubeconfig per
 * controller that authenticates as its ServiceAccount: every e2e test then runs the controllers
 * with exactly the permissions the chart grants. Once per test process (apply is idempotent).
 */
export function controllerKubeconfigs(p: PlatformState): Promise<Record<ControllerIdentity, string>> {
  const adminKubeconfig = p.management.kubeconfig;
  if (!installed.has(adminKubeconfig)) installed.set(adminKubeconfig, install(p, adminKubeconfig));
  return installed.get(adminKubeconfig)!;
}

async function install(p: PlatformState, adminKubeconfig: string): Promise<Record<ControllerIdentity, string>> {
  const admin = KubeClient.fromFile(adminKubeconfig);
  const objects = await renderChart({ release: CONTROLLER_RELEASE.name, namespace: CONTROLLER_RELEASE.namespace });
  await admin.apply(
    { ...RESOURCES.namespace, name: CONTROLLER_RELEASE.namespace },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: CONTROLLER_RELEASE.namespace } },
    'kdc-e2e',
  );
  // The helm test hook's identity exists only while `helm test` runs.
  for (const object of objects.filter((o) => IDENTITY_KINDS.has(o.kind!) && !o.metadata?.annotations?.['helm.sh/hook']))
    await admin.apply(refOf(object), object, 'kdc-e2e');
  const kubeconfigs = {} as Record<ControllerIdentity, string>;
  for (const identity of ['k8-manager', 'encryption-reconciler'] as const) {
    const token = await requestServiceAccountToken(admin, CONTROLLER_RELEASE.namespace, identity, undefined, 6 * 3600);
    const file = join(p.dir, `kubeconfig-${identity}-${process.pid}-${installed.size}.yaml`);
    writeFileSync(file, kubeconfig(adminKubeconfig, identity, token), { mode: 0o600 });
    kubeconfigs[identity] = file;
  }
  return kubeconfigs;
}

/** Grants a controller its own-namespace rules (Lease, master-config, cleanup tasks) in another namespace, as a sharded release there would. */
export async function bindControllerNamespace(
  p: PlatformState,
  identity: ControllerIdentity,
  namespace: string,
): Promise<void> {
  if (namespace === CONTROLLER_RELEASE.namespace) return;
  const admin = KubeClient.fromFile(p.management.kubeconfig);
  const roles = [
    `${CONTROLLER_RELEASE.name}-controller-namespace`,
    ...(identity === 'encryption-reconciler' ? [`${CONTROLLER_RELEASE.name}-encryption-reconciler-cleanup`] : []),
  ];
  for (const role of roles) {
    const name = `${role}-${identity}`;
    await admin.apply(
      { ...RESOURCES.roleBinding, namespace, name },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name, namespace },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ kind: 'ServiceAccount', name: identity, namespace: CONTROLLER_RELEASE.namespace }],
      },
      'kdc-e2e',
    );
  }
}

/** A token kubeconfig for the same apiserver (server and CA) as the admin one. */
function kubeconfig(adminKubeconfig: string, user: string, token: string): string {
  const admin = parse(readFileSync(adminKubeconfig, 'utf8')) as {
    clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  };
  const { server, 'certificate-authority-data': ca } = admin.clusters[0]!.cluster;
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'management', cluster: { server, 'certificate-authority-data': ca } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: user, context: { cluster: 'management', user } }],
    'current-context': user,
  });
}

/** NODE_OPTIONS the chart's default values give a component: its own `nodeOptions`, else the shared one. */
export function chartNodeOptions(component: 'k8Manager' | 'encryptionReconciler'): string {
  const values = parse(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as {
    nodeOptions: string;
  } & Record<typeof component, { nodeOptions: string }>;
  return values[component].nodeOptions || values.nodeOptions;
}

/** The encryption-reconciler's OPENBAO_DRIFT_CHECK_PERIOD as the chart's default values set it (benches run it). */
export function chartDriftCheckPeriod(): string {
  const values = parse(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as {
    encryptionReconciler: { openBaoDriftCheckPeriod: string };
  };
  return values.encryptionReconciler.openBaoDriftCheckPeriod;
}
