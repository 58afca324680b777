import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { filesUnder, scanFile, scanLine } from './secret-scan.ts';

describe('secret scan', () => {
  it.each([
    ['{"msg":"login","token":"hvs.CAESIJ7mL1Aq4Yb2Jk3Xx9zQ0wUvTtS"}', 'OpenBao/Vault token'],
    ['wrapped vault:v3:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123', 'Transit ciphertext (a wrapped key)'],
    [
      'Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ',
      'ServiceAccount token (JWT)',
    ],
    ['-----BEGIN EC PRIVATE KEY-----', 'private key'],
  ])('finds %s', (line, kind) => expect(scanLine(line, [])).toEqual([kind]));
  it('finds a literal, and nothing in ordinary log lines', () => {
    expect(
      scanLine('stored db-password=correct horse battery staple', [
        { kind: 'a test plaintext', value: 'correct horse battery staple' },
      ]),
    ).toEqual(['a test plaintext']);
    for (const line of [
      '{"level":30,"msg":"OpenBao login ok","role":"tcp-ns.web"}',
      'key_id kdc1.v3.Zm9vYmFyYmF6',
      'transit/keys/acme.prod-etcd',
      'vault:v1: (ciphertext elided)',
    ]) {
      expect(scanLine(line, []), line).toEqual([]);
    }
  });
  it('scans every file under a directory and names file, line and kind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scan-'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'a.log'), 'fine\nfine\n');
    writeFileSync(join(dir, 'sub', 'b.log'), 'fine\nleaked hvs.AAAAAAAAAAAAAAAAAAAAAAAAAAAA\n');
    const files = filesUnder(dir).sort();
    expect(files).toEqual([join(dir, 'a.log'), join(dir, 'sub', 'b.log')]);
    const findings = (await Promise.all(files.map((f) => scanFile(f, [])))).flat();
    expect(findings).toEqual([{ file: join(dir, 'sub', 'b.log'), line: 2, kind: 'OpenBao/Vault token' }]);
  });
});
