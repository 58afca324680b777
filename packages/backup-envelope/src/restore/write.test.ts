import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { BackupError } from '../errors.ts';
import type { MetadataV1 } from '../metadata.ts';
import { decoderFor, transitUnwrap, type Decoder } from './decode.ts';
import { claimDestination, etcdutlRestoreArgs, writeDestination } from './write.ts';

const root = mkdtempSync(join(tmpdir(), 'write-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `case-${++n}`);

/** A decoder over `chunks`, optionally failing with `error` after them. */
function decoder(chunks: Buffer[], error?: Error): Decoder {
  let count = 0;
  const verified = { plaintextSize: 0 };
  return {
    schemaVersion: 0,
    ranged: false,
    object: { body: Readable.from(chunks), size: undefined, etag: undefined },
    verified,
    progress: () => count,
    transform: async function* (source) {
      for await (const chunk of source) {
        count += chunk.length;
        yield chunk;
      }
      if (error) throw error;
      verified.plaintextSize = count;
    },
  };
}

const options = { backupUrl: 's3://b/prod/prod-20260304T050607Z.db', storedSize: undefined };

describe('etcdutlRestoreArgs', () => {
  it('passes the member settings the destination names', () => {
    expect(etcdutlRestoreArgs('/t/s.db', '/t/d', { kind: 'data-dir', path: '/x' })).toEqual([
      'snapshot',
      'restore',
      '/t/s.db',
      '--data-dir',
      '/t/d',
    ]);
    expect(
      etcdutlRestoreArgs('/t/s.db', '/t/d', {
        kind: 'data-dir',
        path: '/x',
        name: 'm0',
        initialCluster: 'm0=https://a:2380',
        initialAdvertisePeerUrls: 'https://a:2380',
        bumpRevision: 1000,
      }),
    ).toEqual([
      'snapshot',
      'restore',
      '/t/s.db',
      '--data-dir',
      '/t/d',
      '--name',
      'm0',
      '--initial-cluster',
      'm0=https://a:2380',
      '--initial-advertise-peer-urls',
      'https://a:2380',
      '--bump-revision',
      '1000',
      '--mark-compacted',
    ]);
  });
});

describe('claimDestination', () => {
  it('an absent destination: its parent is created', async () => {
    const parent = fresh();
    const claimed = await claimDestination({ kind: 'file', path: join(parent, 'snapshot.db') });
    expect(claimed).toEqual({
      destination: { kind: 'file', path: join(parent, 'snapshot.db') },
      target: join(parent, 'snapshot.db'),
      parent,
    });
    expect(statSync(parent).isDirectory()).toBe(true);
  });

  it('an empty data dir is fresh; a file that exists, or a data dir with something in it, is not', async () => {
    const parent = fresh();
    mkdirSync(join(parent, 'empty'), { recursive: true });
    mkdirSync(join(parent, 'busy'));
    writeFileSync(join(parent, 'busy', 'keep'), 'mine');
    writeFileSync(join(parent, 'snapshot.db'), 'mine');
    await expect(claimDestination({ kind: 'data-dir', path: join(parent, 'empty') })).resolves.toBeDefined();
    await expect(claimDestination({ kind: 'data-dir', path: join(parent, 'busy') })).rejects.toMatchObject({
      code: 'DESTINATION_NOT_EMPTY',
    });
    await expect(claimDestination({ kind: 'file', path: join(parent, 'snapshot.db') })).rejects.toMatchObject({
      code: 'DESTINATION_NOT_EMPTY',
    });
  });
});

describe('writeDestination', () => {
  it('a file: the verified bytes, 0600, no temp file left', async () => {
    const parent = fresh();
    const claimed = await claimDestination({ kind: 'file', path: join(parent, 'snapshot.db') });
    const verified = await writeDestination(claimed, decoder([Buffer.from('abc'), Buffer.from('def')]), options);
    expect(verified).toEqual({ plaintextSize: 6 });
    expect(readFileSync(claimed.target, 'utf8')).toBe('abcdef');
    expect(statSync(claimed.target).mode & 0o777).toBe(0o600);
    expect(readdirSync(parent)).toEqual(['snapshot.db']);
  });

  it('a data dir: made by etcdutl from the temp file, then renamed into place', async () => {
    const parent = fresh();
    mkdirSync(parent);
    const etcdutl = join(parent, 'etcdutl');
    // snapshot restore <file> --data-dir <dir>: keeps a copy of the snapshot it was given.
    writeFileSync(etcdutl, '#!/bin/sh\nmkdir -p "$5/member" && cp "$3" "$5/member/db"\n');
    chmodSync(etcdutl, 0o755);
    const claimed = await claimDestination({ kind: 'data-dir', path: join(parent, 'data'), etcdutl });
    await writeDestination(claimed, decoder([Buffer.from('snapshot bytes')]), options);
    expect(readFileSync(join(claimed.target, 'member', 'db'), 'utf8')).toBe('snapshot bytes');
    expect(statSync(claimed.target).mode & 0o777).toBe(0o700);
    expect(readdirSync(parent).sort()).toEqual(['data', 'etcdutl']);
  });

  it('a failing etcdutl: IO_FAILED, nothing left', async () => {
    const parent = fresh();
    const claimed = await claimDestination({
      kind: 'data-dir',
      path: join(parent, 'data'),
      etcdutl: join(parent, 'none'),
    });
    await expect(writeDestination(claimed, decoder([Buffer.from('x')]), options)).rejects.toMatchObject({
      code: 'IO_FAILED',
      message: expect.stringMatching(/not found: install etcdutl or pass --etcdutl/),
    });
    expect(readdirSync(parent)).toEqual([]);
  });

  it('a refusal while reading is passed on as it is; neither the destination nor a temp file exists', async () => {
    const parent = fresh();
    const claimed = await claimDestination({ kind: 'file', path: join(parent, 'snapshot.db') });
    const refusal = new BackupError('SEGMENT_TAMPERED', 'segment 3 failed authentication');
    await expect(writeDestination(claimed, decoder([Buffer.from('abc')], refusal), options)).rejects.toBe(refusal);
    expect(existsSync(claimed.target)).toBe(false);
    expect(readdirSync(parent)).toEqual([]);
  });

  it('any other failure becomes IO_FAILED naming the backup', async () => {
    const parent = fresh();
    const claimed = await claimDestination({ kind: 'file', path: join(parent, 'snapshot.db') });
    await expect(writeDestination(claimed, decoder([], new Error('disk on fire')), options)).rejects.toMatchObject({
      code: 'IO_FAILED',
      message: `restore of ${options.backupUrl} failed: disk on fire`,
    });
    expect(readdirSync(parent)).toEqual([]);
  });

  it('a data key Transit refuses, unwrapped as the reading starts, fails the restore with its own code', async () => {
    const parent = fresh();
    const claimed = await claimDestination({ kind: 'file', path: join(parent, 'snapshot.db') });
    const metadata: MetadataV1 = {
      schemaVersion: 1,
      algorithm: 'AES-256-GCM',
      transitKey: 'ns-prod-etcd',
      transitKeyVersion: 1,
      wrappedDek: 'vault:v1:QUJD',
      createdAt: '2026-03-04T05:06:07.890Z',
    };
    const object = { body: Readable.from([Buffer.alloc(100)]), size: 100, etag: undefined };
    const v1 = decoderFor(
      { key: 'k/', metadata, snapshotKey: 'k/snapshot.db.enc', storedSize: 100, read: { ranged: false, object } },
      {
        store: { url: (k) => k, getRange: async () => undefined, getStream: async () => null },
        unwrap: transitUnwrap(undefined),
      },
    );
    await expect(writeDestination(claimed, v1, options)).rejects.toMatchObject({ code: 'WRONG_KEY' });
    expect(readdirSync(parent)).toEqual([]);
  });
});
