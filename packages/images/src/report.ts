// What `npm run images` tells: one stderr line per image, the optional cold-start comparison, and
// the one JSON line on stdout that scripts read.
import { unpackedImagesDir, type BuildResult } from './build.ts';
import { imageSpec } from './catalogue.ts';
import { coldStart } from './cold-start.ts';
import { unpackImage } from './unpack.ts';

export type Log = (line: string) => void;
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export function logImages(result: BuildResult, log: Log): void {
  for (const i of [result.base, ...result.images]) {
    const sizes = `${mb(i.compressedBytes).padStart(9)} compressed  ${mb(i.uncompressedBytes).padStart(9)} unpacked`;
    log(`${i.ref.padEnd(36)} ${i.digest.slice(0, 19)}  ${sizes}${i.built ? '' : '  (cached)'}`);
  }
}

/** Each program's `--version` from its image against the same from source. */
export async function coldStarts(result: BuildResult, log: Log): Promise<Record<string, unknown>> {
  const measured: Record<string, unknown> = {};
  for (const image of result.images) {
    const rootfs = await unpackImage(image.layout, image.tag, image.digest, unpackedImagesDir());
    const m = await coldStart({
      program: image.name,
      rootfs,
      config: image.config,
      source: [process.execPath, '--conditions=source', imageSpec(image.name).entry],
    });
    const range = `median of 5, ${m.image.minMs}-${m.image.maxMs}`;
    log(
      `${image.name}: --version from the image ${m.image.medianMs} ms (${range}); from source ${m.source.medianMs} ms`,
    );
    measured[image.name] = m;
  }
  return measured;
}

export function summaryLine(result: BuildResult, seconds: number, coldStart?: Record<string, unknown>): string {
  const images = Object.fromEntries(
    [result.base, ...result.images].map((i) => [
      i.name,
      {
        ref: i.ref,
        digest: i.digest,
        layout: `${i.layout}:${i.tag}`,
        compressedBytes: i.compressedBytes,
        uncompressedBytes: i.uncompressedBytes,
        built: i.built,
      },
    ]),
  );
  return `${JSON.stringify({ images, ...(coldStart ? { coldStart } : {}), seconds })}\n`;
}
