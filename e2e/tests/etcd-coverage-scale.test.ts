// 10,000 rows through the coverage scanner over mutual TLS, in a process of its own: the scan rate
// (the bench's scan_objects_per_s) and a peak RSS that does not grow with the data scanned. Values
// are garbage once classified; V8 collects their buffers once enough accumulate, so the peak
// settles near a fixed ceiling whatever the data size, which is what the heavy set checks.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanInChild, type ScanProbeInput } from '../src/etcd-scan-probe.ts';
import { keyIdOf, kmsRow, plaintextRow, startTlsEtcd, type TlsEtcd } from '../src/etcd-tls.ts';
import { platform, unique } from './helpers.ts';

const ROWS = 10_000;
/** ~4 KiB a row: 10,000 rows are ~40 MiB of values. */
const PAD = 4096;
/** 5,000 rows of ~32 KiB: ~160 MiB of values, 4x the bytes; a scanner keeping values would need 120 MiB more. */
const HEAVY = { rows: 5_000, pad: 32_768 };

describe(`coverage scan of ${ROWS} rows`, () => {
  let t: TlsEtcd;
  const current = keyIdOf('kdc2', 3, 'C');
  const stale = keyIdOf('kdc2', 2, 'C');
  const big = `/${randomUUID()}/`;
  const heavy = `/${randomUUID()}/`;
  const kind = (i: number) => (i % 20 === 0 ? 'plaintext' : i % 20 === 1 ? 'stale' : 'current');
  const row = (i: number, pad: number) =>
    kind(i) === 'plaintext' ? plaintextRow(pad) : kmsRow(kind(i) === 'stale' ? stale : current, { pad });
  const rows = function* (prefix: string, n: number, pad: number) {
    for (let i = 0; i < n; i++) yield { key: `${prefix}secrets/ns-${i % 50}/secret-${i}`, value: row(i, pad) };
  };

  beforeAll(async () => {
    t = await startTlsEtcd(platform(), join(platform().dir, unique('cov-scale')), unique('cov-scale'));
    const started = Date.now();
    await t.writer.putMany(rows(big, ROWS, PAD), 64);
    await t.writer.putMany(rows(heavy, HEAVY.rows, HEAVY.pad), 64);
    console.log(`wrote ${ROWS} + ${HEAVY.rows} rows in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 240_000);
  afterAll(async () => t?.stop());

  it('counts them exactly at a steady rate, with a peak RSS that does not follow the data', async () => {
    const probe = (prefix: string): ScanProbeInput => ({
      endpoint: t.etcd.endpoint,
      caFile: t.ca.certFile,
      certFile: t.client.certFile,
      keyFile: t.client.keyFile,
      prefix,
      resources: ['secrets'],
      currentKeyIds: [current],
    });
    const expected = (n: number) => {
      const count = (k: string) => Array.from({ length: n }, (_, i) => kind(i)).filter((x) => x === k).length;
      return {
        total: n,
        current: count('current'),
        stale: count('stale'),
        plaintext: count('plaintext'),
        foreign: 0,
        unreadable: 0,
      };
    };

    const bigRun = await scanInChild(probe(big));
    const heavyRun = await scanInChild(probe(heavy));
    expect(bigRun.scan).toMatchObject({
      ...expected(ROWS),
      byKeyId: { [current]: expected(ROWS).current, [stale]: expected(ROWS).stale },
    });
    expect(heavyRun.scan).toMatchObject(expected(HEAVY.rows));

    const line = {
      rows: ROWS,
      value_mib: Math.round((ROWS * PAD) / 2 ** 20),
      scan_seconds: Number(bigRun.seconds.toFixed(2)),
      warmup_seconds: Number(bigRun.warmupSeconds.toFixed(2)),
      scan_objects_per_s: bigRun.rowsPerSecond,
      peak_rss_mib: bigRun.peakRssMiB,
      heavy_value_mib: Math.round((HEAVY.rows * HEAVY.pad) / 2 ** 20),
      heavy_peak_rss_mib: heavyRun.peakRssMiB,
    };
    console.log(JSON.stringify(line));
    // 4x the bytes (120 MiB more) cost at most a fraction of that: nothing scanned is kept.
    expect(heavyRun.peakRssMiB - bigRun.peakRssMiB).toBeLessThan(40);
    expect(Math.max(bigRun.peakRssMiB, heavyRun.peakRssMiB)).toBeLessThan(256);
    // A loaded 2-core CI machine still scans thousands of rows a second (the apiserver itself lists slower).
    expect(bigRun.rowsPerSecond).toBeGreaterThan(1_000);
  }, 180_000);
});
