import { execFile } from 'node:child_process';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

// An image's root filesystem on disk, as a container runtime would prepare it: umoci applies the
// layers in order (whiteouts included) and keeps their owners (we run as root). Unpacked once per
// digest; the directories a runtime mounts over (/proc, /dev, /sys) are made so a read-only bind
// of the tree can take those mounts.

export async function unpackImage(layout: string, tag: string, digest: string, into: string): Promise<string> {
  const dir = join(into, digest.replace(':', '-'));
  const rootfs = join(dir, 'rootfs');
  const complete = () =>
    stat(join(rootfs, 'proc')).then(
      () => true,
      () => false,
    );
  if (await complete()) return rootfs;
  // Per process: two processes (tests, npm start) may unpack the same image at once; the first to finish wins.
  const partial = `${dir}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  await run('umoci', ['raw', 'unpack', '--image', `${layout}:${tag}`, join(partial, 'rootfs')]).catch(
    (error: Error) => {
      throw new Error(`umoci could not unpack ${layout}:${tag} (apt-get install umoci): ${error.message}`, {
        cause: error,
      });
    },
  );
  for (const mount of ['proc', 'dev', 'sys']) await mkdir(join(partial, 'rootfs', mount), { recursive: true });
  if (await complete()) {
    await rm(partial, { recursive: true, force: true });
    return rootfs;
  }
  await rm(dir, { recursive: true, force: true });
  await rename(partial, dir).catch(async (error: NodeJS.ErrnoException) => {
    await rm(partial, { recursive: true, force: true });
    if (!(await complete())) throw error;
  });
  return rootfs;
}
