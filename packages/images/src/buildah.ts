import { execFile } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { lastLines, runTool } from './exec.ts';

const run = promisify(execFile);

// buildah as this machine can run it: no daemon, the vfs storage driver (no overlay mounts
// needed), chroot isolation (our Containerfiles only COPY, nothing RUNs), a fixed timestamp so
// the same inputs give the same digest. Its storage lives in the binary cache, outside the repo.

export interface Buildah {
  /** Builds `context/Containerfile` and writes it to an OCI layout; returns the manifest digest. */
  build(input: {
    context: string;
    tag: string;
    buildArgs: Record<string, string>;
    layout: string;
    layoutTag: string;
    log: (line: string) => void;
  }): Promise<string>;
  /** Makes an OCI layout's image available to FROM under `name` (buildah cannot name a path with a dot in FROM). */
  load(layout: string, layoutTag: string, name: string): Promise<void>;
  /** Drops every image from the storage: the layouts are the artifacts, and vfs keeps full copies. */
  prune(log: (line: string) => void): Promise<void>;
  version(): Promise<string>;
}

export function buildah(cacheDir: string): Buildah {
  const storage = ['--root', join(cacheDir, 'storage'), '--runroot', join(cacheDir, 'run'), '--storage-driver', 'vfs'];
  const exec = async (args: string[], log: (line: string) => void) => {
    // Progress: the Containerfile steps; the rest only if it fails.
    const ran = await runTool('buildah', [...storage, ...args], {
      aptPackage: 'buildah',
      onLine: (line) => line.startsWith('STEP ') && log(line),
    });
    if (ran.code !== 0) throw new Error(`buildah ${args[0]} exited ${ran.code}:\n${lastLines(ran.out)}`);
  };
  return {
    async version() {
      const { stdout } = await run('buildah', ['--version']);
      return stdout.trim();
    },
    async build({ context, tag, buildArgs, layout, layoutTag, log }) {
      const args = [
        'build',
        '--isolation',
        'chroot',
        '--timestamp',
        '0',
        '--pull=never',
        '--layers=false',
        '-f',
        join(context, 'Containerfile'),
        '-t',
        tag,
      ];
      for (const [k, v] of Object.entries(buildArgs)) args.push('--build-arg', `${k}=${v}`);
      await exec([...args, context], log);
      await rm(layout, { recursive: true, force: true });
      await mkdir(layout, { recursive: true });
      const digestFile = `${layout}.digest`;
      await exec(['push', '--digestfile', digestFile, tag, `oci:${layout}:${layoutTag}`], log);
      const digest = (await readFile(digestFile, 'utf8')).trim();
      await rm(digestFile, { force: true });
      return digest;
    },
    async load(layout, layoutTag, name) {
      const ran = await runTool(
        'skopeo',
        [
          'copy',
          '--quiet',
          `oci:${layout}:${layoutTag}`,
          `containers-storage:[vfs@${join(cacheDir, 'storage')}+${join(cacheDir, 'run')}]${name}`,
        ],
        { aptPackage: 'skopeo' },
      );
      if (ran.code !== 0)
        throw new Error(
          `skopeo copy of ${layout}:${layoutTag} into the build storage exited ${ran.code}: ${lastLines(ran.out, 5)}`,
        );
    },
    async prune(log) {
      await exec(['rmi', '--all', '--force'], log);
    },
  };
}
