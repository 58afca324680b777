import { runTool } from './exec.ts';
import { sandboxArgs } from './sandbox.ts';
import type { ImageConfig } from './layout.ts';

// Cold start: from exec to exit of `<program> --version`, which prints only once every module the
// program imports has loaded (the imports are static). Measured from the image (bundled, in the
// sandbox) and, side by side in the same run, from source as the tests run it.

export interface StartSample {
  medianMs: number;
  minMs: number;
  maxMs: number;
}

async function once(command: string, args: readonly string[], expect: RegExp): Promise<number> {
  const ran = await runTool(command, args);
  if (ran.code !== 0 || !expect.test(ran.out))
    throw new Error(`${[command, ...args].join(' ').slice(-200)} exited ${ran.code}: ${ran.out.slice(0, 300)}`);
  return ran.ms;
}

const summary = (xs: number[]): StartSample => {
  const s = [...xs].sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 10) / 10;
  return { medianMs: round(s[Math.floor(s.length / 2)]!), minMs: round(s[0]!), maxMs: round(s[s.length - 1]!) };
};

export async function coldStart(input: {
  program: string;
  rootfs: string;
  config: ImageConfig;
  /** How the tests run it from source: [node, --conditions=source, entry]. */
  source: string[];
  rounds?: number;
}): Promise<{ image: StartSample; source: StartSample; ratio: number }> {
  const expect = new RegExp(`^${input.program} \\S+\\n$`);
  const image: number[] = [];
  const source: number[] = [];
  // Alternate, so both see the same machine load.
  for (let i = 0; i < (input.rounds ?? 5); i++) {
    image.push(await once('bwrap', sandboxArgs(input.rootfs, input.config, { args: ['--version'] }), expect));
    source.push(await once(input.source[0]!, [...input.source.slice(1), '--version'], expect));
  }
  const a = summary(image);
  const b = summary(source);
  return { image: a, source: b, ratio: Math.round((a.medianMs / b.medianMs) * 1000) / 1000 };
}
