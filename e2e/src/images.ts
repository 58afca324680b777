import { fileURLToPath } from 'node:url';
import { buildImages, unpackImage, unpackedImagesDir, type BuiltImage } from '@kdc/images';
import type { OciImage } from './kubelet/image.ts';
import { nodeProgram } from './programs.ts';

// The "registry" of the local Kamaji runner: image references -> what runs for them on this
// machine. Most tests map our images to the programs (the run's bundles, programs.ts: fast, no
// image build); shippedImages() gives the images we ship instead, unpacked, for the tests and
// proofs that run those.

export const KMS_PLUGIN_IMAGE = 'kdc.local/kms-plugin:dev';
export const PLUGIN_MAIN = fileURLToPath(new URL('../../packages/kms-plugin/src/main.ts', import.meta.url));

export const BACKUP_IMAGE = 'kdc.local/kdc-backup:dev';
export const BACKUP_MAIN = fileURLToPath(new URL('../../packages/backup-envelope/src/main.ts', import.meta.url));

export const LOCAL_IMAGES: Record<string, string[]> = {
  [KMS_PLUGIN_IMAGE]: [process.execPath, '--max-old-space-size=96', ...nodeProgram(PLUGIN_MAIN)],
  [BACKUP_IMAGE]: [process.execPath, ...nodeProgram(BACKUP_MAIN)],
};

export interface ShippedImages {
  base: BuiltImage;
  /** Program name (`kms-plugin`, ...) -> what was built: its ref (`kdc.local/kms-plugin:0.1.0`), digest, layout. */
  built: Record<string, BuiltImage>;
  /** Ref -> the unpacked image, for the runner's image table. */
  table: Record<string, OciImage>;
}

/** Builds (or reuses, from the binary cache) the images we ship and unpacks them for the runner. */
export async function shippedImages(log: (line: string) => void = () => undefined): Promise<ShippedImages> {
  const { base, images } = await buildImages({ log });
  const built: Record<string, BuiltImage> = {};
  const table: Record<string, OciImage> = {};
  for (const image of images) {
    built[image.name] = image;
    table[image.ref] = {
      rootfs: await unpackImage(image.layout, image.tag, image.digest, unpackedImagesDir()),
      config: image.config,
      digest: image.digest,
    };
  }
  return { base, built, table };
}
