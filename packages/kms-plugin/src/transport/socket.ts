import { connect } from 'node:net';
import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Makes `path` free for a new listener: refuses a symlink or a non-socket, refuses when another
 * process still answers on it, removes a stale socket (the previous instance crashed).
 */
export async function prepareSocket(path: string): Promise<'fresh' | 'stale-removed'> {
  await mkdir(dirname(path), { recursive: true });
  const stat = await lstat(path).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : Promise.reject(e)));
  if (!stat) return 'fresh';
  if (stat.isSymbolicLink()) throw new Error(`refusing to use ${path}: it is a symbolic link`);
  if (!stat.isSocket()) throw new Error(`refusing to use ${path}: it exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`another process is listening on ${path}; refusing to take it over`);
  await unlink(path);
  return 'stale-removed';
}

/** 0600, or 0660 with the socket's group set to `group`. */
export async function restrictSocket(path: string, group?: number): Promise<void> {
  if (group !== undefined) {
    await chown(path, -1, group);
    await chmod(path, 0o660);
  } else {
    await chmod(path, 0o600);
  }
}

export async function removeSocket(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}
