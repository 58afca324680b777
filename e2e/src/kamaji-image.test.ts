import { describe, expect, it } from 'vitest';
import { ociArgv, ociEnv, ociUser, type OciImage } from './kamaji-image.ts';

const image = (config: OciImage['config']): OciImage => ({ rootfs: '/r', config });

describe('running an image with Kubernetes rules', () => {
  const img = image({ Entrypoint: ['/nodejs/bin/node', '/app/main.js'], Cmd: ['--help'], Env: ['PATH=/nodejs/bin:/usr/bin', 'A=b=c'], User: '65532:65533' });

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
