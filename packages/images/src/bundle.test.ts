import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle } from './bundle.ts';

const run = promisify(execFile);

describe('bundle', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bundle-'));
    await mkdir(join(dir, 'src/proto'), { recursive: true });
    await writeFile(join(dir, 'src/proto/x.proto'), 'syntax = "proto3";\n');
    // Reads a file beside itself, uses a CommonJS built-in through require, and prints the defined version.
    await writeFile(
      join(dir, 'src/main.ts'),
      [
        "import { readFileSync } from 'node:fs';",
        "import { fileURLToPath } from 'node:url';",
        'declare const __KDC_VERSION__: string;',
        "const proto = readFileSync(fileURLToPath(new URL('./proto/x.proto', import.meta.url)), 'utf8');",
        "const os = (globalThis as unknown as { require: (m: string) => { platform(): string } }).require('node:os');",
        'process.stdout.write(`${__KDC_VERSION__} ${proto.trim()} ${os.platform()}\\n`);',
      ].join('\n'),
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('refuses a bundle that reads a file beside itself which the spec does not copy, naming the fix', async () => {
    await expect(
      bundle({ name: 't', entry: join(dir, 'src/main.ts') }, join(dir, 'out-missing'), { version: '1.2.3' }),
    ).rejects.toThrow(/reads \.\/proto\/x\.proto beside itself.*add it to files or workers in catalogue\.ts/);
  });

  it('bundles to one ES module that runs with the files it needs beside it', async () => {
    const out = join(dir, 'out');
    const result = await bundle(
      { name: 't', entry: join(dir, 'src/main.ts'), files: { 'proto/x.proto': join(dir, 'src/proto/x.proto') } },
      out,
      { version: '1.2.3' },
    );
    expect(result.files).toEqual(expect.arrayContaining(['main.js', 'package.json', 'proto/x.proto']));
    const { stdout } = await run(process.execPath, [join(out, 'main.js')], { cwd: tmpdir() });
    expect(stdout).toBe('1.2.3 syntax = "proto3"; linux\n');
  });
});
