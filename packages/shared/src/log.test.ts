import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './log.ts';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, stream };
}

describe('createLogger', () => {
  it('censors token-, key- and payload-like fields at any of three levels', () => {
    const { lines, stream } = capture();
    const log = createLogger('test', {}, stream);
    log.info(
      {
        token: 's.abc',
        auth: { client_token: 'hvs.secret' },
        req: { headers: { 'x-vault-token': 'hvs.header' } },
        plaintext: 'cGxhaW4=',
        ciphertext: 'vault:v1:xyz',
        keyVersion: 3,
      },
      'login',
    );
    const out = lines.join('');
    for (const secret of ['s.abc', 'hvs.secret', 'hvs.header', 'cGxhaW4=', 'vault:v1:xyz'])
      expect(out).not.toContain(secret);
    expect(out).toContain('[REDACTED]');
    expect(JSON.parse(out)).toMatchObject({ name: 'test', msg: 'login', keyVersion: 3 });
  });
});
