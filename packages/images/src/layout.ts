import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';

// Reading an OCI image layout (image-spec `oci-layout`, `index.json`, `blobs/sha256/...`): what
// `buildah push oci:<dir>:<tag>` writes and `umoci`/`skopeo` read.

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  Labels?: Record<string, string>;
}

export interface LayoutImage {
  /** The manifest's digest: what a chart pins with `@sha256:...`. */
  digest: string;
  manifest: { config: Descriptor; layers: Descriptor[] };
  config: { architecture: string; os: string; config: ImageConfig; rootfs: { diff_ids: string[] } };
}

const blob = (layout: string, digest: string) => join(layout, 'blobs', ...digest.split(':'));

export async function readLayoutImage(layout: string, tag: string): Promise<LayoutImage> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`${layout} has no image tagged ${tag}`);
  const manifest = JSON.parse(await readFile(blob(layout, entry.digest), 'utf8')) as LayoutImage['manifest'];
  const config = JSON.parse(await readFile(blob(layout, manifest.config.digest), 'utf8')) as LayoutImage['config'];
  return { digest: entry.digest, manifest, config };
}

/** Bytes a registry stores (compressed layers, config, manifest) and bytes unpacked. */
export async function imageSizes(
  layout: string,
  image: LayoutImage,
): Promise<{ compressedBytes: number; uncompressedBytes: number }> {
  let uncompressedBytes = 0;
  for (const layer of image.manifest.layers) {
    if (!layer.mediaType.endsWith('+gzip')) {
      uncompressedBytes += layer.size;
      continue;
    }
    await new Promise<void>((resolve, reject) => {
      createReadStream(blob(layout, layer.digest))
        .on('error', reject)
        .pipe(createGunzip())
        .on('error', reject)
        .on('data', (chunk: Buffer) => (uncompressedBytes += chunk.length))
        .on('end', resolve);
    });
  }
  const compressedBytes = image.manifest.layers.reduce((n, l) => n + l.size, 0) + image.manifest.config.size;
  return { compressedBytes, uncompressedBytes };
}
