// The kubelet's AtomicWriter layout for Secret, ConfigMap, downward API and projected volumes:
// the files live in a timestamped dir, `..data` points at it and each top-level entry is a
// symlink through `..data`, so a content update is one rename and a reader never sees half of it.
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

export interface FileProjection {
  data: Buffer;
  mode: number;
  uid?: number;
}

export function safeReaddir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Ownership and modes as pkg/volume SetVolumeOwnership sets them for read-only volumes. */
export function atomicWrite(
  dir: string,
  files: Map<string, FileProjection>,
  fsGroup: number | undefined,
  worldReadable: boolean,
): void {
  const dataLink = join(dir, '..data');
  const modeOf = (f: FileProjection) =>
    (f.mode & 0o777) | (fsGroup !== undefined ? 0o440 : 0) | (worldReadable ? 0o444 : 0);
  // Unchanged content and metadata: nothing to do (the kubelet compares too).
  if (existsSync(dataLink)) {
    const current = join(dir, readlinkSync(dataLink));
    const same = [...files].every(([path, f]) => {
      try {
        const st = statSync(join(current, path));
        return (
          readFileSync(join(current, path)).equals(f.data) && (st.mode & 0o777) === modeOf(f) && st.uid === (f.uid ?? 0)
        );
      } catch {
        return false;
      }
    });
    const currentTop = safeReaddir(dir).filter((e) => !e.startsWith('..'));
    const wantedTop = new Set([...files.keys()].map((p) => p.split('/')[0]!));
    if (same && currentTop.length === wantedTop.size && currentTop.every((e) => wantedTop.has(e))) return;
  }
  const stamp = `..${new Date().toISOString().replace(/[:.]/g, '_')}.${randomBytes(4).toString('hex')}`;
  const target = join(dir, stamp);
  mkdirSync(target, { mode: 0o755 });
  for (const [path, f] of files) {
    const file = join(target, path);
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    writeFileSync(file, f.data);
    chmodSync(file, modeOf(f));
    chownSync(file, f.uid ?? 0, fsGroup ?? 0);
  }
  if (fsGroup !== undefined) {
    for (const d of [dir, target]) {
      chownSync(d, 0, fsGroup);
      chmodSync(d, 0o2755 | 0o050);
    }
  }
  const previous = existsSync(dataLink) ? readlinkSync(dataLink) : undefined;
  const tmpLink = join(dir, '..data_tmp');
  rmSync(tmpLink, { force: true });
  symlinkSync(stamp, tmpLink);
  renameSync(tmpLink, dataLink);
  const wantedTop = new Set([...files.keys()].map((p) => p.split('/')[0]!));
  for (const top of wantedTop) {
    const link = join(dir, top);
    if (!existsSync(link) && !isSymlink(link)) symlinkSync(join('..data', top), link);
  }
  for (const entry of safeReaddir(dir)) {
    if (!entry.startsWith('..') && !wantedTop.has(entry)) rmSync(join(dir, entry), { recursive: true, force: true });
  }
  if (previous && previous !== stamp) rmSync(join(dir, previous), { recursive: true, force: true });
}
