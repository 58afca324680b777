import { createHash } from 'node:crypto';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A digest of a build context: every path, its type and mode, and its content or link target.
 * Same digest, same image (the build is reproducible), so a cached layout is reused as is.
 */
export async function contextDigest(dir: string, extra: readonly string[] = []): Promise<string> {
  const hash = createHash('sha256');
  for (const e of extra) hash.update(`extra ${e}\n`);
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const stat = await lstat(join(dir, path));
      const mode = (stat.mode & 0o7777).toString(8);
      if (stat.isSymbolicLink()) hash.update(`link ${path} ${await readlink(join(dir, path))}\n`);
      else if (stat.isDirectory()) {
        hash.update(`dir ${path} ${mode}\n`);
        await walk(path);
      } else
        hash.update(
          `file ${path} ${mode} ${createHash('sha256')
            .update(await readFile(join(dir, path)))
            .digest('hex')}\n`,
        );
    }
  };
  await walk('');
  return `sha256:${hash.digest('hex')}`;
}
