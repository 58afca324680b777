import { describe, expect, it } from 'vitest';
import { dataStoreGranted, validateCluster, type ClusterFacts, type KmsKeyView } from './validate.ts';

const platform = { ok: true as const, config: { kmsPluginImage: 'kms:1', openBaoUrl: 'https://bao' } };
const ready = [
  { type: 'Ready', status: 'True' as const, reason: 'Ready', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' },
];
const key = (name: string, purpose: string, extra: Partial<KmsKeyView> = {}): KmsKeyView => ({
  metadata: { name },
  spec: { purpose },
  status: { conditions: ready },
  ...extra,
});
const enabled = (etcd: object = {}, rest: object = {}) => ({
  version: 'v1.35.0',
  encryption: { etcd: { enabled: true, ...etcd } },
  ...rest,
});
const NOW = new Date('2026-11-22T10:00:00Z');
const facts = (spec: unknown, more: Partial<ClusterFacts> = {}): ClusterFacts => ({
  namespace: 'acme-dev',
  name: 'c1',
  spec,
  annotations: {},
  platform,
  kmsKeys: [key('shared', 'etcd'), key('app', 'application'), key('bk', 'backup')],
  otherClusters: [],
  attached: false,
  now: NOW,
  ...more,
});
const BREAK_GLASS = 'security.kube-dc.com/encryption-force-disable-confirmed';
const plain = { version: 'v1.35.0' };
const disabled = { version: 'v1.35.0', encryption: { etcd: { enabled: false } } };
const reasons = (f: ClusterFacts) => {
  const v = validateCluster(f);
  return v.ok ? [] : v.errors.map((e) => e.reason);
};

describe('validateCluster: refused specs', () => {
  it.each<[string, ClusterFacts, string]>([
    ['unreadable spec', facts({ version: 3 }), 'InvalidSpec'],
    ['version', facts(enabled({}, { version: '1.35' })), 'VersionInvalid'],
    ['rotation without interval', facts(enabled({ kekRotation: { enabled: true } })), 'KEKRotationIntervalMissing'],
    ['weeks', facts(enabled({ kekRotation: { enabled: true, interval: '2w' } })), 'KEKRotationIntervalInvalid'],
    [
      'garbage interval',
      facts(enabled({ kekRotation: { enabled: true, interval: 'soon' } })),
      'KEKRotationIntervalInvalid',
    ],
    [
      'below 7d',
      facts(enabled({ kekRotation: { enabled: true, interval: '6d23h' } })),
      'KEKRotationIntervalOutOfRange',
    ],
    [
      'above 730d',
      facts(enabled({ kekRotation: { enabled: true, interval: '731d' } })),
      'KEKRotationIntervalOutOfRange',
    ],
    [
      'below retention',
      facts(enabled({ kekRotation: { enabled: true, interval: '8d' } }, { backup: { retentionDays: 10 } })),
      'KEKRotationIntervalBelowRetention',
    ],
    ['keyRef missing', facts(enabled({ keyRef: 'nope' })), 'KeyRefNotFound'],
    ['keyRef cross-namespace', facts(enabled({ keyRef: 'other/shared' })), 'KeyRefInvalid'],
    ['keyRef purpose', facts(enabled({ keyRef: 'app' })), 'KeyRefWrongPurpose'],
    [
      'keyRef not ready',
      facts(enabled({ keyRef: 'k' }), { kmsKeys: [key('k', 'etcd', { status: {} })] }),
      'KeyRefNotReady',
    ],
    [
      'keyRef deleting',
      facts(enabled({ keyRef: 'k' }), {
        kmsKeys: [key('k', 'etcd', { metadata: { name: 'k', deletionTimestamp: '2026-02-01T00:00:00Z' } })],
      }),
      'KeyRefScheduledForDeletion',
    ],
    [
      'keyRef shared',
      facts(enabled({ keyRef: 'shared' }), { otherClusters: [{ name: 'c2', etcdKeyRef: 'shared' }] }),
      'KeyRefInUse',
    ],
    ['backup keyRef missing', facts(enabled({ backup: { keyRef: 'nope' } })), 'BackupKeyRefNotFound'],
    ['backup keyRef purpose', facts(enabled({ backup: { keyRef: 'app' } })), 'BackupKeyRefWrongPurpose'],
    ['auto key taken', facts(enabled(), { kmsKeys: [key('c1-etcd', 'etcd')] }), 'AutoKeyConflict'],
    [
      'no plugin image',
      facts(enabled(), {
        platform: {
          ok: false,
          missing: [{ reason: 'KMSPluginImageMissing', message: 'prerequisite missing: ask the operator' }],
        },
      }),
      'KMSPluginImageMissing',
    ],
    [
      'OpenBao off',
      facts(enabled(), {
        platform: {
          ok: false,
          missing: [{ reason: 'OpenBaoDisabled', message: 'prerequisite missing: ask the operator' }],
        },
      }),
      'OpenBaoDisabled',
    ],
    ['cron', facts(enabled({}, { backup: { schedule: '0 2 * *' } })), 'BackupScheduleInvalid'],
    ['cron out of range', facts(enabled({}, { backup: { schedule: '99 99 99 99 99' } })), 'BackupScheduleInvalid'],
    ['name starts with a digit', facts({ version: 'v1.35.0' }, { name: '9lives' }), 'ClusterNameInvalid'],
    ['name too long for its CronJob', facts({ version: 'v1.35.0' }, { name: 'a'.repeat(41) }), 'ClusterNameInvalid'],
    ['name with a dot', facts({ version: 'v1.35.0' }, { name: 'web.prod' }), 'ClusterNameInvalid'],
    [
      'DataStore missing',
      facts({ version: 'v1.35.0' }, { dataStore: { name: 'gold', found: false } }),
      'DataStoreNotFound',
    ],
    [
      'DataStore of another tenant',
      facts(
        { version: 'v1.35.0' },
        { dataStore: { name: 'victim-etcd', found: true, allowedNamespaces: 'victim-ns' } },
      ),
      'DataStoreNotAllowed',
    ],
    [
      'DataStore granted to nobody',
      facts({ version: 'v1.35.0' }, { dataStore: { name: 'victim-etcd', found: true } }),
      'DataStoreNotAllowed',
    ],
    [
      'destination',
      facts(enabled({}, { backup: { destinationPath: 'https://bucket/x' } })),
      'BackupDestinationInvalid',
    ],
    ['KamajiControlPlane owner', facts(enabled(), { kamajiControlPlaneOwner: 'kcp' }), 'ManagedByKamajiControlPlane'],
    [
      'disable without migration',
      facts({ version: 'v1.35.0', encryption: { etcd: { enabled: false } } }, { attached: true }),
      'DisableRequiresMigration',
    ],
    [
      'bad break-glass',
      facts(
        { version: 'v1.35.0' },
        { attached: true, annotations: { 'security.kube-dc.com/encryption-force-disable-confirmed': 'yes' } },
      ),
      'ForceDisableAnnotationInvalid',
    ],
  ])('%s -> %s', (_name, input, reason) => {
    expect(reasons(input)).toContain(reason);
    const v = validateCluster(input);
    expect(v.ok).toBe(false);
    if (!v.ok) for (const e of v.errors) expect(e.message.length).toBeGreaterThan(20);
  });
});

describe('validateCluster: accepted specs', () => {
  it('resolves the auto key and the backup key default', () => {
    expect(validateCluster(facts(enabled()))).toMatchObject({
      ok: true,
      etcdKeyRef: 'c1-etcd',
      backupKeyRef: 'c1-etcd',
      warnings: [],
    });
  });
  it('accepts its own auto key and combined intervals', () => {
    const own = key('c1-etcd', 'etcd', {
      metadata: {
        name: 'c1-etcd',
        labels: { 'k8s.kube-dc.com/kdccluster': 'c1', 'security.kube-dc.com/managed-by': 'kdccluster' },
      },
    });
    expect(
      validateCluster(facts(enabled({ kekRotation: { enabled: true, interval: '7d12h' } }), { kmsKeys: [own] })).ok,
    ).toBe(true);
  });
  it('warns, not fails, when kekRotation comes with an explicit key', () => {
    const v = validateCluster(
      facts(enabled({ keyRef: 'shared', kekRotation: { enabled: true, interval: '1s' }, backup: { keyRef: 'bk' } })),
    );
    expect(v).toMatchObject({
      ok: true,
      etcdKeyRef: 'shared',
      backupKeyRef: 'bk',
      warnings: [{ reason: 'KEKRotationManagedExternally' }],
    });
  });
  it('shares a key when the cluster says so', () => {
    const v = validateCluster(
      facts(enabled({ keyRef: 'shared' }), {
        otherClusters: [{ name: 'c2', etcdKeyRef: 'shared' }],
        annotations: { 'security.kube-dc.com/allow-shared-etcd-key': '' },
      }),
    );
    expect(v.ok).toBe(true);
  });
  it('does not check prerequisites or keys when encryption is off', () => {
    expect(
      validateCluster(
        facts(
          { version: 'v1.35.0' },
          {
            platform: {
              ok: false,
              missing: [{ reason: 'KMSPluginImageMissing', message: 'prerequisite missing: ask the operator' }],
            },
          },
        ),
      ).ok,
    ).toBe(true);
  });
  it('honours a valid break-glass annotation', () => {
    const v = validateCluster(
      facts(
        { version: 'v1.35.0' },
        {
          attached: true,
          annotations: { 'security.kube-dc.com/encryption-force-disable-confirmed': '2026-11-22T10:00:00Z' },
        },
      ),
    );
    expect(v).toMatchObject({ ok: true, forceDisable: true, forceDisabled: false });
  });
  it('reports every problem at once', () => {
    expect(reasons(facts(enabled({ keyRef: 'nope', backup: { keyRef: 'app' } }, { version: 'x' })))).toEqual([
      'VersionInvalid',
      'KeyRefNotFound',
      'BackupKeyRefWrongPurpose',
    ]);
  });
});

describe('dataStoreGranted', () => {
  it.each<[string | undefined, string, boolean]>([
    ['acme-dev', 'acme-dev', true],
    ['a, acme-dev ,b', 'acme-dev', true],
    ['*', 'anyone', true],
    ['acme-dev-2', 'acme-dev', false],
    ['acme', 'acme-dev', false],
    ['', 'acme-dev', false],
    [undefined, 'acme-dev', false],
  ])('%s grants %s: %s', (allowed, ns, granted) => expect(dataStoreGranted(allowed, ns)).toBe(granted));
});

describe('validateCluster: names and DataStores', () => {
  it('accepts a 40-character name and a granted DataStore', () => {
    expect(
      validateCluster(
        facts(
          { version: 'v1.35.0' },
          { name: `a${'b'.repeat(38)}c`, dataStore: { name: 'gold', found: true, allowedNamespaces: 'acme-dev' } },
        ),
      ).ok,
    ).toBe(true);
  });
  it('accepts the default DataStore (none named)', () =>
    expect(validateCluster(facts({ version: 'v1.35.0' })).ok).toBe(true));
});

describe('validateCluster: break-glass is honoured only while recent', () => {
  const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const MIN = 60_000;
  it.each<[string, string, boolean, string | undefined]>([
    ['just now', at(0), true, undefined],
    ['59 minutes old', at(-59 * MIN), true, undefined],
    ['exactly 1 h old', at(-60 * MIN), true, undefined],
    ['1 h 1 s old', at(-60 * MIN - 1000), false, 'ForceDisableAnnotationStale'],
    ['2 h old', at(-120 * MIN), false, 'ForceDisableAnnotationStale'],
    ['the leftover of 2001', '2001-01-01T00:00:00Z', false, 'ForceDisableAnnotationStale'],
    ['4 minutes ahead (clock skew)', at(4 * MIN), true, undefined],
    ['10 minutes ahead', at(10 * MIN), false, 'ForceDisableAnnotationInFuture'],
    ['far future', '2099-01-01T00:00:00Z', false, 'ForceDisableAnnotationInFuture'],
    ['with an offset, 30 minutes old', '2026-11-22T11:30:00+02:00', true, undefined],
    ['with an offset, 3 h old', '2026-11-22T09:00:00+02:00', false, 'ForceDisableAnnotationStale'],
    ['fractional seconds', '2026-11-22T09:59:59.123Z', true, undefined],
    ['no zone (local time is ambiguous)', '2026-11-22T10:00:00', false, 'ForceDisableAnnotationInvalid'],
    ['a date only', '2026-11-22', false, 'ForceDisableAnnotationInvalid'],
    ['not a time', 'yes', false, 'ForceDisableAnnotationInvalid'],
    ['empty', '', false, 'ForceDisableAnnotationInvalid'],
  ])('%s (%s): detach %s', (_name, value, detach, reason) => {
    const v = validateCluster(facts(disabled, { attached: true, annotations: { [BREAK_GLASS]: value } }));
    if (detach) {
      expect(v).toMatchObject({ ok: true, forceDisable: true });
    } else {
      expect(v.ok).toBe(false);
      if (!v.ok) {
        expect(v.errors.map((e) => e.reason)).toEqual([reason]);
        expect(v.errors[0]!.message).toContain(BREAK_GLASS);
      }
    }
  });

  it('says how old a stale confirmation is and what to do', () => {
    const v = validateCluster(facts(plain, { attached: true, annotations: { [BREAK_GLASS]: at(-120 * MIN) } }));
    expect(v.ok ? '' : v.errors[0]!.message).toMatch(
      /is 2h old; break-glass is honoured only within 1h .*set it to the current time.*disableRequested: true/,
    );
  });

  it('judges the time against the facts, not the wall clock', () => {
    const confirmed = { [BREAK_GLASS]: '2026-11-22T10:00:00Z' };
    expect(
      validateCluster(facts(plain, { attached: true, annotations: confirmed, now: new Date('2026-11-22T10:30:00Z') }))
        .ok,
    ).toBe(true);
    expect(
      validateCluster(facts(plain, { attached: true, annotations: confirmed, now: new Date('2026-11-22T12:00:00Z') }))
        .ok,
    ).toBe(false);
  });

  it.each<[string, Partial<ClusterFacts>, object, boolean]>([
    [
      'detached, annotation still there, long after',
      { attached: false, annotations: { [BREAK_GLASS]: '2001-01-01T00:00:00Z' } },
      plain,
      true,
    ],
    ['detached, no annotation', { attached: false }, plain, false],
    [
      'still attached (the detach has not happened)',
      { attached: true, annotations: { [BREAK_GLASS]: at(0) } },
      plain,
      false,
    ],
    [
      'encryption back on',
      { attached: false, annotations: { [BREAK_GLASS]: at(0) } },
      { version: 'v1.35.0', encryption: { etcd: { enabled: true } } },
      false,
    ],
  ])('forceDisabled: %s -> %s', (_name, more, spec, expected) => {
    const v = validateCluster(facts(spec, { kmsKeys: [], ...more }));
    expect(v).toMatchObject({ ok: true, forceDisabled: expected });
  });
});
