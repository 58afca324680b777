// `npm run images [-- --only kms-plugin,kdc-backup] [--cold-start]`: builds (or reuses) our
// Node 24 base and the four program images into OCI layouts in the binary cache. Progress goes to
// stderr; the last stdout line is one JSON object: every image's ref, digest, layout and sizes,
// and with --cold-start each program's start-up from its image against the same from source.
import { parseArgs } from 'node:util';
import { buildImages, unpackedImagesDir } from './build.ts';
import { imageSpec } from './catalogue.ts';
import { coldStart } from './cold-start.ts';
import { unpackImage } from './unpack.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    'cold-start': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write('usage: npm run images [-- --only <name,...>] [--cold-start]\n');
  process.exit(0);
}

const started = Date.now();
const log = (line: string) => process.stderr.write(`[images] ${line}\n`);
const result = await buildImages({
  only: values.only
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean),
  log,
});
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
for (const i of [result.base, ...result.images])
  log(
    `${i.ref.padEnd(36)} ${i.digest.slice(0, 19)}  ${mb(i.compressedBytes).padStart(9)} compressed  ${mb(i.uncompressedBytes).padStart(9)} unpacked${i.built ? '' : '  (cached)'}`,
  );

const coldStarts: Record<string, unknown> = {};
if (values['cold-start']) {
  for (const image of result.images) {
    const rootfs = await unpackImage(image.layout, image.tag, image.digest, unpackedImagesDir());
    const measured = await coldStart({
      program: image.name,
      rootfs,
      config: image.config,
      source: [process.execPath, '--conditions=source', imageSpec(image.name).entry],
    });
    log(
      `${image.name}: --version from the image ${measured.image.medianMs} ms (median of 5, ${measured.image.minMs}-${measured.image.maxMs}); from source ${measured.source.medianMs} ms`,
    );
    coldStarts[image.name] = measured;
  }
}

process.stdout.write(
  `${JSON.stringify({
    images: Object.fromEntries(
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
    ),
    ...(values['cold-start'] ? { coldStart: coldStarts } : {}),
    seconds: Math.round((Date.now() - started) / 100) / 10,
  })}\n`,
);
