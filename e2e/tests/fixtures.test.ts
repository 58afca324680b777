import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { KAMAJI_FIXTURE_DIR } from '../src/crds.ts';

describe('Kamaji CRD fixtures', () => {
  it.each([
    ['kamaji.clastix.io_tenantcontrolplanes.yaml', '70dd8e022513fe069285de78ed3510787b6b33fc'],
    ['kamaji.clastix.io_datastores.yaml', '903f7c69b9d63a484b41c1c23e7966ca9a8c3d6b'],
  ])('%s is byte-identical to upstream 26.8.2-edge', (file, blob) => {
    expect(execFileSync('git', ['hash-object', `${KAMAJI_FIXTURE_DIR}${file}`], { encoding: 'utf8' }).trim()).toBe(
      blob,
    );
  });
});
