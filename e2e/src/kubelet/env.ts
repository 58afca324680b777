// What a container's process gets: its environment (image env, the node's, envFrom, env with
// fieldRef / secretKeyRef / configMapKeyRef) and its argv (image entrypoint and cmd, or the
// spec's command and args, `$(VAR)`-expanded), with the kubelet's rules and error reasons.
import { basename } from 'node:path';
import { at, RESOURCES, type KubeClient, type KubeObject } from '@kdc/shared';
import { isOciImage, ociArgv, type LocalImage } from './image.ts';
import type { ContainerSpec, KeySelector, PodObject } from './pod-spec.ts';

type DataObject = KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string> };
export type ConfigKind = 'secret' | 'configMap';

/** An error with the reason a kubelet reports in the container's waiting state. */
export class ContainerConfigError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** A Secret or ConfigMap of the pod's namespace (null: not found). */
export function readConfig(
  kube: KubeClient,
  namespace: string,
  kind: ConfigKind,
  name: string,
): Promise<DataObject | null> {
  return kube.getOrNull<DataObject>(at(RESOURCES[kind], namespace, name));
}

export const decodeValue = (kind: ConfigKind, value: string) =>
  kind === 'secret' ? Buffer.from(value, 'base64').toString('utf8') : value;

/** `$(VAR)` expansion of command, args and env values, as the kubelet does; `$$(` escapes. */
export function expandVars(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (whole === '$$') return '$';
    return name !== undefined && name in env ? env[name]! : whole;
  });
}

/** A downward API field of the pod (env fieldRef, downwardAPI volume items). */
export function fieldValue(pod: PodObject, podIP: string, fieldPath: string): string {
  const m = pod.metadata;
  const label = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (label) return (label[1] === 'labels' ? m.labels : m.annotations)?.[label[2]!] ?? '';
  const pairs = (record: Record<string, string> | undefined) =>
    Object.entries(record ?? {})
      .map(([k, v]) => `${k}="${v}"`)
      .join('\n');
  switch (fieldPath) {
    case 'metadata.name':
      return m.name;
    case 'metadata.namespace':
      return m.namespace;
    case 'metadata.uid':
      return m.uid ?? '';
    case 'metadata.labels':
      return pairs(m.labels);
    case 'metadata.annotations':
      return pairs(m.annotations);
    case 'spec.nodeName':
      return pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? 'default';
    case 'status.hostIP':
    case 'status.hostIPs':
      return '127.0.0.1';
    case 'status.podIP':
    case 'status.podIPs':
      return podIP;
    default:
      throw new Error(`unsupported fieldRef ${fieldPath}`);
  }
}

const kindName = (kind: ConfigKind) => (kind === 'secret' ? 'secret' : 'configmap');

/**
 * The container's environment. `imageEnv`: the image's env (an image container), else the
 * host's PATH (a host-mapped one). Secrets and ConfigMaps are read once per call.
 */
export async function containerEnv(input: {
  kube: KubeClient;
  pod: PodObject;
  podIP: string;
  container: ContainerSpec;
  uid: number | undefined;
  imageEnv?: Record<string, string>;
  nodeEnv: Record<string, string>;
}): Promise<Record<string, string>> {
  const { kube, pod, container: c } = input;
  const cache = new Map<string, DataObject | null>();
  const read = async (kind: ConfigKind, name: string) => {
    const key = `${kind}/${name}`;
    if (!cache.has(key)) cache.set(key, await readConfig(kube, pod.metadata.namespace, kind, name));
    return cache.get(key)!;
  };
  const keyValue = async (kind: ConfigKind, ref: KeySelector): Promise<string | undefined> => {
    const obj = ref.name ? await read(kind, ref.name) : null;
    const raw = obj?.data?.[ref.key];
    if (raw === undefined) {
      if (ref.optional) return undefined;
      throw new Error(`${kindName(kind)} "${ref.name}" ${obj ? `has no key "${ref.key}"` : 'not found'}`);
    }
    return decodeValue(kind, raw);
  };
  const env: Record<string, string> = {
    ...(input.imageEnv ?? {
      PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    }),
    HOME: input.uid ? '/' : '/root',
    HOSTNAME: pod.metadata.name,
    ...input.nodeEnv,
  };
  for (const from of c.envFrom ?? []) {
    const kind: ConfigKind = from.secretRef ? 'secret' : 'configMap';
    const ref = from.secretRef ?? from.configMapRef;
    if (!ref) continue;
    const obj = await read(kind, ref.name);
    if (!obj && !ref.optional) throw new Error(`${kindName(kind)} "${ref.name}" not found`);
    for (const [k, v] of Object.entries(obj?.data ?? {})) env[`${from.prefix ?? ''}${k}`] = decodeValue(kind, v);
  }
  for (const e of c.env ?? []) {
    let value: string | undefined;
    if (e.valueFrom?.fieldRef) value = fieldValue(pod, input.podIP, e.valueFrom.fieldRef.fieldPath);
    else if (e.valueFrom?.secretKeyRef) value = await keyValue('secret', e.valueFrom.secretKeyRef);
    else if (e.valueFrom?.configMapKeyRef) value = await keyValue('configMap', e.valueFrom.configMapKeyRef);
    else if (e.valueFrom?.resourceFieldRef) value = '0';
    else value = expandVars(e.value ?? '', env);
    if (value !== undefined) env[e.name] = value;
  }
  return env;
}

/**
 * The argv a container runs. Kubernetes semantics: `command` replaces the entrypoint (a command
 * named like a host-mapped image's binary resolves to it), `args` are appended; an image not in
 * the table runs its `command` from the host filesystem, and without one cannot be pulled.
 */
export function containerArgv(c: ContainerSpec, image: LocalImage | undefined, env: Record<string, string>): string[] {
  const expand = (s: string) => expandVars(s, env);
  const command = (c.command ?? []).map(expand);
  const args = (c.args ?? []).map(expand);
  if (isOciImage(image)) {
    const argv = ociArgv(image, command, args);
    if (!argv.length)
      throw new ContainerConfigError(
        'CreateContainerError',
        `image "${c.image}" has no entrypoint or cmd and the container no command`,
      );
    return argv;
  }
  if (image) {
    if (!command.length) return [...image, ...args];
    const [first, ...rest] = command;
    return [!first!.includes('/') && basename(image[0]!) === first ? image[0]! : first!, ...rest, ...args];
  }
  if (command.length) return [...command, ...args];
  throw new ContainerConfigError(
    'ErrImagePull',
    `image "${c.image}" is not in the local runner's image table and the container has no command`,
  );
}
