// Step one of a restore: from the backup key to the metadata and the snapshot object. Every
// refusal that metadata.json alone can justify happens here, before any download or Transit call.
import { BackupError } from '../errors.ts';
import { ENVELOPE_OBJECTS, parseBackupKey, type BackupKind } from '../layout.ts';
import { parseMetadata, type BackupMetadata } from '../metadata.ts';
import type { ObjectStream } from '../store/objects.ts';
import type { BackupStore } from '../store/store.ts';

/** What the caller asked to restore, and what it must be a backup of. */
export interface RestoreRequest {
  /** `<cluster>/<cluster>-<timestamp>/` (envelope) or `...<timestamp>.db` (plaintext). */
  key: string;
  /** The cluster being restored; the backup must be one of its own. */
  cluster: string;
  /** The cluster's project namespace: a backup recorded for another namespace is refused. */
  namespace?: string;
  /** When given, the backup's transitKey must be this one. */
  expectedTransitKey?: string;
  /**
   * Restore a plaintext `.db` file. Nothing authenticates one (anyone who can write to the
   * bucket can put it there), so it is refused unless a person named it and confirmed.
   */
  allowUnauthenticated?: boolean;
}

export interface Located {
  key: string;
  /** Absent for a plaintext `.db` (schemaVersion 0). */
  metadata: BackupMetadata | undefined;
  snapshotKey: string;
  /** The object's size as the bucket reports it (HEAD or GET). */
  storedSize: number | undefined;
  /** Ranged GETs (see readsRanged), or the one stream already opened. */
  read: { ranged: true } | { ranged: false; object: ObjectStream };
}

export type LocateStore = Pick<BackupStore, 'url' | 'getText' | 'anyUnder' | 'head' | 'getStream'>;

/** The refusal of a plaintext file nobody confirmed. */
export function unauthenticated(url: string): BackupError {
  return new BackupError(
    'UNAUTHENTICATED_BACKUP',
    `${url} is a plaintext snapshot: nothing authenticates it, anyone who can write to the bucket could have put it there. Restore it only when you know where it came from, and say so (kdc-backup restore --allow-unauthenticated; docs/runbook.md)`,
    { key: url },
  );
}

/** The key's own refusals, which need no I/O: it names a backup of this cluster, and a plaintext one was confirmed. */
export function checkBackupKey(store: Pick<BackupStore, 'url'>, request: RestoreRequest): BackupKind {
  const parsed = parseBackupKey(request.key);
  if (!parsed)
    throw new BackupError(
      'NOT_FOUND',
      `"${request.key}" is not a backup key: expected <cluster>/<cluster>-<YYYYMMDDTHHMMSSZ>/ or .../<cluster>-<YYYYMMDDTHHMMSSZ>.db`,
    );
  if (parsed.cluster !== request.cluster) {
    throw new BackupError(
      'WRONG_CLUSTER',
      `${request.key} is a backup of cluster "${parsed.cluster}", not of "${request.cluster}": refusing a cross-cluster restore`,
      { recorded: parsed.cluster, cluster: request.cluster },
    );
  }
  if (parsed.kind === 'plaintext' && !request.allowUnauthenticated) throw unauthenticated(store.url(request.key));
  return parsed.kind;
}

/**
 * Checks metadata.json against the restore request (before any download or Transit call). For
 * schemaVersion 2 the source is bound into the key derivation, so the key check that follows
 * proves it; a version-1 source is only compared when recorded.
 */
export function checkRestoreTarget(
  metadata: BackupMetadata,
  key: string,
  cluster: string,
  expectedTransitKey?: string,
  expectedNamespace?: string,
): void {
  const recorded = metadata.schemaVersion === 2 ? metadata.source.cluster : metadata.source?.cluster;
  if (recorded !== undefined && recorded !== cluster) {
    throw new BackupError(
      'WRONG_CLUSTER',
      `${key} is a backup of cluster "${recorded}" (metadata.json source.cluster), not of "${cluster}": refusing a cross-cluster restore`,
      { recorded, cluster },
    );
  }
  const namespace = metadata.schemaVersion === 2 ? metadata.source.namespace : metadata.source?.namespace;
  if (expectedNamespace !== undefined && namespace !== undefined && namespace !== expectedNamespace) {
    throw new BackupError(
      'WRONG_CLUSTER',
      `${key} is a backup of cluster "${cluster}" in namespace "${namespace}" (metadata.json source.namespace), not in "${expectedNamespace}": a same-named cluster of another project; refusing it`,
      { recorded: namespace, namespace: expectedNamespace },
    );
  }
  if (expectedTransitKey !== undefined && metadata.transitKey !== expectedTransitKey) {
    throw new BackupError(
      'WRONG_KEY',
      `${key} is wrapped with Transit key "${metadata.transitKey}", but this cluster's backup key is "${expectedTransitKey}": refusing it`,
      { recorded: metadata.transitKey, expected: expectedTransitKey },
    );
  }
}

/**
 * A version-2 object of exactly the size metadata.json names takes the parallel ranged path;
 * anything else (older formats, a size that already says truncated or appended) one stream, whose
 * reader names the problem.
 */
export function readsRanged(metadata: BackupMetadata | undefined, storedSize: number | undefined): boolean {
  return metadata?.schemaVersion === 2 && storedSize === metadata.ciphertextSize;
}

export function snapshotMissing(
  store: Pick<BackupStore, 'url'>,
  snapshotKey: string,
  hasMetadata: boolean,
): BackupError {
  return new BackupError(
    hasMetadata ? 'INCOMPLETE_BACKUP' : 'NOT_FOUND',
    `${store.url(snapshotKey)} does not exist${hasMetadata ? ': metadata.json without its snapshot cannot be restored' : ''}`,
    { key: snapshotKey },
  );
}

/** metadata.json (for an envelope), checked against the request, then the snapshot object. */
export async function locate(store: LocateStore, request: RestoreRequest, kind: BackupKind): Promise<Located> {
  const { key } = request;
  let metadata: BackupMetadata | undefined;
  let snapshotKey: string;
  if (kind === 'envelope') {
    const text = await store.getText(key + ENVELOPE_OBJECTS.metadata);
    if (!text) {
      if (await store.anyUnder(key))
        throw new BackupError(
          'INCOMPLETE_BACKUP',
          `${store.url(key)} has no metadata.json: the backup never completed; it cannot be restored`,
          { key },
        );
      throw new BackupError('NOT_FOUND', `${store.url(key)} does not exist`, { key });
    }
    metadata = parseMetadata(text.text, key);
    checkRestoreTarget(metadata, key, request.cluster, request.expectedTransitKey, request.namespace);
    snapshotKey = key + ENVELOPE_OBJECTS.snapshot;
  } else {
    snapshotKey = key;
  }

  // A HEAD first only where the size decides the path; the stream is opened only when it is used.
  let storedSize: number | undefined;
  if (metadata?.schemaVersion === 2) {
    const stored = await store.head(snapshotKey);
    if (!stored) throw snapshotMissing(store, snapshotKey, true);
    storedSize = stored.size;
    if (readsRanged(metadata, storedSize)) return { key, metadata, snapshotKey, storedSize, read: { ranged: true } };
  }
  const object = await store.getStream(snapshotKey);
  if (!object) throw snapshotMissing(store, snapshotKey, metadata !== undefined);
  return { key, metadata, snapshotKey, storedSize: object.size, read: { ranged: false, object } };
}
