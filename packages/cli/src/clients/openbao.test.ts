import { describe, expect, it } from 'vitest';
import { openBaoSettings } from './openbao.ts';

describe('openBaoSettings', () => {
  it.each([
    [{}, { OPENBAO_ADDR: 'https://bao:8200', OPENBAO_TOKEN: 't' }, { addr: 'https://bao:8200', token: 't' }],
    [{}, { VAULT_ADDR: 'http://v:8200', VAULT_TOKEN: 'v' }, { addr: 'http://v:8200', token: 'v' }],
    [
      { 'openbao-addr': 'https://flag' },
      { OPENBAO_ADDR: 'https://env', OPENBAO_TOKEN: 't', OPENBAO_NAMESPACE: 'org1' },
      { addr: 'https://flag', token: 't', namespace: 'org1' },
    ],
    [
      { 'openbao-namespace': 'org2' },
      { OPENBAO_ADDR: 'https://env', OPENBAO_TOKEN: 't', OPENBAO_NAMESPACE: 'org1' },
      { addr: 'https://env', token: 't', namespace: 'org2' },
    ],
  ])('%j %j', (flags, env, expected) => expect(openBaoSettings(flags, env)).toEqual(expected));

  it.each([
    [{}, {}, /no OpenBao address: set OPENBAO_ADDR/],
    [{}, { OPENBAO_ADDR: 'bao:8200', OPENBAO_TOKEN: 't' }, /not an http\(s\) URL/],
    [{}, { OPENBAO_ADDR: 'https://bao' }, /no OpenBao token: set OPENBAO_TOKEN/],
    [
      {},
      { OPENBAO_ADDR: 'https://bao', OPENBAO_TOKEN: 't', OPENBAO_CACERT: '/does/not/exist' },
      /cannot read --openbao-ca-file/,
    ],
  ])('refuses %j %j', (flags, env, message) => {
    expect(() => openBaoSettings(flags, env)).toThrow(message);
    try {
      openBaoSettings(flags, env);
    } catch (error) {
      expect((error as { code: number }).code).toBe(2);
      expect(String((error as Error).message)).not.toContain('OPENBAO_TOKEN=');
    }
  });
});
