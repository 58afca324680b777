import { describe, expect, it } from 'vitest';
import {
  MAX_PASSES,
  PASS_RETRY_MS,
  nextRecord,
  planMigration,
  provenPlaintext,
  type Coverage,
  type MigrationObservation,
  type MigrationRecord,
} from './plan.ts';

const T0 = '2026-12-01T10:00:00Z';
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const K2 = 'kdc1.v2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const K3 = 'kdc1.v3.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const coverage = (c: Partial<Coverage> = {}): Coverage => ({
  total: 100,
  current: 100,
  stale: 0,
  plaintext: 0,
  scannedAt: at(0),
  keyIds: [K2],
  configHash: 'H1',
  ...c,
});
const record = (r: Partial<MigrationRecord> = {}): MigrationRecord => ({
  reason: 'enable',
  startedAt: at(0),
  pass: 1,
  rewritten: 0,
  total: 100,
  ...r,
});
const obs = (o: Partial<MigrationObservation> = {}): MigrationObservation => ({
  encrypt: ['secrets', 'configmaps'],
  decrypt: [],
  configHash: 'H1',
  rollout: { ready: true, keyIds: [K2] },
  coverage: coverage(),
  autoRewrap: true,
  now: new Date(Date.parse(at(60))),
  ...o,
});

describe('planMigration: when nothing needs doing', () => {
  it('a clean, fresh scan: idle', () => expect(planMigration(obs())).toEqual({ kind: 'idle' }));
  it('waits for every replica before anything (rows written now could go through an old config)', () => {
    expect(
      planMigration(
        obs({
          rollout: { ready: false, message: '1 of 2 replicas runs the new config' },
          coverage: coverage({ plaintext: 5 }),
        }),
      ),
    ).toEqual({ kind: 'wait', message: '1 of 2 replicas runs the new config', retryMs: 5_000 });
  });
  it('stale rows with automatic rewrap off, and nobody asked: idle, saying how many', () => {
    expect(planMigration(obs({ autoRewrap: false, coverage: coverage({ stale: 7, current: 93 }) }))).toEqual({
      kind: 'idle',
      stale: 7,
    });
  });
});

describe('planMigration: proving coverage', () => {
  it.each<[string, Partial<MigrationObservation>, string]>([
    ['no scan yet', { coverage: undefined }, 'no scan yet'],
    [
      'a rotation: the plugins publish another key_id',
      { rollout: { ready: true, keyIds: [K3] } },
      'the published key_id changed',
    ],
    ['a rewrap request newer than the scan', { rewrapRequestedAt: at(30) }, 'a rewrap was requested'],
    ['a pass that ended after the last scan', { record: record({ passEndedAt: at(10) }) }, 'verifying the pass'],
  ])('%s: scan', (_name, o, why) => expect(planMigration(obs(o))).toEqual({ kind: 'scan', why }));
  it('an older rewrap request changes nothing', () =>
    expect(planMigration(obs({ rewrapRequestedAt: at(-10) }))).toEqual({ kind: 'idle' }));
});

describe('planMigration: the passes', () => {
  it('plaintext rows start an enable migration', () =>
    expect(planMigration(obs({ coverage: coverage({ plaintext: 20, current: 80 }) }))).toEqual({
      kind: 'start',
      reason: 'enable',
    }));
  it('after a key switch promoted the new key, rows under the old one are moved even with automatic rewrap off', () => {
    expect(planMigration(obs({ autoRewrap: false, switching: true, coverage: coverage({ stale: 7 }) }))).toEqual({
      kind: 'start',
      reason: 'switch',
    });
    expect(planMigration(obs({ autoRewrap: false, switching: true }))).toEqual({ kind: 'idle' });
  });
  it('stale rows start a rewrap (automatic, or asked for)', () => {
    expect(planMigration(obs({ coverage: coverage({ stale: 7 }) }))).toEqual({ kind: 'start', reason: 'rewrap' });
    expect(
      planMigration(
        obs({ autoRewrap: false, coverage: coverage({ stale: 7, scannedAt: at(40) }), rewrapRequestedAt: at(30) }),
      ),
    ).toEqual({ kind: 'start', reason: 'rewrap' });
    // A request the last migration already answered is not a new one.
    expect(
      planMigration(
        obs({
          autoRewrap: false,
          coverage: coverage({ stale: 7, scannedAt: at(40) }),
          rewrapRequestedAt: at(30),
          lastCompletedAt: at(35),
        }),
      ),
    ).toEqual({ kind: 'idle', stale: 7 });
  });
  it('a pass resumes at its checkpoint, whatever a newer scan says', () => {
    expect(
      planMigration(
        obs({ record: record({ resource: 'configmaps', continue: 'tok' }), rollout: { ready: true, keyIds: [K3] } }),
      ),
    ).toEqual({ kind: 'rewrite', resource: 'configmaps', continue: 'tok' });
  });
  it('after the last page the pass is ended, then verified by a scan', () => {
    expect(planMigration(obs({ record: record() }))).toEqual({ kind: 'endPass' });
    expect(
      planMigration(obs({ record: record({ passEndedAt: at(10) }), coverage: coverage({ scannedAt: at(20) }) })),
    ).toEqual({ kind: 'finish' });
  });
  it('rows left after a pass: another pass, once the apiserver had time to adopt the key_id', () => {
    const left = { record: record({ passEndedAt: at(10) }), coverage: coverage({ scannedAt: at(20), stale: 3 }) };
    expect(planMigration(obs({ ...left, now: new Date(Date.parse(at(15))) }))).toMatchObject({
      kind: 'wait',
      retryMs: PASS_RETRY_MS - 5_000,
    });
    expect(planMigration(obs({ ...left, now: new Date(Date.parse(at(40))) }))).toEqual({ kind: 'nextPass' });
    expect(
      planMigration(
        obs({ ...left, record: record({ passEndedAt: at(10), pass: MAX_PASSES }), now: new Date(Date.parse(at(40))) }),
      ),
    ).toMatchObject({ kind: 'wait', message: expect.stringMatching(/3 rows .* after 5 passes/) });
  });
});

describe('nextRecord: the checkpoint each step leaves', () => {
  const o = obs({ coverage: coverage({ plaintext: 20, current: 80 }) });
  it('start: first resource, the total from the scan', () => {
    expect(nextRecord({ kind: 'start', reason: 'enable' }, o)).toEqual({
      reason: 'enable',
      startedAt: at(60),
      pass: 1,
      resource: 'secrets',
      rewritten: 0,
      total: 100,
    });
  });
  it('rewrite: keeps the continue token, then moves to the next resource, then ends the resources', () => {
    const r = record({ resource: 'secrets' });
    expect(
      nextRecord({ kind: 'rewrite', resource: 'secrets' }, { ...o, record: r }, { continue: 'next', rewritten: 50 }),
    ).toMatchObject({ resource: 'secrets', continue: 'next', rewritten: 50 });
    expect(
      nextRecord(
        { kind: 'rewrite', resource: 'secrets', continue: 'next' },
        { ...o, record: { ...r, continue: 'next', rewritten: 50 } },
        { rewritten: 30 },
      ),
    ).toEqual({ ...r, resource: 'configmaps', rewritten: 80 });
    const last = nextRecord(
      { kind: 'rewrite', resource: 'configmaps' },
      { ...o, record: record({ resource: 'configmaps', rewritten: 80 }) },
      { rewritten: 20 },
    );
    expect(last).toEqual({ reason: 'enable', startedAt: at(0), pass: 1, rewritten: 100, total: 100 });
  });
  it('endPass stamps the end; nextPass starts over at the first resource; finish clears the record', () => {
    expect(nextRecord({ kind: 'endPass' }, { ...o, record: record() })).toEqual({ ...record(), passEndedAt: at(60) });
    expect(nextRecord({ kind: 'nextPass' }, { ...o, record: record({ passEndedAt: at(10) }) })).toEqual({
      ...record(),
      pass: 2,
      resource: 'secrets',
    });
    expect(nextRecord({ kind: 'finish' }, { ...o, record: record({ passEndedAt: at(10) }) })).toBeUndefined();
  });
});

describe('planMigration: the disable (resources leaving KMS)', () => {
  const counts = (total: number, plaintext: number) => ({ total, current: total - plaintext, stale: 0, plaintext });
  const leaving = (byResource: Coverage['byResource'], c: Partial<Coverage> = {}) => coverage({ byResource, ...c });
  it('a config change (new hash) makes the last scan worthless: scan again', () => {
    expect(planMigration(obs({ configHash: 'H2' }))).toEqual({ kind: 'scan', why: 'the encryption config changed' });
  });
  it('a scan without counts for a decrypted resource proves nothing about it', () => {
    expect(
      planMigration(
        obs({ encrypt: [], decrypt: ['configmaps', 'secrets'], coverage: leaving({ secrets: counts(10, 0) }) }),
      ),
    ).toEqual({ kind: 'scan', why: 'the encryption config changed' });
  });
  it('KMS rows of a decrypted resource start a decrypt migration', () => {
    const c = leaving({ secrets: counts(10, 10), configmaps: counts(5, 0) });
    expect(planMigration(obs({ encrypt: [], decrypt: ['configmaps', 'secrets'], coverage: c }))).toEqual({
      kind: 'start',
      reason: 'decrypt',
    });
  });
  it('all rows plaintext is what a disable wants: idle, and proven', () => {
    const o = obs({
      encrypt: [],
      decrypt: ['configmaps', 'secrets'],
      coverage: leaving({ secrets: counts(10, 10), configmaps: counts(5, 5) }),
    });
    expect(planMigration(o)).toEqual({ kind: 'idle' });
    expect(provenPlaintext(o)).toEqual(['configmaps', 'secrets']);
  });
  it('proof needs the replicas on the current config and a fresh scan', () => {
    const c = leaving({ secrets: counts(10, 10) }, { plaintext: 10, current: 0 });
    expect(provenPlaintext(obs({ encrypt: [], decrypt: ['secrets'], coverage: c }))).toEqual(['secrets']);
    expect(
      provenPlaintext(
        obs({ encrypt: [], decrypt: ['secrets'], coverage: c, rollout: { ready: false, message: 'rolling' } }),
      ),
    ).toEqual([]);
    expect(provenPlaintext(obs({ encrypt: [], decrypt: ['secrets'], coverage: c, configHash: 'H2' }))).toEqual([]);
    expect(
      provenPlaintext(obs({ encrypt: [], decrypt: ['secrets'], coverage: leaving({ secrets: counts(10, 9) }) })),
    ).toEqual([]);
  });
  it('a disable pass walks the decrypted resources and ends when none is KMS-encrypted', () => {
    const o = obs({
      encrypt: [],
      decrypt: ['configmaps', 'secrets'],
      coverage: leaving({ secrets: counts(10, 0), configmaps: counts(5, 0) }),
    });
    expect(nextRecord({ kind: 'start', reason: 'decrypt' }, o)).toMatchObject({
      reason: 'decrypt',
      resource: 'configmaps',
    });
    const ended = { record: record({ reason: 'decrypt', passEndedAt: at(10) }) };
    expect(
      planMigration({
        ...o,
        ...ended,
        coverage: leaving({ secrets: counts(10, 10), configmaps: counts(5, 5) }, { scannedAt: at(20) }),
      }),
    ).toEqual({ kind: 'finish' });
    expect(
      planMigration({
        ...o,
        ...ended,
        coverage: leaving({ secrets: counts(10, 9), configmaps: counts(5, 5) }, { scannedAt: at(20) }),
        now: new Date(Date.parse(at(40))),
      }),
    ).toEqual({ kind: 'nextPass' });
  });
});
