// A minimal protobuf reader for the KMS v2 EncryptedObject the kube-apiserver stores after
// `k8s:enc:kms:v2:<provider>:` (k8s.io/apiserver/.../envelope/kmsv2/v2/api.proto):
//   1 encryptedData bytes, 2 keyID string, 3 encryptedDEKSource bytes,
//   4 annotations map<string, bytes>, 5 encryptedDEKSourceType enum.
// Only what the coverage scan and the pre-flight need leave this module: the keyID, sizes and
// annotation names, never the encrypted bytes themselves. Hand-written (no protobuf runtime) so
// that classifying a row costs no allocation beyond the keyID string.

export interface EncryptedObjectInfo {
  keyID: string;
  encryptedDataLength: number;
  encryptedDEKSourceLength: number;
  encryptedDEKSourceType: number;
  annotationKeys: string[];
}

export class ProtoError extends Error {
  override readonly name = 'ProtoError';
}

class Reader {
  private pos = 0;
  private readonly buf: Uint8Array;
  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new ProtoError('truncated varint');
      const byte = this.buf[this.pos++]!;
      // Values above 2^53 are not meaningful here (lengths, tags, enum); reject them.
      if (shift >= 53 && byte & 0x7f) throw new ProtoError('varint too large');
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
    }
    throw new ProtoError('varint longer than 10 bytes');
  }

  bytes(): Uint8Array {
    const length = this.varint();
    if (this.pos + length > this.buf.length) throw new ProtoError(`length ${length} runs past the end`);
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.advance(8);
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.advance(4);
    else throw new ProtoError(`unsupported wire type ${wireType}`);
  }

  private advance(n: number): void {
    if (this.pos + n > this.buf.length) throw new ProtoError('truncated fixed-size field');
    this.pos += n;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readString(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ProtoError('string field is not UTF-8');
  }
}

function readMapEntryKey(entry: Uint8Array): string {
  const r = new Reader(entry);
  let key = '';
  while (!r.done) {
    const tag = r.varint();
    if (tag >>> 3 === 1 && (tag & 7) === 2) key = readString(r.bytes());
    else r.skip(tag & 7);
  }
  return key;
}

export function decodeEncryptedObject(data: Uint8Array): EncryptedObjectInfo {
  const r = new Reader(data);
  const info: EncryptedObjectInfo = {
    keyID: '',
    encryptedDataLength: 0,
    encryptedDEKSourceLength: 0,
    encryptedDEKSourceType: 0,
    annotationKeys: [],
  };
  while (!r.done) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 0) throw new ProtoError('field number 0');
    if (field === 1 && wireType === 2) info.encryptedDataLength = r.bytes().length;
    else if (field === 2 && wireType === 2) info.keyID = readString(r.bytes());
    else if (field === 3 && wireType === 2) info.encryptedDEKSourceLength = r.bytes().length;
    else if (field === 4 && wireType === 2) info.annotationKeys.push(readMapEntryKey(r.bytes()));
    else if (field === 5 && wireType === 0) info.encryptedDEKSourceType = r.varint();
    else r.skip(wireType);
  }
  return info;
}

/** Encodes an EncryptedObject (for tests and test fixtures). */
export function encodeEncryptedObject(input: {
  encryptedData: Uint8Array;
  keyID: string;
  encryptedDEKSource: Uint8Array;
  annotations?: Record<string, Uint8Array>;
  encryptedDEKSourceType?: number;
}): Buffer {
  const varint = (n: number) => {
    const out: number[] = [];
    while (n > 127) {
      out.push((n % 128) | 0x80);
      n = Math.floor(n / 128);
    }
    out.push(n);
    return Buffer.from(out);
  };
  const field = (number: number, bytes: Uint8Array) =>
    Buffer.concat([varint(number * 8 + 2), varint(bytes.length), bytes]);
  const parts = [field(1, input.encryptedData), field(2, Buffer.from(input.keyID)), field(3, input.encryptedDEKSource)];
  for (const [k, v] of Object.entries(input.annotations ?? {}))
    parts.push(field(4, Buffer.concat([field(1, Buffer.from(k)), field(2, v)])));
  if (input.encryptedDEKSourceType) parts.push(Buffer.concat([varint(5 * 8), varint(input.encryptedDEKSourceType)]));
  return Buffer.concat(parts);
}
