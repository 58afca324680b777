import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { IMAGES, imageSpec } from './catalogue.ts';

const containerfile = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../containerfiles/${name}/Containerfile`, import.meta.url)), 'utf8');

describe('the image catalogue', () => {
  it.each(IMAGES.map((i) => [i.name, i] as const))(
    '%s: its entry and files exist, its Containerfile runs it as 65532 from a BASE argument',
    (name, spec) => {
      for (const path of [spec.entry, ...Object.values(spec.workers ?? {}), ...Object.values(spec.files ?? {})])
        expect(existsSync(path), path).toBe(true);
      const text = containerfile(name);
      expect(text).toMatch(/^ARG BASE=/m);
      expect(text).toMatch(/^FROM \$\{BASE\}$/m);
      expect(text).toMatch(/^USER 65532:65532$/m);
      expect(text).toMatch(/^ENTRYPOINT \["\/nodejs\/bin\/node", "\/app\/main\.js"\]$/m);
      expect(text).not.toMatch(/^RUN /m);
    },
  );

  it('names an unknown image with the ones there are', () => {
    expect(() => imageSpec('busybox')).toThrow(
      /unknown image busybox: one of k8-manager, encryption-reconciler, kms-plugin, kdc-backup/,
    );
  });
});
