import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

// buildah as this machine can run it: no daemon, the vfs storage driver (no overlay mounts
// needed), chroot isolation (our Containerfiles only COPY, nothing RUNs), a fixed timestamp so
// the same inputs give the same digest. Its storage lives in the binary cache, outside the repo.

export interface Buildah {
  /** Builds `context/Containerfile` and writes it to an OCI layout; returns the manifest digest. */
  build(input: { context: string; tag: string; buildArgs: Record<string, string>; layout: string; layoutTag: string; log: (line: string) => void }): Promise<string>;
  /** Makes an OCI layout's image available to FROM under `name` (buildah cannot name a path with a dot in FROM). */
  load(layout: string, layoutTag: string, name: string): Promise<void>;
  /** Drops every image from the storage: the layouts are the artifacts, and vfs keeps full copies. */
  prune(log: (line: string) => void): Promise<void>;
  version(): Promise<string>;
}

export function buildah(cacheDir: string): Buildah {
  const storage = ['--root', join(cacheDir, 'storage'), '--runroot', join(cacheDir, 'run'), '--storage-driver', 'vfs'];
  const exec = (args: string[], log: (line: string) => void) => new Promise<void>((resolve, reject) => {
    const child = spawn('buildah', [...storage, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const take = (data: Buffer) => {
      for (const line of data.toString('utf8').split('\n').filter(Boolean)) {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        // Progress: the Containerfile steps; the rest only if it fails.
        if (line.startsWith('STEP ')) log(line);
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (error) => reject(new Error(`buildah could not start (apt-get install buildah): ${error.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`buildah ${args[0]} exited ${code}:\n${tail.join('\n')}`))));
  });
  return {
    async version() {
      const { stdout } = await run('buildah', ['--version']);
      return stdout.trim();
    },
    async build({ context, tag, buildArgs, layout, layoutTag, log }) {
      const args = ['build', '--isolation', 'chroot', '--timestamp', '0', '--pull=never', '--layers=false', '-f', join(context, 'Containerfile'), '-t', tag];
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
      const child = spawn('skopeo', ['copy', '--quiet', `oci:${layout}:${layoutTag}`, `containers-storage:[vfs@${join(cacheDir, 'storage')}+${join(cacheDir, 'run')}]${name}`], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve, reject) => {
        child.on('error', (error) => reject(new Error(`skopeo could not start (apt-get install skopeo): ${error.message}`)));
        child.on('close', resolve);
      });
      if (code !== 0) throw new Error(`skopeo copy of ${layout}:${layoutTag} into the build storage exited ${code}: ${out.slice(-500)}`);
    },
    async prune(log) {
      await exec(['rmi', '--all', '--force'], log);
    },
  };
}
