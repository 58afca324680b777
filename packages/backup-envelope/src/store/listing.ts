// Listings. A server that never stops paging (or pages in a loop) is refused after a bound,
// each page under its own deadline.
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { BackupError } from '../errors.ts';
import type { StoreContext } from './context.ts';

export interface ListedObject {
  key: string;
  size: number;
  etag: string | undefined;
  lastModified: Date | undefined;
}

/**
 * The pages of a ListObjectsV2 of `prefix`, at most maxListPages of them, each under its own
 * deadline; a server that repeats a continuation token or never stops is refused.
 */
async function listPages(
  store: StoreContext,
  prefix: string,
  delimiter: string | undefined,
  onPage: (page: {
    CommonPrefixes?: { Prefix?: string }[];
    Contents?: { Key?: string; Size?: number; ETag?: string; LastModified?: Date }[];
  }) => void,
): Promise<void> {
  const seen = new Set<string>();
  let token: string | undefined;
  for (let pages = 0; ; pages++) {
    if (pages === store.limits.maxListPages) {
      throw new BackupError(
        'LIMIT_EXCEEDED',
        `listing ${store.url(prefix)} returned more than ${store.limits.maxListPages} pages (${store.limits.maxListPages * 1000} keys) and still says there are more: refusing to read on`,
        { prefix, limit: store.limits.maxListPages },
      );
    }
    const { abortSignal } = store.deadline();
    let page;
    try {
      page = await store.client.send(
        new ListObjectsV2Command({
          Bucket: store.bucket,
          Prefix: prefix,
          ...(delimiter ? { Delimiter: delimiter } : {}),
          ContinuationToken: token,
        }),
        { abortSignal },
      );
    } catch (error) {
      throw store.failure('ListObjectsV2', prefix, error, abortSignal);
    }
    onPage(page);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
    if (!token) return;
    if (seen.has(token))
      throw new BackupError(
        'LIMIT_EXCEEDED',
        `listing ${store.url(prefix)} repeats a continuation token: the server loops, refusing to read on`,
        { prefix },
      );
    seen.add(token);
  }
}

/** Every object under `prefix` (paginated). */
export async function list(store: StoreContext, prefix: string): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  await listPages(store, prefix, undefined, (page) => {
    for (const o of page.Contents ?? [])
      out.push({ key: o.Key!, size: o.Size ?? 0, etag: o.ETag, lastModified: o.LastModified });
  });
  return out;
}

/** One level below `prefix`: sub-prefixes ("directories") and the objects directly in it. */
export async function listLevel(
  store: StoreContext,
  prefix: string,
): Promise<{ prefixes: string[]; objects: ListedObject[] }> {
  const prefixes: string[] = [];
  const objects: ListedObject[] = [];
  await listPages(store, prefix, '/', (page) => {
    for (const p of page.CommonPrefixes ?? []) if (p.Prefix) prefixes.push(p.Prefix);
    for (const o of page.Contents ?? [])
      objects.push({ key: o.Key!, size: o.Size ?? 0, etag: o.ETag, lastModified: o.LastModified });
  });
  return { prefixes, objects };
}

export async function anyUnder(store: StoreContext, prefix: string): Promise<boolean> {
  const { abortSignal } = store.deadline();
  try {
    const page = await store.client.send(
      new ListObjectsV2Command({ Bucket: store.bucket, Prefix: prefix, MaxKeys: 1 }),
      { abortSignal },
    );
    return (page.KeyCount ?? page.Contents?.length ?? 0) > 0;
  } catch (error) {
    throw store.failure('ListObjectsV2', prefix, error, abortSignal);
  }
}

/**
 * Unfinished multipart uploads whose key starts with `prefix`. MinIO only honours a prefix that
 * is a whole object key, so an empty answer is checked against the unfiltered listing.
 */
export async function multipartUploads(
  store: StoreContext,
  prefix: string,
): Promise<{ key: string; uploadId: string; initiated: Date | undefined }[]> {
  const listing = async (requested: string) => {
    const out: { key: string; uploadId: string; initiated: Date | undefined }[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (let pages = 0; ; pages++) {
      if (pages === store.limits.maxListPages)
        throw new BackupError(
          'LIMIT_EXCEEDED',
          `listing the multipart uploads of ${store.url(prefix)} returned more than ${store.limits.maxListPages} pages`,
          { prefix },
        );
      const page = await store.client.send(
        new ListMultipartUploadsCommand({
          Bucket: store.bucket,
          ...(requested ? { Prefix: requested } : {}),
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
        }),
        store.deadline(),
      );
      for (const u of page.Uploads ?? [])
        if (u.Key && u.UploadId && u.Key.startsWith(prefix))
          out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated });
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
    return out;
  };
  try {
    const found = await listing(prefix);
    return found.length || !prefix ? found : await listing('');
  } catch (error) {
    throw store.failure('ListMultipartUploads', prefix, error);
  }
}
