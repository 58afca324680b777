import { describe, expect, it } from 'vitest';
import { ContainerConfigError, containerArgv, expandVars, fieldValue } from './env.ts';
import type { OciImage } from './image.ts';
import type { PodObject } from './pod-spec.ts';

const pod: PodObject = {
  metadata: { name: 'p', namespace: 'ns', uid: 'u', labels: { app: 'a', tier: 'b' }, annotations: { note: 'n' } },
  spec: { nodeName: 'node', containers: [{ name: 'c' }] },
};

describe('a container environment', () => {
  it('expands $(VAR) from earlier values, keeps unknown references, and $$ escapes', () => {
    expect(expandVars('$(A)-$(B)-$$(A)', { A: '1' })).toBe('1-$(B)-$(A)');
  });

  it.each([
    ['metadata.name', 'p'],
    ['metadata.namespace', 'ns'],
    ["metadata.labels['app']", 'a'],
    ['metadata.labels', 'app="a"\ntier="b"'],
    ["metadata.annotations['note']", 'n'],
    ['spec.nodeName', 'node'],
    ['spec.serviceAccountName', 'default'],
    ['status.podIP', '127.70.0.1'],
    ['status.hostIP', '127.0.0.1'],
  ])('fieldRef %s', (path, value) => {
    expect(fieldValue(pod, '127.70.0.1', path)).toBe(value);
  });

  it('refuses a fieldRef it does not know', () => {
    expect(() => fieldValue(pod, 'x', 'spec.hostname')).toThrow('unsupported fieldRef spec.hostname');
  });
});

describe('a container argv', () => {
  const env = { V: 'x' };
  const image: OciImage = { rootfs: '/r', config: { Entrypoint: ['/app'], Cmd: ['--help'] } };

  it('runs an image with Kubernetes rules, args expanded', () => {
    expect(containerArgv({ name: 'c', args: ['--v=$(V)'] }, image, env)).toEqual(['/app', '--v=x']);
  });

  it('resolves a host-mapped image: a command named like its binary runs the binary', () => {
    const host = ['/usr/bin/node', 'main.ts'];
    expect(containerArgv({ name: 'c', args: ['a'] }, host, env)).toEqual(['/usr/bin/node', 'main.ts', 'a']);
    expect(containerArgv({ name: 'c', command: ['node', '-e', '1'] }, host, env)).toEqual(['/usr/bin/node', '-e', '1']);
    expect(containerArgv({ name: 'c', command: ['sh', '-c', 'x'] }, host, env)).toEqual(['sh', '-c', 'x']);
  });

  it('runs the command of an image not in the table, and cannot pull one without a command', () => {
    expect(containerArgv({ name: 'c', image: 'busybox', command: ['sh'] }, undefined, env)).toEqual(['sh']);
    const error = (() => {
      try {
        containerArgv({ name: 'c', image: 'busybox' }, undefined, env);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ContainerConfigError);
    expect(error).toMatchObject({ reason: 'ErrImagePull' });
  });
});
