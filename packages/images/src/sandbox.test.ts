import { describe, expect, it } from 'vitest';
import { sandboxArgs } from './sandbox.ts';

describe('sandboxArgs', () => {
  const config = {
    User: '65532:65532',
    WorkingDir: '/app',
    Env: ['PATH=/nodejs/bin:/usr/bin', 'NODE_ENV=production'],
    Entrypoint: ['/nodejs/bin/node', '/app/main.js'],
    Cmd: ['--help'],
  };

  it('runs the entrypoint as the image user, in its working dir, with its env only, the root read-only', () => {
    const args = sandboxArgs('/r', config, {
      args: ['--version'],
      env: { EXTRA: 'a=b' },
      binds: [
        { host: '/h/token', path: '/tmp/token', readOnly: true },
        { host: '/h/sock', path: '/tmp/kms' },
      ],
    });
    expect(args.slice(0, 3)).toEqual(['--ro-bind', '/r', '/']);
    expect(args.join(' ')).toContain(
      '--uid 65532 --gid 65532 --ro-bind /h/token /tmp/token --bind /h/sock /tmp/kms --clearenv',
    );
    expect(args.join(' ')).toContain('--chdir /app');
    expect(args.join(' ')).toContain(
      '--setenv PATH /nodejs/bin:/usr/bin --setenv NODE_ENV production --setenv EXTRA a=b',
    );
    expect(args.slice(args.indexOf('--'))).toEqual(['--', '/nodejs/bin/node', '/app/main.js', '--version']);
  });

  it('refuses a bind outside /tmp, where it would need a mount point in the shared tree', () => {
    expect(() => sandboxArgs('/r', config, { binds: [{ host: '/h', path: '/etc/x' }] })).toThrow(
      /bind \/etc\/x: the sandbox mounts only under \/tmp\//,
    );
  });

  it('takes the image Cmd when no arguments are given, and root when the image names no user', () => {
    const args = sandboxArgs('/r', { ...config, User: undefined });
    expect(args.slice(args.indexOf('--'))).toEqual(['--', '/nodejs/bin/node', '/app/main.js', '--help']);
    expect(args.join(' ')).toContain('--uid 0 --gid 0');
  });
});
