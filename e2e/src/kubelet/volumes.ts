// A pod's volumes as host dirs: emptyDir, hostPath and PersistentVolumeClaim dirs are bound in
// as they are; Secret, ConfigMap, downward API and projected volumes (ServiceAccount tokens
// included) are written with the kubelet's layout, ownership and modes, and re-written on resync.
import { chmodSync, chownSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { at, RESOURCES, type KubeClient } from '@kdc/shared';
import { atomicWrite, safeReaddir, type FileProjection } from './atomic-writer.ts';
import type { ContainerState } from './container.ts';
import { fieldValue, readConfig, type ConfigKind } from './env.ts';
import type { MountableVolume, Security } from './isolation.ts';
import type { DownwardItem, KeyToPath, PodObject, VolumeSpec } from './pod-spec.ts';

interface MaterializedVolume extends MountableVolume {
  spec: VolumeSpec;
  tokens: Map<string, { token: string; refreshAt: number }>;
}

export interface PodVolumesOptions {
  kube: KubeClient;
  pod: PodObject;
  /** The pod's working dir: volumes are under `volumes/<name>`. */
  dir: string;
  podIP: string;
  /** The pod's FsUser (isolation.ts fsUser): owner of projected tokens. */
  fsUser: () => number | undefined;
  ownership: 'kubelet' | 'world-readable';
  /** The host dir behind a PersistentVolumeClaim of the pod's namespace. */
  claimPath?: (claimName: string) => string;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

export class PodVolumes {
  private readonly options: PodVolumesOptions;
  private readonly volumes = new Map<string, MaterializedVolume>();
  private readonly warned = new Set<string>();

  constructor(options: PodVolumesOptions) {
    this.options = options;
    mkdirSync(join(options.dir, 'volumes'), { recursive: true });
  }

  get(name: string): MountableVolume | undefined {
    return this.volumes.get(name);
  }

  /** Makes every volume that is missing and re-writes the projected ones (the kubelet's sync). */
  async materialize(): Promise<void> {
    const { pod } = this.options;
    const fsGroup = pod.spec.securityContext?.fsGroup;
    for (const v of pod.spec.volumes ?? []) {
      const existing = this.volumes.get(v.name);
      if (existing) {
        if (existing.spec.emptyDir || existing.spec.hostPath || existing.spec.persistentVolumeClaim) continue;
        await this.writeProjection(existing, fsGroup);
        continue;
      }
      const path = join(this.options.dir, 'volumes', v.name);
      if (v.emptyDir) {
        mkdirSync(path, { recursive: true });
        chmodSync(path, 0o777);
        if (fsGroup !== undefined) {
          chownSync(path, 0, fsGroup);
          chmodSync(path, 0o2777);
        }
        this.volumes.set(v.name, { spec: v, path, tokens: new Map(), readOnly: false });
      } else if (v.hostPath) {
        const type = v.hostPath.type ?? '';
        if (!existsSync(v.hostPath.path)) {
          if (type === 'DirectoryOrCreate') mkdirSync(v.hostPath.path, { recursive: true, mode: 0o755 });
          else if (type === 'FileOrCreate') writeFileSync(v.hostPath.path, '', { mode: 0o644 });
          else if (type) throw new Error(`hostPath ${v.hostPath.path} does not exist (type ${type})`);
        }
        this.volumes.set(v.name, { spec: v, path: v.hostPath.path, tokens: new Map(), readOnly: false });
      } else if (v.persistentVolumeClaim) {
        if (!this.options.claimPath)
          throw new Error(`volume ${v.name}: PersistentVolumeClaims are not provided to this pod`);
        const claimDir = this.options.claimPath(v.persistentVolumeClaim.claimName);
        if (!existsSync(claimDir)) {
          mkdirSync(claimDir, { recursive: true, mode: 0o755 });
          if (fsGroup !== undefined) {
            chownSync(claimDir, 0, fsGroup);
            chmodSync(claimDir, 0o2775);
          }
        }
        const readOnly = Boolean(v.persistentVolumeClaim.readOnly);
        this.volumes.set(v.name, { spec: v, path: claimDir, tokens: new Map(), readOnly });
      } else if (v.secret || v.configMap || v.projected || v.downwardAPI) {
        mkdirSync(path, { recursive: true, mode: 0o755 });
        const volume: MaterializedVolume = { spec: v, path, tokens: new Map(), readOnly: true };
        await this.writeProjection(volume, fsGroup);
        this.volumes.set(v.name, volume);
      } else {
        const kind = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
        throw new Error(`volume ${v.name}: type ${kind} is not supported by the local runner`);
      }
    }
  }

  private async serviceAccountToken(
    volume: MaterializedVolume,
    source: { audience?: string; expirationSeconds?: number; path: string },
  ): Promise<string> {
    const cached = volume.tokens.get(source.path);
    if (cached && Date.now() < cached.refreshAt) return cached.token;
    const { pod, kube } = this.options;
    const expirationSeconds = source.expirationSeconds ?? 3600;
    const sa = pod.spec.serviceAccountName ?? 'default';
    const response = await kube.post<{ status: { token: string; expirationTimestamp: string } }>(
      { ...at(RESOURCES.serviceAccount, pod.metadata.namespace, sa), subresource: 'token' },
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          ...(source.audience ? { audiences: [source.audience] } : {}),
          expirationSeconds,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
        },
      },
    );
    const issued = Date.now();
    const ttl = Date.parse(response.status.expirationTimestamp) - issued;
    // The kubelet refreshes a projected token at 80% of its lifetime (or after 24 h).
    const refreshAt = issued + Math.min(ttl * 0.8, 24 * 3600_000);
    volume.tokens.set(source.path, { token: response.status.token, refreshAt });
    return response.status.token;
  }

  private async keyFiles(
    kind: ConfigKind,
    source: { name?: string; items?: KeyToPath[]; optional?: boolean },
    mode: number,
    out: Map<string, FileProjection>,
  ): Promise<void> {
    const { name, items, optional } = source;
    const obj = name ? await readConfig(this.options.kube, this.options.pod.metadata.namespace, kind, name) : null;
    if (!obj) {
      if (optional) return;
      throw new Error(`MountVolume.SetUp failed: ${kind === 'secret' ? 'secret' : 'configmap'} "${name}" not found`);
    }
    const values = new Map<string, Buffer>();
    for (const [k, v] of Object.entries(obj.data ?? {}))
      values.set(k, kind === 'secret' ? Buffer.from(v, 'base64') : Buffer.from(v));
    for (const [k, v] of Object.entries(obj.binaryData ?? {})) values.set(k, Buffer.from(v, 'base64'));
    if (items?.length) {
      for (const item of items) {
        const value = values.get(item.key);
        if (value === undefined) {
          if (optional) continue;
          throw new Error(`MountVolume.SetUp failed: ${name} has no key ${item.key}`);
        }
        out.set(item.path, { data: value, mode: item.mode ?? mode });
      }
    } else {
      for (const [k, v] of values) out.set(k, { data: v, mode });
    }
  }

  private async writeProjection(volume: MaterializedVolume, fsGroup: number | undefined): Promise<void> {
    const v = volume.spec;
    const { pod, podIP } = this.options;
    const files = new Map<string, FileProjection>();
    const downward = (items: DownwardItem[] | undefined, mode: number) => {
      for (const item of items ?? [])
        if (item.fieldRef)
          files.set(item.path, {
            data: Buffer.from(fieldValue(pod, podIP, item.fieldRef.fieldPath)),
            mode: item.mode ?? mode,
          });
    };
    if (v.secret)
      await this.keyFiles('secret', { ...v.secret, name: v.secret.secretName }, v.secret.defaultMode ?? 0o644, files);
    else if (v.configMap) await this.keyFiles('configMap', v.configMap, v.configMap.defaultMode ?? 0o644, files);
    else if (v.downwardAPI) downward(v.downwardAPI.items, v.downwardAPI.defaultMode ?? 0o644);
    else if (v.projected) {
      const mode = v.projected.defaultMode ?? 0o644;
      const fsUser = this.options.fsUser();
      for (const source of v.projected.sources ?? []) {
        if (source.secret) await this.keyFiles('secret', source.secret, mode, files);
        else if (source.configMap) await this.keyFiles('configMap', source.configMap, mode, files);
        else if (source.downwardAPI) downward(source.downwardAPI.items, mode);
        else if (source.serviceAccountToken) {
          // pkg/volume/projected: 0600 and owned by the pod's FsUser when FsUser or FsGroup is set.
          const tokenMode = fsUser !== undefined || fsGroup !== undefined ? 0o600 : mode;
          files.set(source.serviceAccountToken.path, {
            data: Buffer.from(await this.serviceAccountToken(volume, source.serviceAccountToken)),
            mode: tokenMode,
            uid: fsUser,
          });
        } else {
          throw new Error(`projected volume ${v.name}: unsupported source ${Object.keys(source).join(',')}`);
        }
      }
    }
    atomicWrite(volume.path, files, fsGroup, this.options.ownership === 'world-readable');
  }

  /** A warning in the container's log when a non-root container cannot read a file mounted for it. */
  warnUnreadable(c: ContainerState, security: Security): void {
    const { uid, gid, groups } = security;
    if (!uid) return;
    const myGroups = new Set([gid ?? 0, ...groups]);
    for (const m of c.spec.volumeMounts ?? []) {
      const volume = this.volumes.get(m.name);
      if (!volume || !volume.readOnly) continue;
      for (const entry of safeReaddir(volume.path)) {
        if (entry.startsWith('..')) continue;
        const file = join(volume.path, entry);
        let st;
        try {
          st = statSync(file);
        } catch {
          continue;
        }
        if (!st.isFile()) continue;
        const readable = st.uid === uid ? st.mode & 0o400 : myGroups.has(st.gid) ? st.mode & 0o040 : st.mode & 0o004;
        const key = `${c.spec.name}/${m.name}/${entry}`;
        if (readable || this.warned.has(key)) continue;
        this.warned.add(key);
        const mode = (st.mode & 0o7777).toString(8);
        c.note(
          `WARNING: ${join(m.mountPath, entry)} (mode ${mode}, owner ${st.uid}:${st.gid}) is not readable by uid ${uid} gid ${gid ?? 0} groups [${groups.join(',')}]; a kubelet sets the same ownership (set podSecurityContext.fsGroup, or a defaultMode readable by others)`,
        );
        this.options.log('unreadable volume file', {
          pod: this.options.pod.metadata.name,
          container: c.spec.name,
          file: join(m.mountPath, entry),
          mode,
          uid: st.uid,
          gid: st.gid,
          runAsUser: uid,
        });
      }
    }
  }
}
