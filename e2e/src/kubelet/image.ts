import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ImageConfig } from '@kdc/images';

// A container of the local Kamaji runner that runs from an image: the image's unpacked root
// filesystem becomes the container's `/` (bwrap binds it there), and what the image config says
// (entrypoint, cmd, env, user, working dir) applies with Kubernetes' rules. The image holds no
// setpriv, so the runner brings its own, read-only, under /.kdc-runner: the host's setpriv run by
// the host's dynamic loader with the host's libraries, which then execs the image's entrypoint
// under the image's own loader and libraries. Nothing else of the host is visible.

export interface OciImage {
  /** The unpacked root filesystem (shared by every container of that image; see rootfsFor). */
  rootfs: string;
  config: ImageConfig;
  /** The manifest digest (sha256:...): a reference pinned to another digest does not run this image. */
  digest?: string;
}

/** What the local runner can run for an image reference: a host argv (source mapping) or an image. */
export type LocalImage = string[] | OciImage;

export const isOciImage = (image: LocalImage | undefined): image is OciImage =>
  image !== undefined && !Array.isArray(image);

/**
 * What runs for an image reference: the entry for the exact reference, else for it without its
 * digest, else for its repository (every tag). A reference pinned to a digest never runs an
 * image of another digest, as a registry would not serve one.
 */
export function localImage(images: Record<string, LocalImage>, image: string | undefined): LocalImage | undefined {
  if (!image) return undefined;
  const [reference, digest] = image.split('@') as [string, string | undefined];
  const found = images[image] ?? images[reference] ?? images[reference.replace(/:[^:/]*$/, '')];
  if (digest && isOciImage(found) && found.digest && found.digest !== digest) {
    throw new Error(`image ${image}: the local image ${reference} has digest ${found.digest}, not ${digest}`);
  }
  return found;
}

const HELPER_DIR = '/.kdc-runner';

/** Kubernetes: `command` replaces the entrypoint, `args` the cmd; a command without args drops the cmd. */
export function ociArgv(image: OciImage, command: readonly string[], args: readonly string[]): string[] {
  if (command.length) return [...command, ...args];
  return [...(image.config.Entrypoint ?? []), ...(args.length ? args : (image.config.Cmd ?? []))];
}

/** The image's env (`K=V` entries), the base under what the pod spec sets. */
export function ociEnv(image: OciImage): Record<string, string> {
  return Object.fromEntries(
    (image.config.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );
}

/** The image's numeric user and group (`65532:65532`); a name would need the image's passwd. */
export function ociUser(image: OciImage): { uid?: number; gid?: number } {
  const [user, group] = (image.config.User ?? '').split(':');
  const num = (s: string | undefined) => (s && /^\d+$/.test(s) ? Number(s) : undefined);
  return { uid: user ? num(user) : 0, gid: num(group) };
}

/**
 * The root the container gets. Read-only containers share the unpacked image; a writable one
 * gets its own copy under its pod dir (a container's writable layer), so writes stay its own.
 */
export function rootfsFor(image: OciImage, readOnly: boolean, containerDir: string): string {
  if (readOnly) return image.rootfs;
  const copy = join(containerDir, 'rootfs');
  if (!existsSync(copy)) cpSync(image.rootfs, copy, { recursive: true, verbatimSymlinks: true });
  return copy;
}

let hostHelper: { lib: string; setpriv: string; loader: string } | undefined;
function helper() {
  if (!hostHelper) {
    const setpriv = realpathSync(execFileSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).trim());
    const loader = realpathSync('/lib64/ld-linux-x86-64.so.2');
    hostHelper = { lib: dirname(loader), setpriv, loader };
  }
  return hostHelper;
}

/**
 * bwrap arguments that make the image the container's root, with the runner's helper and
 * /etc/hosts. ensureMountPoint (isolation.ts) makes their mount points in the root first.
 */
export function ociRootArgs(
  root: string,
  hostsFile: string,
  ensureMountPoint: (dest: string, directory: boolean) => void,
): string[] {
  const h = helper();
  ensureMountPoint(join(root, HELPER_DIR, 'lib'), true);
  ensureMountPoint(join(root, HELPER_DIR, 'setpriv'), false);
  ensureMountPoint(join(root, 'etc/hosts'), false);
  return [
    '--bind',
    root,
    '/',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    '--ro-bind',
    h.lib,
    `${HELPER_DIR}/lib`,
    '--ro-bind',
    h.setpriv,
    `${HELPER_DIR}/setpriv`,
    '--ro-bind',
    hostsFile,
    '/etc/hosts',
  ];
}

/** The argv prefix that runs setpriv inside the image's root (its arguments follow). */
export function ociSetpriv(): string[] {
  return [
    `${HELPER_DIR}/lib/${helper().loader.split('/').pop()!}`,
    '--library-path',
    `${HELPER_DIR}/lib`,
    `${HELPER_DIR}/setpriv`,
  ];
}

/** The pod's /etc/hosts, as the kubelet writes it: loopback names and the pod's own name on its IP. */
export function writeHostsFile(path: string, podName: string, podIP: string): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${podIP}\t${podName}\n`);
  return path;
}
