// The per-segment parameters of the v2 format (docs/backup-format.md), shared by the stream
// encryptor/decryptor and the crypto worker so there is one definition of the bytes.

/** Bytes of the random nonce prefix; the nonce is prefix(7) || index(4, BE) || last(1). */
export const NONCE_PREFIX_LENGTH = 7;

/** The nonce of segment `index`; the last-segment flag makes truncation and appending fail. */
export function segmentNonce(noncePrefix: Buffer, index: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  noncePrefix.copy(nonce, 0);
  nonce.writeUInt32BE(index, NONCE_PREFIX_LENGTH);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** The last segment's AAD: header || SHA-256(plaintext) || plaintext size (8, BE). */
export function finalAad(header: Buffer, sha256: Buffer, plaintextSize: number): Buffer {
  const size = Buffer.alloc(8);
  size.writeBigUInt64BE(BigInt(plaintextSize));
  return Buffer.concat([header, sha256, size]);
}
