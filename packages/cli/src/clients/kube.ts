// The user's kubeconfig (as kubectl would use it) and the objects the commands read.
import {
  parseDuration,
  KubeApiError,
  KubeClient,
  LABELS,
  isNotFound,
  type KubeObject,
  at,
  RESOURCES,
} from '@kdc/shared';
import type { FlagSpecs } from '../terminal/args.ts';
import { str } from '../terminal/args.ts';
import { failure, usageError } from '../errors.ts';

export const KUBE_FLAGS: FlagSpecs = {
  namespace: {
    type: 'string',
    short: 'n',
    value: 'ns',
    help: 'project namespace (default: the kubeconfig context namespace, else "default")',
  },
  kubeconfig: { type: 'string', value: 'file', help: 'kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)' },
  context: { type: 'string', value: 'name', help: 'kubeconfig context (default: current-context)' },
  'request-timeout': {
    type: 'string',
    value: 'duration',
    help: 'give up on a single API request after this long, e.g. 30s (0: no limit)',
  },
};

export interface KubeAccess {
  kube: KubeClient;
  namespace: string;
}

export function kubeAccess(
  flags: Record<string, string | boolean>,
  env: Record<string, string | undefined>,
): KubeAccess {
  const file = str(flags, 'kubeconfig') ?? env.KUBECONFIG;
  let kube: KubeClient;
  try {
    // KUBECONFIG may list several files (merged by loadFromDefault, like kubectl).
    if (file && !file.includes(':')) {
      kube = KubeClient.fromFile(file);
    } else {
      if (file) process.env.KUBECONFIG = file;
      kube = KubeClient.fromDefault();
    }
    const context = str(flags, 'context');
    if (context) {
      if (!kube.config.getContextObject(context))
        throw usageError(
          `kubeconfig has no context "${context}": pick one of ${
            kube.config
              .getContexts()
              .map((c) => c.name)
              .join(', ') || '(none)'
          }`,
        );
      kube.config.setCurrentContext(context);
      kube = new KubeClient(kube.config);
    }
  } catch (error) {
    if (error instanceof Error && error.name === 'CliError') throw error;
    throw usageError(
      `cannot use kubeconfig ${file ?? '(default)'}: ${error instanceof Error ? error.message : String(error)}; pass --kubeconfig <file> or set KUBECONFIG`,
    );
  }
  // kubectl retries what the apiserver answered 429 (e.g. storage still initializing): so does a person's command.
  kube.tooManyRequestsRetries = 5;
  const timeout = str(flags, 'request-timeout');
  if (timeout !== undefined) kube.requestTimeoutMs = requestTimeoutMs(timeout);
  const namespace =
    str(flags, 'namespace') ?? (kube.config.getContextObject(kube.config.getCurrentContext())?.namespace || 'default');
  return { kube, namespace };
}

/** kubectl's --request-timeout: a duration, or a bare number of seconds; 0 means none. */
export function requestTimeoutMs(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text) === 0 ? undefined : Number(text) * 1000;
  const parsed = parseDuration(text);
  if (!parsed.ok) throw usageError(`--request-timeout "${text}": ${parsed.error} (e.g. 30s, 1m, or 0 for no limit)`);
  return parsed.seconds === 0 ? undefined : parsed.seconds * 1000;
}

export const kdcClusterRef = (namespace: string, name?: string) => at(RESOURCES.kdcCluster, namespace, name);
export const kmsKeyRef = (namespace: string, name?: string) => at(RESOURCES.kmsKey, namespace, name);

/** Kubernetes API failures as CLI failures that say what was being done. */
export function kubeFailure(what: string, error: unknown): Error {
  if (error instanceof KubeApiError) {
    if (error.status === 401) return failure(`${what}: the kubeconfig's credentials were refused (401); log in again`);
    if (error.status === 403) return failure(`${what}: forbidden (403): your user needs RBAC for it`);
    return failure(`${what}: ${error.message}`);
  }
  const message = error instanceof Error ? error.message : String(error);
  return failure(`${what}: cannot reach the Kubernetes API (${message})`);
}

export async function getKdcCluster(kube: KubeClient, namespace: string, name: string): Promise<KubeObject> {
  try {
    return await kube.get<KubeObject>(kdcClusterRef(namespace, name));
  } catch (error) {
    if (isNotFound(error))
      throw failure(
        `KdcCluster "${name}" not found in namespace "${namespace}": check the name and -n (kubectl get kdc-cl -n ${namespace})`,
      );
    throw kubeFailure(`reading KdcCluster ${namespace}/${name}`, error);
  }
}

export async function getKmsKey(kube: KubeClient, namespace: string, name: string): Promise<KubeObject> {
  try {
    return await kube.get<KubeObject>(kmsKeyRef(namespace, name));
  } catch (error) {
    if (isNotFound(error))
      throw failure(
        `KMSKey "${name}" not found in namespace "${namespace}": check the name and -n (kubectl get kkey -n ${namespace})`,
      );
    throw kubeFailure(`reading KMSKey ${namespace}/${name}`, error);
  }
}

/** The organisation (OpenBao namespace) of a project namespace; undefined = root namespace. */
export async function organizationOf(kube: KubeClient, namespace: string): Promise<string | undefined> {
  try {
    const ns = await kube.getOrNull<KubeObject>(at(RESOURCES.namespace, undefined, namespace));
    return ns?.metadata?.labels?.[LABELS.organization] || undefined;
  } catch (error) {
    throw kubeFailure(
      `reading Namespace ${namespace} for its ${LABELS.organization} label (or pass --openbao-namespace)`,
      error,
    );
  }
}
