import { describe, expect, it } from 'vitest';
import { localImage, ociArgv, ociEnv, ociUser, type OciImage } from './image.ts';

const image = (config: OciImage['config']): OciImage => ({ rootfs: '/r', config });

describe('running an image with Kubernetes rules', () => {
  const img = image({
    Entrypoint: ['/nodejs/bin/node', '/app/main.js'],
    Cmd: ['--help'],
    Env: ['PATH=/nodejs/bin:/usr/bin', 'A=b=c'],
    User: '65532:65533',
  });

  it.each([
    ['neither: entrypoint and cmd', [], [], ['/nodejs/bin/node', '/app/main.js', '--help']],
    ['args only: entrypoint and the args', [], ['--version'], ['/nodejs/bin/node', '/app/main.js', '--version']],
    ['command only: the command, no cmd', ['/x'], [], ['/x']],
    ['both: the command and the args', ['/x'], ['-y'], ['/x', '-y']],
  ])('%s', (_what, command, args, argv) => {
    expect(ociArgv(img, command, args)).toEqual(argv);
  });

  it('takes the env entries as K=V with the first = splitting', () => {
    expect(ociEnv(img)).toEqual({ PATH: '/nodejs/bin:/usr/bin', A: 'b=c' });
  });

  it('takes a numeric user and group; no user is root; a named user is left to the pod spec', () => {
    expect(ociUser(img)).toEqual({ uid: 65532, gid: 65533 });
    expect(ociUser(image({}))).toEqual({ uid: 0, gid: undefined });
    expect(ociUser(image({ User: 'nonroot' }))).toEqual({ uid: undefined, gid: undefined });
  });
});

describe('which local image a reference runs', () => {
  const pinned = { ...image({}), digest: `sha256:${'a'.repeat(64)}` };
  const table = { 'kdc.local/kms-plugin:0.1.0': pinned, 'kdc.local/kdc-backup': ['/usr/bin/node', 'main.ts'] };

  it.each([
    ['the exact reference', 'kdc.local/kms-plugin:0.1.0', pinned],
    ['a reference pinned to the same digest', `kdc.local/kms-plugin:0.1.0@sha256:${'a'.repeat(64)}`, pinned],
    ['any tag of a repository entry', 'kdc.local/kdc-backup:dev', table['kdc.local/kdc-backup']],
    ['nothing for another tag of an exact entry', 'kdc.local/kms-plugin:0.2.0', undefined],
  ])('%s', (_what, reference, expected) => {
    expect(localImage(table, reference)).toBe(expected);
  });

  it('refuses a reference pinned to another digest, naming both', () => {
    expect(() => localImage(table, `kdc.local/kms-plugin:0.1.0@sha256:${'b'.repeat(64)}`)).toThrow(
      `has digest sha256:${'a'.repeat(64)}, not sha256:${'b'.repeat(64)}`,
    );
  });
});
