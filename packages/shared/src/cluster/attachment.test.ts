import { describe, expect, it } from 'vitest';
import type { TenantControlPlaneObject } from '../runtime/resources.ts';
import { KMS_PLUGIN_CONTAINERS, TCP_PATCH } from '../names.ts';
import { isAttached, kamajiControlPlaneOwner, tcpAttachmentView } from './attachment.ts';

const FLAG = `${TCP_PATCH.encryptionProviderFlag}=/etc/kubernetes/encryption/config.yaml`;
const SIDECAR = KMS_PLUGIN_CONTAINERS[0]!;

const tcp = (input: {
  flags?: string[];
  containers?: string[];
  owners?: { kind: string; name: string }[];
}): TenantControlPlaneObject => ({
  apiVersion: 'kamaji.clastix.io/v1alpha1',
  kind: 'TenantControlPlane',
  metadata: {
    name: 'web',
    namespace: 'team-a',
    resourceVersion: '42',
    uid: 'u-1',
    labels: { app: 'x' },
    annotations: { note: 'y'.repeat(2_000) },
    ...(input.owners ? { ownerReferences: input.owners.map((o) => ({ apiVersion: 'v1', uid: 'o', ...o })) } : {}),
  },
  spec: {
    kubernetes: { version: 'v1.35.0' },
    controlPlane: {
      deployment: {
        replicas: 1,
        extraArgs: { apiServer: ['--v=2', ...(input.flags ?? [])] },
        additionalInitContainers: [
          { name: 'other', image: 'i' },
          ...(input.containers ?? []).map((name) => ({ name, image: 'p' })),
        ],
      },
    },
  },
  status: { kubernetesResources: { version: { status: 'Ready' } }, filler: 'z'.repeat(4_000) },
});

describe('tcpAttachmentView', () => {
  it.each([
    ['nothing of ours', tcp({}), false, undefined],
    ['our flag', tcp({ flags: [FLAG] }), true, undefined],
    ['our sidecar only (attaching: the flag comes next)', tcp({ containers: [SIDECAR] }), true, undefined],
    [
      'a flag that only starts like ours',
      tcp({ flags: [`${TCP_PATCH.encryptionProviderFlag}-x=1`] }),
      false,
      undefined,
    ],
    [
      'owned by a KamajiControlPlane, beside another owner',
      tcp({
        flags: [FLAG],
        owners: [
          { kind: 'Deployment', name: 'd' },
          { kind: 'KamajiControlPlane', name: 'kcp' },
        ],
      }),
      true,
      'kcp',
    ],
    ['another owner only', tcp({ owners: [{ kind: 'Cluster', name: 'c' }] }), false, undefined],
  ])('%s: the rules read the same of the view as of the whole TCP', (_, whole, attached, owner) => {
    const view = tcpAttachmentView(whole);
    expect(isAttached(whole)).toBe(attached);
    expect(isAttached(view)).toBe(attached);
    expect(kamajiControlPlaneOwner(whole)).toBe(owner);
    expect(kamajiControlPlaneOwner(view)).toBe(owner);
  });

  it('keeps the identity and nothing else of the object: no labels, annotations, other args, containers or status', () => {
    const whole = tcp({ flags: [FLAG], containers: [SIDECAR], owners: [{ kind: 'KamajiControlPlane', name: 'kcp' }] });
    const view = tcpAttachmentView(whole);
    expect(view).toEqual({
      metadata: {
        name: 'web',
        namespace: 'team-a',
        resourceVersion: '42',
        uid: 'u-1',
        ownerReferences: [{ apiVersion: 'v1', uid: 'o', kind: 'KamajiControlPlane', name: 'kcp' }],
      },
      spec: {
        controlPlane: {
          deployment: { extraArgs: { apiServer: [FLAG] }, additionalInitContainers: [{ name: SIDECAR }] },
        },
      },
    });
    expect(JSON.stringify(view).length).toBeLessThan(JSON.stringify(whole).length / 10);
  });
});
