// etcd's Maintenance.Snapshot response, decoded by hand: the one message the backup job reads
// (etcd/maintenance.proto holds its schema, field numbers as in etcd's rpc.proto). A protobuf
// runtime that parses .proto files costs the job about 12 MB of RSS for four fields (measured:
// @grpc/proto-loader and protobufjs loaded, 29 MB over grpc-js's 17), and the job's memory
// budget is 160 MB. The blob is a view of the received message, not a copy.
//
// etcd is a peer: anything the bytes say that is not SnapshotResponse's wire format fails with
// what was wrong and where, and nothing of the message is used.

export interface SnapshotResponse {
  /** ResponseHeader.revision of the first message: the snapshot's point in time. */
  revision?: number;
  /** Blob bytes etcd will still send after this message. */
  remainingBytes: number;
  blob: Buffer;
  /** etcd >= 3.6: the storage version of the server that made the snapshot. */
  version: string;
}

export class MalformedMessageError extends Error {
  override readonly name = 'MalformedMessageError';
  readonly kind = 'malformed-message';
}

// Protobuf wire types.
const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

class Reader {
  at = 0;
  private readonly bytes: Buffer;
  private readonly what: string;

  constructor(bytes: Buffer, what: string) {
    this.bytes = bytes;
    this.what = what;
  }

  get done(): boolean {
    return this.at >= this.bytes.length;
  }

  fail(problem: string): never {
    throw new MalformedMessageError(`malformed ${this.what} from etcd at byte ${this.at}: ${problem}`);
  }

  /** An unsigned varint that must fit a JavaScript number exactly (below 2^53). */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.at >= this.bytes.length) this.fail('a varint runs past the end');
      const byte = this.bytes[this.at++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(value)) this.fail('a number is larger than 2^53');
        return value;
      }
      scale *= 128;
    }
    return this.fail('a varint is longer than 10 bytes');
  }

  lengthDelimited(): Buffer {
    const length = this.varint();
    if (length > this.bytes.length - this.at) this.fail(`a field of ${length} bytes runs past the end`);
    const view = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return view;
  }

  skip(wireType: number): void {
    if (wireType === VARINT) this.varint();
    else if (wireType === LENGTH_DELIMITED) this.lengthDelimited();
    else if (wireType === FIXED64 || wireType === FIXED32) {
      const length = wireType === FIXED64 ? 8 : 4;
      if (length > this.bytes.length - this.at) this.fail('a fixed-size field runs past the end');
      this.at += length;
    } else this.fail(`wire type ${wireType} is not used by SnapshotResponse`);
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wireType: number } {
    const tag = this.varint();
    const field = Math.floor(tag / 8);
    if (field === 0) this.fail('field number 0');
    return { field, wireType: tag % 8 };
  }

  expect(wireType: number, expected: number, field: string): void {
    if (wireType !== expected) this.fail(`${field} has wire type ${wireType}, expected ${expected}`);
  }
}

function decodeRevision(bytes: Buffer): number | undefined {
  const reader = new Reader(bytes, 'ResponseHeader');
  let revision: number | undefined;
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    if (field === 3) {
      reader.expect(wireType, VARINT, 'revision');
      revision = reader.varint();
    } else reader.skip(wireType);
  }
  return revision;
}

/** Decodes one SnapshotResponse; throws MalformedMessageError on anything else. */
export function decodeSnapshotResponse(bytes: Buffer): SnapshotResponse {
  const reader = new Reader(bytes, 'SnapshotResponse');
  const message: SnapshotResponse = { remainingBytes: 0, blob: Buffer.alloc(0), version: '' };
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    switch (field) {
      case 1:
        reader.expect(wireType, LENGTH_DELIMITED, 'header');
        message.revision = decodeRevision(reader.lengthDelimited());
        break;
      case 2:
        reader.expect(wireType, VARINT, 'remaining_bytes');
        message.remainingBytes = reader.varint();
        break;
      case 3:
        reader.expect(wireType, LENGTH_DELIMITED, 'blob');
        message.blob = reader.lengthDelimited();
        break;
      case 4:
        reader.expect(wireType, LENGTH_DELIMITED, 'version');
        message.version = reader.lengthDelimited().toString('utf8');
        break;
      default:
        // Fields a newer etcd may add.
        reader.skip(wireType);
    }
  }
  return message;
}
