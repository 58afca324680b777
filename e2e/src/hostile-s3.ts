// An S3 endpoint a tenant controls, on loopback: path-style requests, no authentication. It
// serves what a test puts in it, and the hostile answers of attacks 6 and 10: a body that never
// ends, listing pages that always say "more", headers and then silence, and object sizes that
// lie. It counts every request, so a test can prove that none reached it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { freePort } from './ports.ts';

export type HostileObject =
  | {
      kind: 'bytes';
      body: Buffer;
      /** The size HEAD and GET report when they lie. */
      reportedSize?: number;
      /** With reportedSize: ranges past the body are served as zeros instead of a hang-up. */
      fill?: boolean;
    }
  | { kind: 'endless' }
  | { kind: 'stall' };

export interface HostileS3 {
  url: string;
  /** Every request, in order: method and path with query. */
  readonly requests: { method: string; url: string }[];
  /** Bytes written to clients in bodies that never end. */
  readonly endlessBytes: number;
  put(key: string, object: HostileObject): void;
  /** Listings answer with this many common prefixes per page and IsTruncated=true forever. */
  endlessListing(prefixesPerPage: (cluster: string, page: number) => string[]): void;
  close(): Promise<void>;
}

/** A safety valve for old code that reads forever: each endless body stops after this much. */
const ENDLESS_CAP = 3 * 1024 ** 3;
const CHUNK = Buffer.alloc(64 * 1024, 'x'.charCodeAt(0));
const ZEROS = Buffer.alloc(64 * 1024);

/** Writes `bytes` zero bytes with backpressure, then ends the response. */
function writeZeros(res: ServerResponse, bytes: number): void {
  let left = bytes;
  const pump = () => {
    while (left > 0 && !res.destroyed) {
      const n = Math.min(left, ZEROS.length);
      left -= n;
      if (!res.write(n === ZEROS.length ? ZEROS : ZEROS.subarray(0, n))) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export async function startHostileS3(bucket: string): Promise<HostileS3> {
  const objects = new Map<string, HostileObject>();
  const requests: { method: string; url: string }[] = [];
  let listing: ((cluster: string, page: number) => string[]) | undefined;
  let endlessBytes = 0;
  const open = new Set<ServerResponse>();

  const endless = (res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"schemaVersion":2,"padding":"');
    let sent = 0;
    const pump = () => {
      while (sent < ENDLESS_CAP && !res.destroyed) {
        sent += CHUNK.length;
        endlessBytes += CHUNK.length;
        if (!res.write(CHUNK)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  };

  const listPage = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => {
    const prefix = query.get('prefix') ?? '';
    const page = Number(query.get('continuation-token')?.split('-')[0] ?? 0);
    const cluster = prefix.replace(/\/$/, '');
    const prefixes = listing ? listing(cluster, page) : [];
    const truncated = Boolean(listing);
    const body = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
      `<Name>${xml(bucket)}</Name><Prefix>${xml(prefix)}</Prefix><KeyCount>${prefixes.length}</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter>`,
      `<IsTruncated>${truncated}</IsTruncated>`,
      ...(truncated
        ? [`<NextContinuationToken>${page + 1}-${randomBytes(8).toString('hex')}</NextContinuationToken>`]
        : []),
      ...prefixes.map((p) => `<CommonPrefixes><Prefix>${xml(p)}</Prefix></CommonPrefixes>`),
      '</ListBucketResult>',
    ].join('');
    res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const notFound = (res: ServerResponse, key: string) => {
    const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>${xml(key)}</Key></Error>`;
    res.writeHead(404, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const serveObject = (req: IncomingMessage, res: ServerResponse, key: string) => {
    const object = objects.get(key);
    if (!object) return req.method === 'HEAD' ? void res.writeHead(404).end() : notFound(res, key);
    if (object.kind === 'stall') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 1024 });
      res.flushHeaders();
      return;
    }
    if (object.kind === 'endless') return req.method === 'HEAD' ? void res.writeHead(200).end() : endless(res);
    const size = object.reportedSize ?? object.body.length;
    const headers = {
      'content-type': 'application/octet-stream',
      'last-modified': new Date().toUTCString(),
      etag: '"hostile"',
    };
    if (req.method === 'HEAD') return void res.writeHead(200, { ...headers, 'content-length': size }).end();
    const range = /^bytes=(\d+)-(\d+)?$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = Math.min(range[2] === undefined ? size - 1 : Number(range[2]), size - 1);
      const slice = object.body.subarray(Math.min(start, object.body.length), Math.min(end + 1, object.body.length));
      // A lying size: announce the whole range, send what there is, then hang up.
      res.writeHead(206, {
        ...headers,
        'content-length': end - start + 1,
        'content-range': `bytes ${start}-${end}/${size}`,
      });
      res.write(slice);
      if (slice.length < end - start + 1)
        return object.fill ? writeZeros(res, end - start + 1 - slice.length) : void res.destroy();
      return void res.end();
    }
    if (size !== object.body.length) {
      res.writeHead(200, { ...headers, 'content-length': size });
      res.write(object.body);
      return void res.destroy();
    }
    res.writeHead(200, { ...headers, 'content-length': size });
    res.end(object.body);
  };

  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '' });
    open.add(res);
    res.on('close', () => open.delete(res));
    req.resume();
    const url = new URL(req.url ?? '/', 'http://hostile');
    const [, b, ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    if (b !== bucket) return notFound(res, key);
    if (!key && url.searchParams.has('list-type')) return listPage(req, res, url.searchParams);
    if (!key && url.searchParams.has('uploads')) {
      const body = `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${xml(bucket)}</Bucket><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>`;
      return void res
        .writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) })
        .end(body);
    }
    if (req.method === 'GET' || req.method === 'HEAD') return serveObject(req, res, key);
    res.writeHead(403).end();
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get endlessBytes() {
      return endlessBytes;
    },
    put: (key, object) => void objects.set(key, object),
    endlessListing: (fn) => {
      listing = fn;
    },
    close: async () => {
      for (const res of open) res.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
