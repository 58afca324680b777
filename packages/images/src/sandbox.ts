import type { ImageConfig } from './layout.ts';

export interface SandboxRun {
  /** Arguments after the entrypoint (default: the image's Cmd). */
  args?: readonly string[];
  /** Env on top of the image's. */
  env?: Record<string, string>;
  /** Host paths mounted into the container (a Secret, a socket directory). */
  binds?: readonly { host: string; path: string; readOnly?: boolean }[];
}

/**
 * The bwrap arguments that run an image's entrypoint from its unpacked root filesystem as its
 * config says (user, working dir, env only; bwrap adds PWD), the root read-only and /tmp a fresh tmpfs: the
 * shape of a pod with readOnlyRootFilesystem and an emptyDir at /tmp. The user is switched in a
 * user namespace: inside, the process is the image's user with no capabilities; the kernel
 * checks its file access as the caller's uid outside, so a bound file need not be chowned.
 */
export function sandboxArgs(rootfs: string, config: ImageConfig, run: SandboxRun = {}): string[] {
  const [uid, gid] = (config.User ?? '0:0').split(':');
  const out = [
    '--ro-bind',
    rootfs,
    '/',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--tmpfs',
    '/tmp',
    '--unshare-user',
    '--unshare-ipc',
    '--unshare-pid',
    '--die-with-parent',
    '--uid',
    uid!,
    '--gid',
    gid ?? uid!,
  ];
  for (const b of run.binds ?? []) {
    // The unpacked tree is shared and never written: mount points can only be made in the tmpfs.
    if (!b.path.startsWith('/tmp/'))
      throw new Error(
        `bind ${b.path}: the sandbox mounts only under /tmp/ (a tmpfs), so the shared root filesystem is never written`,
      );
    out.push(b.readOnly ? '--ro-bind' : '--bind', b.host, b.path);
  }
  out.push('--clearenv');
  if (config.WorkingDir) out.push('--chdir', config.WorkingDir);
  for (const entry of config.Env ?? []) {
    const at = entry.indexOf('=');
    out.push('--setenv', entry.slice(0, at), entry.slice(at + 1));
  }
  for (const [k, v] of Object.entries(run.env ?? {})) out.push('--setenv', k, v);
  return [...out, '--', ...(config.Entrypoint ?? []), ...(run.args?.length ? run.args : (config.Cmd ?? []))];
}
