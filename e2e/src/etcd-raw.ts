// Raw etcd reads through etcd's own JSON gateway (/v3/kv/range): the bytes as stored, which is
// the proof of encryption at rest. No client library sits between the test and the data.

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

/** The end of a prefix range: the prefix with its last byte incremented. */
function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix);
  bytes[bytes.length - 1]! += 1;
  return bytes.toString('latin1');
}

interface RangeResponse {
  kvs?: { key: string; value?: string; mod_revision?: string }[];
  count?: string;
}

async function range(endpoint: string, body: Record<string, unknown>): Promise<RangeResponse> {
  const response = await fetch(`${endpoint}/v3/kv/range`, { method: 'POST', body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`etcd range failed: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as RangeResponse;
}

export async function readRaw(endpoint: string, key: string): Promise<Buffer | null> {
  const result = await range(endpoint, { key: b64(key) });
  const kv = result.kvs?.[0];
  return kv ? Buffer.from(kv.value ?? '', 'base64') : null;
}

export async function listRaw(endpoint: string, prefix: string, limit = 0): Promise<{ key: string; value: Buffer }[]> {
  const result = await range(endpoint, {
    key: b64(prefix),
    range_end: Buffer.from(prefixEnd(prefix), 'latin1').toString('base64'),
    limit,
  });
  return (result.kvs ?? []).map((kv) => ({
    key: Buffer.from(kv.key, 'base64').toString('utf8'),
    value: Buffer.from(kv.value ?? '', 'base64'),
  }));
}
