// Step three of a restore: the verified snapshot into its destination, a file or an etcd data dir
// made by `etcdutl snapshot restore`. The plaintext goes to a 0600 temp file next to the
// destination and is renamed into place only after its last byte verified; any failure removes
// the temp files, so the destination is never created or touched.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, link, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '@kdc/shared';
import { BackupError, describeError } from '../errors.ts';
import type { Decoder, Verified } from './decode.ts';

export type RestoreDestination =
  | { kind: 'file'; path: string }
  | {
      kind: 'data-dir';
      path: string;
      /** etcdutl binary (default: `etcdutl` on PATH). */
      etcdutl?: string;
      name?: string;
      initialCluster?: string;
      initialAdvertisePeerUrls?: string;
      /** Raise the revision (and mark it compacted) so watchers of the restored etcd resync. */
      bumpRevision?: number;
    };

/** A destination found fresh, with the parent its temp files go to. */
export interface ClaimedDestination {
  destination: RestoreDestination;
  /** The absolute path. */
  target: string;
  parent: string;
}

export interface WriteOptions {
  /** The backup, for log lines and messages. */
  backupUrl: string;
  storedSize: number | undefined;
  logger?: Logger;
  progressIntervalMs?: number;
  /** Cancels the restore (SIGTERM): temp files are removed, the destination is not touched. */
  signal?: AbortSignal;
}

async function isEmptyOrAbsent(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    if (!s.isDirectory()) return false;
    return (await readdir(path)).length === 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

function runEtcdutl(binary: string, args: string[], signal?: AbortSignal): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(binary, args, { maxBuffer: 16 * 1024 * 1024, ...(signal ? { signal } : {}) }, (error, stdout, stderr) => {
      if (!error) return resolvePromise(`${stdout}${stderr}`);
      const tail = `${stderr}${stdout}`.trim().split('\n').slice(-6).join('\n');
      const how =
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? `${binary} not found: install etcdutl or pass --etcdutl`
          : `exit ${error.code ?? error.signal}`;
      reject(
        new BackupError(
          'IO_FAILED',
          `etcdutl snapshot restore failed (${how})${tail ? `:\n${tail}` : ''}`,
          {},
          { cause: error },
        ),
      );
    });
  });
}

/** The destination must be absent (or an empty directory, for a data dir); its parent is created. */
export async function claimDestination(destination: RestoreDestination): Promise<ClaimedDestination> {
  const target = resolve(destination.path);
  if (destination.kind === 'data-dir' ? !(await isEmptyOrAbsent(target)) : await exists(target)) {
    throw new BackupError(
      'DESTINATION_NOT_EMPTY',
      `${target} ${destination.kind === 'data-dir' ? 'is not an empty directory' : 'already exists'}: restore only into a fresh ${destination.kind === 'data-dir' ? 'data dir' : 'file'}`,
      { destination: target },
    );
  }
  const parent = dirname(target);
  await mkdir(parent, { recursive: true, mode: 0o700 });
  return { destination, target, parent };
}

/** `etcdutl snapshot restore` of `snapshot` into `dataDir`, with the destination's member settings. */
export function etcdutlRestoreArgs(
  snapshot: string,
  dataDir: string,
  destination: Extract<RestoreDestination, { kind: 'data-dir' }>,
): string[] {
  const args = ['snapshot', 'restore', snapshot, '--data-dir', dataDir];
  if (destination.name) args.push('--name', destination.name);
  if (destination.initialCluster) args.push('--initial-cluster', destination.initialCluster);
  if (destination.initialAdvertisePeerUrls)
    args.push('--initial-advertise-peer-urls', destination.initialAdvertisePeerUrls);
  if (destination.bumpRevision) args.push('--bump-revision', String(destination.bumpRevision), '--mark-compacted');
  return args;
}

/** Runs `decoder` into a temp file, then puts the file (or the data dir etcdutl makes of it) in place. */
export async function writeDestination(
  claimed: ClaimedDestination,
  decoder: Decoder,
  options: WriteOptions,
): Promise<Verified> {
  const { destination, target, parent } = claimed;
  const { logger } = options;
  const tag = `.${basename(target)}.restore-${randomBytes(4).toString('hex')}`;
  const tempFile = join(parent, `${tag}.snapshot.db`);
  const tempDataDir = join(parent, `${tag}.data`);
  let cleanFile = true;
  const handle = await open(tempFile, 'wx', 0o600);
  const progressEvery = options.progressIntervalMs ?? 10_000;
  let progress: NodeJS.Timeout | undefined;
  try {
    logger?.info(
      { key: options.backupUrl, schemaVersion: decoder.schemaVersion, storedBytes: options.storedSize },
      'restore: downloading and verifying',
    );
    progress = setInterval(
      () => logger?.info({ plaintextBytes: decoder.progress() }, 'restore progress'),
      progressEvery,
    );
    progress.unref();
    // The stream owns the handle: fsync (flush) and close happen before the pipeline resolves.
    if (decoder.ranged) {
      await decoder.writeTo(handle);
      await handle.sync();
      await handle.close();
    } else {
      await pipeline(
        decoder.object.body,
        decoder.transform,
        createWriteStream('', { fd: handle, flush: true, highWaterMark: 1 << 20 }),
        options.signal ? { signal: options.signal } : {},
      );
    }
    const verified = decoder.verified;
    logger?.info(
      { plaintextBytes: verified.plaintextSize, sha256: verified.sha256?.toString('hex') },
      'restore: snapshot verified',
    );

    if (destination.kind === 'file') {
      // link() refuses an existing name: never clobber something that appeared meanwhile.
      await link(tempFile, target).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'EEXIST')
          throw new BackupError(
            'DESTINATION_NOT_EMPTY',
            `${target} appeared during the restore; the verified snapshot was not written`,
          );
        throw error;
      });
      await unlink(tempFile);
      cleanFile = false;
    } else {
      // A plaintext .db copied out of a data dir has no hash trailer; etcdutl checks it otherwise.
      await runEtcdutl(
        destination.etcdutl ?? 'etcdutl',
        etcdutlRestoreArgs(tempFile, tempDataDir, destination),
        options.signal,
      );
      await chmod(tempDataDir, 0o700);
      if (!(await isEmptyOrAbsent(target)))
        throw new BackupError(
          'DESTINATION_NOT_EMPTY',
          `${target} was filled during the restore; the restored data dir was discarded`,
        );
      await rename(tempDataDir, target);
    }
    return verified;
  } catch (error) {
    if (!decoder.ranged) decoder.object.body.destroy();
    await handle.close().catch(() => undefined);
    await rm(tempDataDir, { recursive: true, force: true }).catch(() => undefined);
    logger?.error(
      { key: options.backupUrl, err: describeError(error) },
      'restore refused; nothing was written to the destination',
    );
    if (error instanceof BackupError) throw error;
    throw new BackupError(
      'IO_FAILED',
      `restore of ${options.backupUrl} failed: ${describeError(error)}`,
      {},
      { cause: error },
    );
  } finally {
    if (progress) clearInterval(progress);
    if (cleanFile) await rm(tempFile, { force: true }).catch(() => undefined);
  }
}
