import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KubeClient, resourcePath } from './kube.ts';
import { splitKey } from './informer.ts';

describe('resourcePath', () => {
  it.each([
    [{ group: '', version: 'v1', plural: 'secrets', namespace: 'ns', name: 's' }, '/api/v1/namespaces/ns/secrets/s'],
    [{ group: 'k8s.kube-dc.com', version: 'v1alpha1', plural: 'kdcclusters' }, '/apis/k8s.kube-dc.com/v1alpha1/kdcclusters'],
    [{ group: '', version: 'v1', plural: 'serviceaccounts', namespace: 'ns', name: 'sa', subresource: 'token' }, '/api/v1/namespaces/ns/serviceaccounts/sa/token'],
  ])('%j -> %s', (ref, path) => expect(resourcePath(ref)).toBe(path));
});

describe('splitKey', () => {
  it('splits namespaced and cluster keys', () => {
    expect(splitKey('ns/name')).toEqual({ namespace: 'ns', name: 'name' });
    expect(splitKey('name')).toEqual({ name: 'name' });
  });
});

describe('KubeClient.fromDefault', () => {
  it('refuses to start without KUBECONFIG, ~/.kube/config or a pod ServiceAccount, naming what to set', () => {
    const home = mkdtempSync(join(tmpdir(), 'home-'));
    expect(() => KubeClient.fromDefault({}, home)).toThrow(/no Kubernetes credentials: set KUBECONFIG.*or run in a pod/);
  });

  it('takes the kubeconfig KUBECONFIG names (the positive control)', () => {
    const home = mkdtempSync(join(tmpdir(), 'home-'));
    expect(() => KubeClient.fromDefault({ KUBECONFIG: '/nonexistent' }, home)).not.toThrow(/no Kubernetes credentials/);
  });
});
