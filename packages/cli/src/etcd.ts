// Reads a key prefix from etcd through its v3 JSON gateway (POST /v3/kv/range), page by page at
// one revision, over http or https with a client certificate. Values are handed to a callback
// page by page and never kept.
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { flagOrEnv, type FlagSpecs } from './args.ts';
import { usageError } from './errors.ts';

export const ETCD_FLAGS: FlagSpecs = {
  'etcd-endpoint': { type: 'string', value: 'url', help: "etcd client URL of the clusters' DataStore, http(s)://host:2379 (default: $ETCD_ENDPOINT); needed to prove no etcd row still uses an old key version" },
  'etcd-ca-file': { type: 'string', value: 'file', help: 'PEM CA of etcd (default: $ETCD_CA_FILE)' },
  'etcd-cert-file': { type: 'string', value: 'file', help: 'client certificate for etcd (default: $ETCD_CERT_FILE)' },
  'etcd-key-file': { type: 'string', value: 'file', help: 'client key for etcd (default: $ETCD_KEY_FILE)' },
};

export interface EtcdSettings {
  endpoint: string;
  ca?: string;
  cert?: string;
  key?: string;
}

export function etcdSettings(flags: Record<string, string | boolean>, env: Record<string, string | undefined>): EtcdSettings | null {
  const endpoint = flagOrEnv(flags, 'etcd-endpoint', env, ['ETCD_ENDPOINT']);
  const files = {
    ca: flagOrEnv(flags, 'etcd-ca-file', env, ['ETCD_CA_FILE']),
    cert: flagOrEnv(flags, 'etcd-cert-file', env, ['ETCD_CERT_FILE']),
    key: flagOrEnv(flags, 'etcd-key-file', env, ['ETCD_KEY_FILE']),
  };
  if (!endpoint) {
    if (files.ca || files.cert || files.key) throw usageError('--etcd-ca-file/--etcd-cert-file/--etcd-key-file need --etcd-endpoint https://host:2379');
    return null;
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw usageError(`--etcd-endpoint "${endpoint}" is not a URL: write http(s)://host:2379`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`--etcd-endpoint "${endpoint}" must be http:// or https://`);
  if (Boolean(files.cert) !== Boolean(files.key)) throw usageError('--etcd-cert-file and --etcd-key-file go together: pass both or neither');
  const read = (flag: string, path: string | undefined) => {
    if (!path) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw usageError(`cannot read --${flag} ${path}: ${(error as Error).message}`);
    }
  };
  const out: EtcdSettings = { endpoint: endpoint.replace(/\/+$/, '') };
  const ca = read('etcd-ca-file', files.ca);
  const cert = read('etcd-cert-file', files.cert);
  const key = read('etcd-key-file', files.key);
  if (ca) out.ca = ca;
  if (cert) out.cert = cert;
  if (key) out.key = key;
  return out;
}

/** The end of a prefix range: the prefix with its last byte incremented (carrying over 0xff). */
export function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // every key
}

interface RangeResponse {
  header?: { revision?: string };
  kvs?: { key: string; value?: string }[];
  more?: boolean;
}

function post(settings: EtcdSettings, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
  const url = new URL(settings.endpoint + path);
  const payload = JSON.stringify(body);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const tls = url.protocol === 'https:' ? { ...(settings.ca ? { ca: settings.ca } : {}), ...(settings.cert ? { cert: settings.cert } : {}), ...(settings.key ? { key: settings.key } : {}) } : {};
  return new Promise((resolve, reject) => {
    const req = send(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) return reject(new Error(`etcd ${path}: HTTP ${res.statusCode} ${text.slice(0, 300)}`));
        try {
          resolve(JSON.parse(text));
        } catch {
          reject(new Error(`etcd ${path}: answer is not JSON (is ${settings.endpoint} an etcd client URL?)`));
        }
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`etcd ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export interface RangeOptions {
  pageSize?: number;
  timeoutMs?: number;
}

/** Every key/value under `prefix`, at one revision, `pageSize` at a time. Returns the count. */
export async function scanPrefix(settings: EtcdSettings, prefix: string, onPage: (rows: { key: Buffer; value: Buffer }[]) => void, options: RangeOptions = {}): Promise<{ rows: number; revision: string | undefined }> {
  const pageSize = options.pageSize ?? 500;
  const end = prefixRangeEnd(Buffer.from(prefix));
  let start = Buffer.from(prefix);
  let revision: string | undefined;
  let rows = 0;
  for (;;) {
    const response = (await post(settings, '/v3/kv/range', {
      key: start.toString('base64'),
      range_end: end.toString('base64'),
      limit: pageSize,
      keys_only: false,
      ...(revision ? { revision } : {}),
    }, options.timeoutMs ?? 30_000)) as RangeResponse;
    revision ??= response.header?.revision;
    const page = (response.kvs ?? []).map((kv) => ({ key: Buffer.from(kv.key, 'base64'), value: Buffer.from(kv.value ?? '', 'base64') }));
    rows += page.length;
    onPage(page);
    if (!response.more || page.length === 0) return { rows, revision };
    // Next page starts right after the last key: the last key plus a zero byte.
    start = Buffer.concat([page.at(-1)!.key, Buffer.from([0])]);
  }
}
