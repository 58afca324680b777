// Where a DataStore's etcd keeps its data, read from the StatefulSet that runs it (pure): the
// restore Job mounts the same claim at the same path and writes the data dir etcd will start
// from, with the member name and peer URLs etcd expects.

export interface EtcdStatefulSet {
  metadata?: { name?: string };
  spec?: {
    replicas?: number;
    template?: { spec?: { securityContext?: Record<string, unknown>; containers?: EtcdContainer[] } };
    volumeClaimTemplates?: { metadata?: { name?: string } }[];
  };
  status?: { replicas?: number; readyReplicas?: number };
}

interface EtcdContainer {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }[];
  volumeMounts?: { name: string; mountPath: string }[];
  securityContext?: Record<string, unknown>;
}

export interface EtcdLayout {
  /** PersistentVolumeClaim of member 0: `<template>-<sts>-0`. */
  claimName: string;
  mountPath: string;
  dataDir: string;
  name?: string;
  initialCluster?: string;
  initialAdvertisePeerUrls?: string;
  /** The etcd pod's user, so the restored files belong to it. */
  podSecurityContext?: Record<string, unknown>;
  runAsUser?: number;
}

export type EtcdLayoutResult = { ok: true; layout: EtcdLayout } | { ok: false; reason: string; message: string };

/** `--flag=value` or `--flag value` from an argv, with `$(VAR)` expanded from the container env. */
function flag(argv: readonly string[], name: string, expand: (v: string) => string | null): string | undefined | null {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === `--${name}` && i + 1 < argv.length) return expand(argv[i + 1]!);
    if (a.startsWith(`--${name}=`)) return expand(a.slice(name.length + 3));
  }
  return undefined;
}

export function etcdLayout(sts: EtcdStatefulSet): EtcdLayoutResult {
  const stsName = sts.metadata?.name ?? '';
  const podName = `${stsName}-0`;
  const replicas = sts.spec?.replicas ?? 1;
  if (replicas > 1) {
    return {
      ok: false,
      reason: 'MultiReplicaUnsupported',
      message: `StatefulSet ${stsName} runs ${replicas} etcd members: a snapshot restore needs a single member (restoring a multi-member etcd is not supported)`,
    };
  }
  const containers = sts.spec?.template?.spec?.containers ?? [];
  const container = containers.find((c) =>
    [...(c.command ?? []), ...(c.args ?? [])].some((a) => a === '--data-dir' || a.startsWith('--data-dir=')),
  );
  if (!container)
    return {
      ok: false,
      reason: 'DataStoreUnmanaged',
      message: `StatefulSet ${stsName} has no container with an etcd --data-dir flag`,
    };
  const env = new Map(
    (container.env ?? []).map((e) => [
      e.name,
      e.value ?? (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name' ? podName : undefined),
    ]),
  );
  const unexpanded: string[] = [];
  const expand = (value: string) =>
    value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, v: string) => {
      const found = env.get(v);
      if (found === undefined) unexpanded.push(whole);
      return found ?? whole;
    });
  const argv = [...(container.command ?? []), ...(container.args ?? [])];
  const get = (name: string) => flag(argv, name, expand) ?? undefined;
  const dataDir = get('data-dir')!;
  if (!/^\/[A-Za-z0-9._/-]+$/.test(dataDir)) {
    return {
      ok: false,
      reason: 'DataStoreUnmanaged',
      message: `StatefulSet ${stsName}: the etcd --data-dir "${dataDir}" is not a plain absolute path`,
    };
  }
  const name = get('name');
  const initialCluster = get('initial-cluster');
  const initialAdvertisePeerUrls = get('initial-advertise-peer-urls');
  if (unexpanded.length) {
    return {
      ok: false,
      reason: 'DataStoreUnmanaged',
      message: `StatefulSet ${stsName}: cannot expand ${[...new Set(unexpanded)].join(', ')} in the etcd flags (only literal env values and fieldRef metadata.name are read)`,
    };
  }
  const claims = new Set(
    (sts.spec?.volumeClaimTemplates ?? []).map((t) => t.metadata?.name).filter(Boolean) as string[],
  );
  const mount = (container.volumeMounts ?? [])
    .filter(
      (m) =>
        claims.has(m.name) && (dataDir === m.mountPath || dataDir.startsWith(`${m.mountPath.replace(/\/$/, '')}/`)),
    )
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!mount)
    return {
      ok: false,
      reason: 'DataStoreUnmanaged',
      message: `StatefulSet ${stsName}: the etcd --data-dir ${dataDir} is not on a volumeClaimTemplate, so a restore could not persist`,
    };
  if (dataDir.replace(/\/$/, '') === mount.mountPath.replace(/\/$/, '')) {
    return {
      ok: false,
      reason: 'DataStoreUnmanaged',
      message: `StatefulSet ${stsName}: the etcd --data-dir is the volume root ${dataDir}; a restore swaps the data dir, so it must be a directory below the mount (e.g. ${mount.mountPath}/data)`,
    };
  }
  const runAsUser = container.securityContext?.runAsUser;
  return {
    ok: true,
    layout: {
      claimName: `${mount.name}-${podName}`,
      mountPath: mount.mountPath,
      dataDir,
      ...(name ? { name } : {}),
      ...(initialCluster ? { initialCluster } : {}),
      ...(initialAdvertisePeerUrls ? { initialAdvertisePeerUrls } : {}),
      ...(sts.spec?.template?.spec?.securityContext
        ? { podSecurityContext: sts.spec.template.spec.securityContext }
        : {}),
      ...(typeof runAsUser === 'number' ? { runAsUser } : {}),
    },
  };
}
