import { describe, expect, it } from 'vitest';
import { run } from './main.ts';

describe('kubectl-kdc', () => {
  it('prints usage', async () => {
    const result = await run([]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('kubectl kdc backups list|restore|rewrap');
  });
  it('names an unknown command and how to find the right one', async () => {
    expect(await run(['rotate'])).toEqual({ code: 2, stdout: '', stderr: 'unknown command "rotate": run "kubectl kdc help" for the list of commands\n' });
  });
  it('does not pretend unimplemented commands succeed', async () => {
    expect((await run(['status', 'prod'])).code).toBe(1);
  });
});
