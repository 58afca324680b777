import { describe, expect, it } from 'vitest';
import { clusterFacts } from './keys-min-decryption.ts';

describe('clusterFacts', () => {
  const cluster = (spec: Record<string, unknown>, status?: Record<string, unknown>) => ({
    metadata: { name: 'c' },
    spec: { version: 'v1.35.0', ...spec },
    ...(status ? { status } : {}),
  });
  it.each([
    [
      'auto key, encryption on',
      cluster({ encryption: { etcd: { enabled: true } } }),
      'c-etcd',
      { usesForEtcd: true, usesForBackup: true, encryptionEnabled: true },
    ],
    [
      'auto key, no encryption',
      cluster({}),
      'c-etcd',
      { usesForEtcd: true, usesForBackup: true, encryptionEnabled: false },
    ],
    [
      'explicit keyRef',
      cluster({ encryption: { etcd: { enabled: true, keyRef: 'k' } } }),
      'k',
      { usesForEtcd: true, usesForBackup: true },
    ],
    [
      'separate backup key',
      cluster({ encryption: { etcd: { enabled: true, keyRef: 'k', backup: { keyRef: 'b' } } } }),
      'b',
      { usesForEtcd: false, usesForBackup: true },
    ],
    [
      'unrelated key',
      cluster({ encryption: { etcd: { enabled: true, keyRef: 'k' } } }),
      'other',
      { usesForEtcd: false, usesForBackup: false },
    ],
    [
      'resolved in status (key change under way)',
      cluster(
        { encryption: { etcd: { enabled: true, keyRef: 'new' } } },
        { encryption: { resolvedKeyRef: 'old', kmsPluginReady: true } },
      ),
      'old',
      { usesForEtcd: true, usesForBackup: false, encryptionEnabled: true },
    ],
  ])('%s', (_name, object, kmsKey, expected) => expect(clusterFacts(object, kmsKey)).toMatchObject(expected));
});
