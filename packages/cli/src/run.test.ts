import { describe, expect, it } from 'vitest';
import { run } from './run.ts';

describe('kubectl-kdc', () => {
  it('prints usage', async () => {
    const result = await run([]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('kubectl kdc backups list|restore|rewrap');
    expect(result.stdout).toContain('kubectl kdc keys min-decryption <kmskey> --to N');
  });
  it('names an unknown command and how to find the right one', async () => {
    expect(await run(['rotate'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'unknown command "rotate": run "kubectl kdc help" for the list of commands\n',
    });
  });
  it('rewrap-etcd checks its flags before it touches anything', async () => {
    expect(await run(['rewrap-etcd', 'prod', '--timeout', '5m'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--timeout only applies with --wait'),
    });
    expect(await run(['rewrap-etcd'])).toMatchObject({ code: 2 });
  });
  it.each([
    [['backups'], 2, /needs a subcommand: list, rewrap, restore/],
    [['backups', 'purge', 'c'], 2, /unknown subcommand "backups purge"/],
    [['keys', 'rotate'], 2, /unknown subcommand "keys rotate": use one of min-decryption/],
    [['backups', 'list'], 2, /missing <cluster>/],
    [['status'], 2, /missing <cluster>/],
    [['backups', 'restore', 'c'], 2, /missing <key>/],
    [['backups', 'list', 'c', '--bogus'], 2, /unknown flag "--bogus"/],
    [['keys', 'min-decryption', 'k'], 2, /--to N is required/],
    [['keys', 'min-decryption', 'k', '--to', '0'], 2, /--to "0" is not a key version/],
    [['keys', 'min-decryption', 'k', '--to', 'three'], 2, /--to "three" is not a key version/],
    [['backups', 'restore', 'c', 'latest', '--timeout', '5x', '--wait'], 2, /--timeout "5x"/],
    [['backups', 'restore', 'c', 'latest', '--timeout', '5m'], 2, /--timeout only applies with --wait/],
  ])('%j -> exit %i', async (argv, code, message) => {
    const result = await run(argv, { env: {} });
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(message);
  });
  it('OpenBao settings are checked before anything is read', async () => {
    const result = await run(['backups', 'rewrap', 'c'], { env: {} });
    expect(result).toMatchObject({ code: 2, stderr: expect.stringMatching(/set OPENBAO_ADDR/) });
  });
  it('a missing kubeconfig is named', async () => {
    const result = await run(['backups', 'list', 'c', '--kubeconfig', '/does/not/exist'], { env: {} });
    expect(result).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/cannot use kubeconfig \/does\/not\/exist/),
    });
  });
  it('prints help per command', async () => {
    const result = await run(['backups', 'restore', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: kubectl kdc backups restore <cluster> <key> [flags]');
    expect(result.stdout).toContain('--wait');
  });
});
