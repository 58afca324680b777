import { describe, expect, it } from 'vitest';
import { planBackup, type ObservedBackup } from './plan.ts';
import type { buildBackupCronJob } from '../resources/backup-cronjob.ts';

const settings = {
  bucket: 'acme-web-managed-k8s-backups',
  destinationPath: 's3://acme-web-managed-k8s-backups/prod/',
  s3Endpoint: 'http://s3:9000',
  credentialSecret: 'managed-k8s-backups',
  schedule: '0 2 * * *',
  retentionDays: 7,
};
const base: ObservedBackup = {
  namespace: 'acme-web',
  cluster: 'prod',
  settings,
  image: 'reg/kdc-backup:1',
  openBaoUrl: 'https://bao:8200',
  openBaoNamespace: 'acme',
  hasCaBundle: true,
  backupKey: { name: 'prod-etcd', transitKey: 'acme-web-prod-etcd', ready: true },
  dataStoreName: 'prod-etcd',
  dataStore: { driver: 'etcd', endpoints: ['etcd-0.prod:2379', 'etcd-1.prod:2379'] },
  dataStoreNeighbours: [],
  datastoreCertsExists: true,
  credentialsMissingKeys: [],
  serviceAccountExists: true,
  cronJobHash: null,
};
const o = (patch: Partial<ObservedBackup>): ObservedBackup => ({ ...base, ...patch });
const hashOf = (observed: ObservedBackup) =>
  (planBackup({ ...observed, cronJobHash: null }).action as { object: ReturnType<typeof buildBackupCronJob> }).object
    .metadata.annotations['kube-dc.com/spec-hash'];

describe('planBackup: why backups cannot run (no writes), each with a reason that says what to fix', () => {
  it.each([
    ['no image', o({ image: undefined }), 'BackupImageMissing', /KDC_BACKUP_IMAGE/],
    ['TCP has no datastore yet', o({ dataStoreName: undefined }), 'DataStoreUnknown', /status.storage.dataStoreName/],
    ['DataStore missing', o({ dataStore: null }), 'DataStoreUnknown', /DataStore prod-etcd .* does not exist/],
    [
      'not etcd',
      o({ dataStore: { driver: 'PostgreSQL', endpoints: ['pg:5432'] } }),
      'DataStoreUnsupported',
      /driver PostgreSQL/,
    ],
    [
      'shared',
      o({ dataStoreNeighbours: ['a/x-cp', 'b/y-cp', 'c/z-cp', 'd/w-cp'] }),
      'SharedDataStore',
      /also serves 4 other control plane\(s\) \(a\/x-cp, b\/y-cp, c\/z-cp, \.\.\.\).*dedicated DataStore/,
    ],
    ['no client certificate', o({ datastoreCertsExists: false }), 'DataStoreUnknown', /prod-cp-datastore-certs/],
    [
      'key not ready',
      o({ backupKey: { ...base.backupKey, ready: false, message: 'OpenBao unreachable' } }),
      'BackupKeyNotReady',
      /prod-etcd is not Ready: OpenBao unreachable/,
    ],
    [
      'no credentials',
      o({ credentialsMissingKeys: null }),
      'S3NotAvailable',
      /create it with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/,
    ],
    [
      'half credentials',
      o({ credentialsMissingKeys: ['AWS_SECRET_ACCESS_KEY'] }),
      'S3NotAvailable',
      /lacks AWS_SECRET_ACCESS_KEY/,
    ],
  ])('%s', (_, observed, reason, message) => {
    const plan = planBackup(observed);
    expect(plan.action).toEqual({ kind: 'done' });
    expect(plan.condition).toMatchObject({
      type: 'BackupReady',
      status: 'False',
      reason,
      message: expect.stringMatching(message),
    });
  });
});

describe('planBackup: a CronJob that must not run goes, with its running Jobs (finding 5)', () => {
  const live = { cronJobHash: 'h', activeJobs: ['prod-etcd-backup-1'] };
  it.each([
    ['the DataStore became shared', o({ ...live, dataStoreNeighbours: ['evil/x-cp'] }), 'SharedDataStore'],
    ['the DataStore is gone', o({ ...live, dataStore: null }), 'DataStoreUnknown'],
    ['the TCP no longer names a DataStore', o({ ...live, dataStoreName: undefined }), 'DataStoreUnknown'],
    [
      'the DataStore is not etcd',
      o({ ...live, dataStore: { driver: 'PostgreSQL', endpoints: ['pg:5432'] } }),
      'DataStoreUnsupported',
    ],
    [
      'the endpoint is not allowed',
      o({
        ...live,
        endpointRefusal: 'spec.backup.s3Endpoint "http://evil" is not an S3 endpoint this platform allows',
      }),
      'S3EndpointNotAllowed',
    ],
  ])('%s: the CronJob first, then the Jobs, then nothing', (_, observed, reason) => {
    expect(planBackup(observed)).toMatchObject({
      action: { kind: 'deleteCronJob', why: expect.stringMatching(new RegExp(`^${reason}: `)) },
      condition: { status: 'False', reason },
    });
    expect(planBackup({ ...observed, cronJobHash: null })).toMatchObject({
      action: { kind: 'deleteJobs', names: ['prod-etcd-backup-1'] },
      condition: { reason },
    });
    expect(planBackup({ ...observed, cronJobHash: null, activeJobs: [] })).toMatchObject({
      action: { kind: 'done' },
      condition: { reason },
    });
  });
  it.each([
    ['no image', o({ ...live, image: undefined })],
    ['no client certificate', o({ ...live, datastoreCertsExists: false })],
    ['key not ready', o({ ...live, backupKey: { ...base.backupKey, ready: false } })],
    ['no credentials', o({ ...live, credentialsMissingKeys: null })],
  ])('%s: the CronJob stays and fails loudly', (_, observed) => {
    expect(planBackup(observed).action).toEqual({ kind: 'done' });
  });
});

describe('planBackup: the next single change', () => {
  it('ServiceAccount first, then the CronJob, then nothing', () => {
    expect(planBackup(o({ serviceAccountExists: false })).action).toMatchObject({
      kind: 'createServiceAccount',
      object: { metadata: { name: 'prod-etcd-backup' }, automountServiceAccountToken: false },
    });
    const write = planBackup(o({}));
    expect(write.action).toMatchObject({
      kind: 'writeCronJob',
      exists: false,
      object: { metadata: { name: 'prod-etcd-backup' } },
    });
    expect(planBackup(o({ cronJobHash: hashOf(base) })).action).toEqual({ kind: 'done' });
  });
  it('a spec change (schedule, retention, key) rewrites the CronJob; nothing else does', () => {
    const current = hashOf(base);
    expect(
      planBackup(o({ cronJobHash: current, settings: { ...settings, schedule: '30 1 * * *' } })).action,
    ).toMatchObject({ kind: 'writeCronJob', exists: true });
    expect(planBackup(o({ cronJobHash: current, settings: { ...settings, retentionDays: 30 } })).action).toMatchObject({
      kind: 'writeCronJob',
      exists: true,
    });
    expect(
      planBackup(o({ cronJobHash: current, backupKey: { ...base.backupKey, transitKey: 'acme-web-other' } })).action,
    ).toMatchObject({ kind: 'writeCronJob' });
    expect(planBackup(o({ cronJobHash: current, latestJob: { name: 'j', result: 'Failed' } })).action).toEqual({
      kind: 'done',
    });
    const suspended = planBackup(o({ cronJobHash: current, restoring: true })).action;
    expect(suspended).toMatchObject({ kind: 'writeCronJob', exists: true, object: { spec: { suspend: true } } });
  });
  it('disabled: removes the CronJob (backups in the bucket stay) and says so', () => {
    expect(planBackup(o({ settings: null, cronJobHash: 'x' }))).toMatchObject({
      action: { kind: 'deleteCronJob', why: 'backups are disabled' },
      condition: { status: 'False', reason: 'BackupDisabled' },
    });
    expect(planBackup(o({ settings: null })).action).toEqual({ kind: 'done' });
  });
});

describe('BackupReady once the CronJob is in place', () => {
  const ready = (patch: Partial<ObservedBackup>) => planBackup(o({ cronJobHash: hashOf(base), ...patch })).condition;
  it.each([
    ['no run yet', {}, 'True', 'Scheduled', /runs on "0 2 \* \* \*" \(UTC\).*no backup yet/],
    [
      'a run succeeded',
      {
        latestJob: { name: 'j1', result: 'Succeeded' as const },
        latestBackup: { key: 'prod/prod-20261122T020000Z/', time: '2026-11-22T02:00:00Z' },
      },
      'True',
      'BackupSucceeded',
      /s3:\/\/acme-web-managed-k8s-backups\/prod\/prod-20261122T020000Z\//,
    ],
    [
      'the newest run failed',
      {
        latestJob: { name: 'j2', result: 'Failed' as const, reason: 'BackoffLimitExceeded' },
        latestBackup: { key: 'prod/prod-20261121T020000Z/', time: '2026-11-21T02:00:00Z' },
      },
      'False',
      'BackupFailed',
      /Job j2 failed \(BackoffLimitExceeded\): see kubectl logs -n acme-web job\/j2/,
    ],
    [
      'a run in progress keeps the last result',
      { latestJob: { name: 'j3' }, latestBackup: { key: 'prod/prod-20261121T020000Z/', time: '2026-11-21T02:00:00Z' } },
      'True',
      'BackupSucceeded',
      /prod-20261121T020000Z/,
    ],
    [
      'the bucket cannot be listed',
      {
        latestJob: { name: 'j4', result: 'Succeeded' as const },
        bucketError: 'LIMIT_EXCEEDED: listing s3://b/prod/ returned more than 10 pages',
      },
      'False',
      'BucketUnreadable',
      /after Job j4, the backups in s3:\/\/acme-web-managed-k8s-backups\/prod\/ could not be listed: LIMIT_EXCEEDED/,
    ],
  ])('%s', (_, patch, status, reason, message) => {
    expect(ready(patch)).toMatchObject({ status, reason, message: expect.stringMatching(message) });
  });
});
