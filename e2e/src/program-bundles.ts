import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IMAGES, bundle, type ImageSpec } from '@kdc/images';

// The global setup's bundles of our programs (see programs.ts): the shipped images' bundler, with
// version `dev` as the sources report it, so a test sees the same program either way.

const repo = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

/** The CLI is no image: bundled the same way, with the .proto its etcd reader loads beside it. */
const CLI_SPEC: ImageSpec = {
  name: 'kubectl-kdc',
  entry: repo('packages/cli/src/bin.ts'),
  files: { 'proto/etcd-kv.proto': repo('packages/shared/src/etcd/proto/etcd-kv.proto') },
};

/** Bundles every program under dir; returns the manifest for BUNDLES_ENV (source entry -> bundle). */
export async function bundlePrograms(dir: string): Promise<string> {
  const mains: Record<string, string> = {};
  for (const spec of [...IMAGES, CLI_SPEC]) {
    const out = join(dir, spec.name);
    await bundle(spec, out, { version: 'dev' });
    mains[spec.entry] = join(out, 'main.js');
  }
  const manifest = join(dir, 'bundles.json');
  await writeFile(manifest, `${JSON.stringify(mains, null, 2)}\n`);
  return manifest;
}
