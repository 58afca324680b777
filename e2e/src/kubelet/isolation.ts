// How one container is isolated: `bwrap` gives it its root and only its own volumeMounts at the
// container paths; `setpriv` gives it the user, groups and capabilities of its security context
// (or of its image, where the spec is silent). The argv here is what the pod runs under
// `nsenter --net=<sandbox>`, so every container shares the pod network.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  isOciImage,
  localImage,
  ociRootArgs,
  ociSetpriv,
  ociUser,
  rootfsFor,
  writeHostsFile,
  type LocalImage,
} from './image.ts';
import type { ContainerSpec, PodSpecLite, SecurityContextSpec } from './pod-spec.ts';

const DEFAULT_CAPS = [
  'chown',
  'dac_override',
  'fowner',
  'fsetid',
  'kill',
  'setgid',
  'setuid',
  'setpcap',
  'net_bind_service',
  'net_raw',
  'sys_chroot',
  'mknod',
  'audit_write',
  'setfcap',
];

export interface Security {
  uid?: number;
  gid?: number;
  runAsNonRoot?: boolean;
  groups: number[];
  sc: SecurityContextSpec;
}

/** The identity a container runs as: its security context, else the pod's, else the image's USER (as a kubelet takes it). */
export function securityOf(pod: PodSpecLite, c: ContainerSpec, images: Record<string, LocalImage>): Security {
  const podSc = pod.securityContext ?? {};
  const sc = c.securityContext ?? {};
  const image = localImage(images, c.image);
  const fromImage = isOciImage(image) ? ociUser(image) : {};
  return {
    uid: sc.runAsUser ?? podSc.runAsUser ?? fromImage.uid,
    gid: sc.runAsGroup ?? podSc.runAsGroup ?? fromImage.gid,
    runAsNonRoot: sc.runAsNonRoot ?? podSc.runAsNonRoot,
    groups: [
      ...new Set([...(podSc.fsGroup !== undefined ? [podSc.fsGroup] : []), ...(podSc.supplementalGroups ?? [])]),
    ],
    sc,
  };
}

/** pkg/volume/util FsUserFrom: the runAsUser shared by every container, if they all set one. */
export function fsUser(pod: PodSpecLite, images: Record<string, LocalImage>): number | undefined {
  let user: number | undefined;
  for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
    const { uid } = securityOf(pod, c, images);
    if (uid === undefined || (user !== undefined && user !== uid)) return undefined;
    user = uid;
  }
  return user;
}

export function setprivArgs(security: Security, image: LocalImage | undefined): string[] {
  const { uid, gid, groups, sc } = security;
  const args = isOciImage(image) ? ociSetpriv() : ['setpriv'];
  if (uid !== undefined) args.push(`--reuid=${uid}`);
  if (uid !== undefined || gid !== undefined) args.push(`--regid=${gid ?? 0}`);
  args.push(groups.length ? `--groups=${groups.join(',')}` : '--clear-groups');
  if (sc.allowPrivilegeEscalation === false) args.push('--no-new-privs');
  if (!sc.privileged) {
    const norm = (cap: string) => cap.toLowerCase().replace(/^cap_/, '');
    const drop = (sc.capabilities?.drop ?? []).map(norm);
    let caps = drop.includes('all') ? [] : DEFAULT_CAPS.filter((cap) => !drop.includes(cap));
    caps = [...new Set([...caps, ...(sc.capabilities?.add ?? []).map(norm)])];
    args.push(`--bounding-set=-all${caps.map((cap) => `,+${cap}`).join('')}`);
  }
  return args;
}

/** Resolves a path through the host's existing symlinks (/var/run -> /run) before bwrap mounts there. */
export function resolveHostPath(path: string): string {
  let existing = path;
  const rest: string[] = [];
  while (!existsSync(existing) && existing !== '/') {
    rest.unshift(basename(existing));
    existing = dirname(existing);
  }
  return join(realpathSync(existing), ...rest);
}

/**
 * Creates a missing mount point on the host (bwrap binds onto the host's `/`) the way an image
 * would have it: directories 0755, so non-root containers can traverse to their mounts.
 */
export function ensureMountPoint(dest: string, directory: boolean): void {
  if (existsSync(dest)) return;
  const missing: string[] = [];
  for (let p = directory ? dest : dirname(dest); !existsSync(p); p = dirname(p)) missing.unshift(p);
  for (const dir of missing) {
    mkdirSync(dir);
    chmodSync(dir, 0o755);
  }
  if (!directory) writeFileSync(dest, '', { mode: 0o644 });
}

export interface MountableVolume {
  path: string;
  readOnly: boolean;
}

/**
 * The container's root and its mounts: the host's `/` for a host-mapped image, the image's own
 * root for an image (image.ts). Mount points are made first, 0755 as an image's own dirs
 * are (bwrap would make some 0700 and a non-root container could not pass them).
 */
export function bwrapArgs(input: {
  container: ContainerSpec;
  image: LocalImage | undefined;
  security: Security;
  podDir: string;
  podName: string;
  podIP: string;
  volume: (name: string) => MountableVolume | undefined;
}): string[] {
  const c = input.container;
  const oci = isOciImage(input.image) ? input.image : undefined;
  const readOnly = c.securityContext?.readOnlyRootFilesystem === true;
  const root = oci ? rootfsFor(oci, readOnly, join(input.podDir, 'containers', c.name)) : '/';
  const args = oci
    ? ociRootArgs(root, writeHostsFile(join(input.podDir, 'etc-hosts'), input.podName, input.podIP), ensureMountPoint)
    : ['--bind', '/', '/', '--dev', '/dev', '--proc', '/proc'];
  const mounts = [...(c.volumeMounts ?? [])].sort(
    (a, b) => a.mountPath.split('/').length - b.mountPath.split('/').length,
  );
  for (const m of mounts) {
    const volume = input.volume(m.name);
    if (!volume) throw new Error(`container ${c.name} mounts unknown volume ${m.name}`);
    let source = volume.path;
    if (m.subPath) {
      source = join(volume.path, m.subPath);
      if (!existsSync(source)) mkdirSync(source, { recursive: true });
      source = realpathSync(source);
    }
    const dest = oci ? m.mountPath : resolveHostPath(m.mountPath);
    ensureMountPoint(oci ? join(root, m.mountPath) : dest, statSync(source).isDirectory());
    args.push(m.readOnly || volume.readOnly ? '--ro-bind' : '--bind', source, dest);
  }
  if (readOnly) args.push('--remount-ro', '/');
  const workingDir = c.workingDir ?? (oci ? (oci.config.WorkingDir ?? '/') : undefined);
  if (workingDir) args.push('--chdir', workingDir);
  args.push('--die-with-parent', '--', ...setprivArgs(input.security, input.image));
  return args;
}

/** Fails with a clear message when a tool the runner needs is missing (never a silent skip). */
export function checkSandboxTools(): void {
  const missing: string[] = [];
  for (const [tool, pkg] of [
    ['bwrap', 'bubblewrap'],
    ['nsenter', 'util-linux'],
    ['setpriv', 'util-linux'],
  ] as const) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      missing.push(`${tool} (apt package ${pkg})`);
    }
  }
  if (missing.length)
    throw new Error(
      `the local Kamaji runner needs ${missing.join(', ')}: install it (e.g. apt-get install bubblewrap util-linux)`,
    );
  if (process.getuid?.() !== 0)
    throw new Error(
      'the local Kamaji runner needs root (bwrap --unshare-net, nsenter and setpriv switch namespaces and users)',
    );
}
