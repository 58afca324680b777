import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { build } from 'esbuild';
import type { ImageSpec } from './catalogue.ts';

// One program and its production dependencies as one ES module: no node_modules tree in the
// image (workspace packages keep nested node_modules that a plain copy would break), and one
// file to load at start-up instead of hundreds.

// CommonJS dependencies call require() for Node's built-ins; an ES module has none, so the bundle
// gets one made for its own location.
const BANNER =
  "import { createRequire as __kdcCreateRequire } from 'node:module'; globalThis.require ??= __kdcCreateRequire(import.meta.url);";

export interface Bundle {
  dir: string;
  /** Paths relative to dir, sorted: what the image's /app holds. */
  files: string[];
}

export async function bundle(spec: ImageSpec, dir: string, options: { version: string }): Promise<Bundle> {
  await mkdir(dir, { recursive: true });
  const entryPoints = { main: spec.entry, ...spec.workers };
  const result = await build({
    entryPoints,
    outdir: dir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    // Our packages export their TypeScript under the `source` condition.
    conditions: ['source'],
    banner: { js: BANNER },
    define: { __KDC_VERSION__: JSON.stringify(options.version) },
    minifySyntax: true,
    minifyWhitespace: true,
    keepNames: true,
    legalComments: 'linked',
    logLevel: 'warning',
    metafile: true,
  });
  // The bundle is ESM with a .js name: /app/package.json says so, as a package's would.
  await writeFile(join(dir, 'package.json'), `${JSON.stringify({ type: 'module', name: spec.name, private: true })}\n`);
  for (const [target, source] of Object.entries(spec.files ?? {})) {
    await mkdir(dirname(join(dir, target)), { recursive: true });
    await copyFile(source, join(dir, target));
  }
  await assertFilesBeside(
    dir,
    Object.keys(entryPoints),
    Object.keys(spec.files ?? {}),
    Object.keys(spec.workers ?? {}),
  );
  // Metafile paths are relative to the working directory.
  const files = [
    ...Object.keys(result.metafile.outputs).map((p) => relative(dir, resolve(p))),
    'package.json',
    ...Object.keys(spec.files ?? {}),
  ];
  return { dir, files: [...new Set(files)].sort() };
}

/**
 * Every `new URL('./x', import.meta.url)` the bundle resolves at run time must name a file that
 * is there: a missing .proto would only fail when the code path first runs, in a tenant's pod.
 */
async function assertFilesBeside(dir: string, entries: string[], files: string[], workers: string[]): Promise<void> {
  const present = new Set([...files, ...workers.map((w) => `${w}.js`)]);
  for (const entry of entries) {
    const code = await readFile(join(dir, `${entry}.js`), 'utf8');
    for (const [, ref] of code.matchAll(/new URL\(\s*["'`]\.\/([^"'`]+)["'`]\s*,\s*import\.meta\.url\s*\)/g)) {
      if (!present.has(ref!) && !ref!.endsWith('.ts')) {
        throw new Error(
          `bundle ${entry}.js reads ./${ref} beside itself at run time, but the image spec copies no such file: add it to files or workers in catalogue.ts`,
        );
      }
    }
  }
}
