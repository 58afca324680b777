import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startOpenBao } from '../src/openbao.ts';
import { createCA } from '../src/pki.ts';
import { platform } from './helpers.ts';

describe('OpenBao persistence', () => {
  it('keeps Transit keys across a kill and restart, and unseals itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdc-bao-restart-'));
    const logDir = join(dir, 'logs');
    mkdirSync(logDir);
    const server = await startOpenBao({
      binary: platform().binaries.vault,
      dir,
      logDir,
      ca: createCA(join(dir, 'pki'), 'bao-test'),
    });
    try {
      const transit = server.client().transit();
      await transit.createKey('durable');
      await transit.rotate('durable');
      const ct = await transit.encrypt('durable', Buffer.from('survives'));
      const pid = server.process.pid;
      await server.process.kill();
      await expect(server.client().health()).rejects.toMatchObject({ kind: 'unavailable' });
      await server.restart();
      expect(server.process.pid).not.toBe(pid);
      expect((await server.client().health()).sealed).toBe(false);
      expect((await transit.readKey('durable'))?.latestVersion).toBe(2);
      expect((await transit.decrypt('durable', ct.ciphertext)).toString()).toBe('survives');
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
