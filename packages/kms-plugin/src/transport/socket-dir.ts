// `kms-plugin prepare-socket-dir`: the init container that hands the socket directory (an emptyDir,
// root's) to the plugin's user, so the plugin runs as non-root and the apiserver (root) still
// reaches its socket. It runs from the plugin's own image with only CAP_CHOWN: no shell image.
import { chownSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parseArgs } from 'node:util';

export const SOCKET_DIR_HELP = `kms-plugin prepare-socket-dir --dir=<absolute dir> --owner=<uid>:<gid>
  Makes <uid>:<gid> own <dir> (the KMS socket directory). Exit 0 done, 1 failed, 2 bad flags.
`;

export function parseSocketDirArgs(
  argv: string[],
): { ok: true; dir: string; uid: number; gid: number } | { ok: false; error: string } {
  let values: { dir?: string; owner?: string };
  try {
    values = parseArgs({
      args: argv,
      options: { dir: { type: 'string' }, owner: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    return { ok: false, error: `prepare-socket-dir: ${(error as Error).message.split('\n')[0]}` };
  }
  if (!values.dir || !isAbsolute(values.dir) || values.dir === '/')
    return {
      ok: false,
      error: 'prepare-socket-dir: --dir must be an absolute path below /, e.g. --dir=/var/run/kmsplugin',
    };
  const owner = /^(\d{1,10}):(\d{1,10})$/.exec(values.owner ?? '');
  if (!owner)
    return {
      ok: false,
      error: `prepare-socket-dir: --owner "${values.owner ?? ''}" must be <uid>:<gid>, e.g. --owner=65532:65532`,
    };
  return { ok: true, dir: values.dir, uid: Number(owner[1]), gid: Number(owner[2]) };
}

export function prepareSocketDir(dir: string, uid: number, gid: number): string {
  if (!statSync(dir).isDirectory()) throw new Error(`${dir} is not a directory: mount the socket volume there`);
  chownSync(dir, uid, gid);
  return `${dir} is owned by ${uid}:${gid}`;
}
