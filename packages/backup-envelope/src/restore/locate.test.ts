import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SAMPLE_BOUND, SAMPLE_V2 } from '../metadata.fixture.ts';
import { serializeMetadata, type MetadataV1 } from '../metadata.ts';
import { checkBackupKey, checkRestoreTarget, locate, readsRanged, type LocateStore } from './locate.ts';

const KEY = 'prod/prod-20260304T050607Z/';
const bound = SAMPLE_BOUND;
const v2 = SAMPLE_V2;
const v1: MetadataV1 = {
  schemaVersion: 1,
  algorithm: 'AES-256-GCM',
  transitKey: 'ns-prod-etcd',
  transitKeyVersion: 1,
  wrappedDek: 'vault:v1:QUJD',
  createdAt: bound.createdAt,
};

const codeOf = (fn: () => unknown) => {
  try {
    fn();
    return 'ok';
  } catch (error) {
    return (error as { code: string }).code;
  }
};

/** An in-memory bucket that records the calls made to it. */
function bucket(objects: Record<string, { text?: string; size?: number }>) {
  const calls: string[] = [];
  const store: LocateStore = {
    url: (key) => `s3://b/${key}`,
    getText: async (key) => {
      calls.push(`getText ${key}`);
      const o = objects[key];
      return o?.text === undefined ? null : { text: o.text, etag: undefined, lastModified: undefined };
    },
    anyUnder: async (prefix) => {
      calls.push(`anyUnder ${prefix}`);
      return Object.keys(objects).some((k) => k.startsWith(prefix));
    },
    head: async (key) => {
      calls.push(`head ${key}`);
      const o = objects[key];
      return o ? { size: o.size, etag: undefined, lastModified: undefined } : null;
    },
    getStream: async (key) => {
      calls.push(`getStream ${key}`);
      const o = objects[key];
      return o ? { body: Readable.from([]), size: o.size, etag: undefined } : null;
    },
  };
  return { store, calls };
}

describe('checkBackupKey: refusals that need no I/O', () => {
  const store = bucket({}).store;
  it.each([
    ['an envelope key of this cluster', { key: KEY, cluster: 'prod' }, 'ok'],
    ['not a backup key', { key: 'prod/latest', cluster: 'prod' }, 'NOT_FOUND'],
    ["another cluster's backup", { key: KEY, cluster: 'other' }, 'WRONG_CLUSTER'],
    [
      'a plaintext .db nobody confirmed',
      { key: 'prod/prod-20260304T050607Z.db', cluster: 'prod' },
      'UNAUTHENTICATED_BACKUP',
    ],
    [
      'a confirmed plaintext .db',
      { key: 'prod/prod-20260304T050607Z.db', cluster: 'prod', allowUnauthenticated: true },
      'ok',
    ],
  ])('%s', (_, request, expected) => {
    expect(codeOf(() => checkBackupKey(store, request))).toBe(expected);
  });

  it('names the layout', () => {
    expect(checkBackupKey(store, { key: KEY, cluster: 'prod' })).toBe('envelope');
    expect(
      checkBackupKey(store, { key: 'prod/prod-20260304T050607Z.db', cluster: 'prod', allowUnauthenticated: true }),
    ).toBe('plaintext');
  });
});

describe('checkRestoreTarget: metadata.json against the request', () => {
  it.each([
    ['its own backup', v2, ['prod', 'ns-prod-etcd', 'ns'], 'ok'],
    ['recorded for another cluster', v2, ['other'], 'WRONG_CLUSTER'],
    ['recorded for another namespace', v2, ['prod', undefined, 'elsewhere'], 'WRONG_CLUSTER'],
    ['wrapped with another Transit key', v2, ['prod', 'other-key'], 'WRONG_KEY'],
    ['a version-1 backup without a recorded source', v1, ['prod', undefined, 'ns'], 'ok'],
  ] as const)('%s', (_, metadata, [cluster, transitKey, namespace], expected) => {
    expect(codeOf(() => checkRestoreTarget(metadata, KEY, cluster, transitKey, namespace))).toBe(expected);
  });
});

describe('readsRanged', () => {
  it.each([
    ['version 2, the size metadata.json names', v2, v2.ciphertextSize, true],
    ['version 2, one byte more (appended)', v2, v2.ciphertextSize + 1, false],
    ['version 2, one byte less (truncated)', v2, v2.ciphertextSize - 1, false],
    ['version 2, size unknown', v2, undefined, false],
    ['version 1', v1, 100, false],
    ['a plaintext .db', undefined, 100, false],
  ])('%s', (_, metadata, size, expected) => {
    expect(readsRanged(metadata, size)).toBe(expected);
  });
});

describe('locate: the backup key to metadata.json and the snapshot', () => {
  const request = { key: KEY, cluster: 'prod', namespace: 'ns' };

  it('a version-2 backup of the named size: one HEAD, no GET (the ranged path reads it)', async () => {
    const { store, calls } = bucket({
      [`${KEY}metadata.json`]: { text: serializeMetadata(v2) },
      [`${KEY}snapshot.db.enc`]: { size: v2.ciphertextSize },
    });
    const located = await locate(store, request, 'envelope');
    expect(located).toMatchObject({
      key: KEY,
      metadata: v2,
      snapshotKey: `${KEY}snapshot.db.enc`,
      storedSize: v2.ciphertextSize,
      read: { ranged: true },
    });
    expect(calls).toEqual([`getText ${KEY}metadata.json`, `head ${KEY}snapshot.db.enc`]);
  });

  it('a version-2 object of another size is streamed, and its stored size is kept for the messages', async () => {
    const { store, calls } = bucket({
      [`${KEY}metadata.json`]: { text: serializeMetadata(v2) },
      [`${KEY}snapshot.db.enc`]: { size: v2.ciphertextSize + 5 },
    });
    const located = await locate(store, request, 'envelope');
    expect(located).toMatchObject({ storedSize: v2.ciphertextSize + 5, read: { ranged: false } });
    expect(calls).toEqual([
      `getText ${KEY}metadata.json`,
      `head ${KEY}snapshot.db.enc`,
      `getStream ${KEY}snapshot.db.enc`,
    ]);
  });

  it('a plaintext .db is streamed as it is', async () => {
    const key = 'prod/prod-20260304T050607Z.db';
    const { store, calls } = bucket({ [key]: { size: 42 } });
    const located = await locate(store, { key, cluster: 'prod' }, 'plaintext');
    expect(located).toMatchObject({ metadata: undefined, snapshotKey: key, storedSize: 42, read: { ranged: false } });
    expect(calls).toEqual([`getStream ${key}`]);
  });

  it('refuses before touching the snapshot when metadata.json does not match the request', async () => {
    const { store, calls } = bucket({
      [`${KEY}metadata.json`]: { text: serializeMetadata(v2) },
      [`${KEY}snapshot.db.enc`]: { size: v2.ciphertextSize },
    });
    await expect(locate(store, { ...request, namespace: 'elsewhere' }, 'envelope')).rejects.toMatchObject({
      code: 'WRONG_CLUSTER',
    });
    await expect(locate(store, { ...request, expectedTransitKey: 'other' }, 'envelope')).rejects.toMatchObject({
      code: 'WRONG_KEY',
    });
    expect(calls).toEqual([`getText ${KEY}metadata.json`, `getText ${KEY}metadata.json`]);
  });

  it.each([
    ['objects without metadata.json', { [`${KEY}snapshot.db.enc`]: { size: 10 } }, 'INCOMPLETE_BACKUP'],
    ['nothing under the key', {}, 'NOT_FOUND'],
    [
      'metadata.json without its snapshot',
      { [`${KEY}metadata.json`]: { text: serializeMetadata(v2) } },
      'INCOMPLETE_BACKUP',
    ],
  ])('%s', async (_, objects, code) => {
    await expect(locate(bucket(objects).store, request, 'envelope')).rejects.toMatchObject({ code });
  });

  it('a missing plaintext .db is NOT_FOUND', async () => {
    const key = 'prod/prod-20260304T050607Z.db';
    await expect(locate(bucket({}).store, { key, cluster: 'prod' }, 'plaintext')).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: `s3://b/${key} does not exist`,
    });
  });
});
