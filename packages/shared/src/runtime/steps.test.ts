import { describe, expect, it } from 'vitest';
import { runPass, type StepDriver } from './steps.ts';

// A counter that must reach `target`; `add` folds its effect, `slow` needs a fresh observation,
// `scale` is seen only later.
type Step = { kind: 'add' } | { kind: 'slow' } | { kind: 'scale' } | { kind: 'done' };
const driver = (over: Partial<StepDriver<number, Step>> = {}, log: string[] = []): StepDriver<number, Step> => ({
  observe: async (previous) => {
    log.push(`observe ${previous ?? '-'}`);
    return previous === undefined ? 0 : previous + 10;
  },
  plan: (n) => (n >= 3 ? { kind: 'done' } : { kind: 'add' }),
  stops: (s) => s.kind === 'done',
  execute: async (s, n) => {
    log.push(`${s.kind} ${n}`);
    return s.kind === 'add' ? n + 1 : undefined;
  },
  maxSteps: 10,
  ...over,
});

describe('runPass', () => {
  it('observes once, folds each step, stops where the planner says', async () => {
    const log: string[] = [];
    const result = await runPass(driver({}, log));
    expect(result).toEqual({
      observed: 3,
      step: { kind: 'done' },
      executed: [{ kind: 'add' }, { kind: 'add' }, { kind: 'add' }],
      exhausted: false,
    });
    expect(log).toEqual(['observe -', 'add 0', 'add 1', 'add 2']);
  });

  it('observes again after a step that folds nothing', async () => {
    const log: string[] = [];
    const result = await runPass(driver({ plan: (n) => (n >= 3 ? { kind: 'done' } : { kind: 'slow' }) }, log));
    expect(result.observed).toBe(10);
    expect(log).toEqual(['observe -', 'slow 0', 'observe 0']);
  });

  it('ends the pass after a step whose effect is seen later', async () => {
    const log: string[] = [];
    const result = await runPass(driver({ plan: () => ({ kind: 'scale' }), endsPass: (s) => s.kind === 'scale' }, log));
    expect(result).toMatchObject({
      observed: 0,
      step: { kind: 'scale' },
      executed: [{ kind: 'scale' }],
      exhausted: false,
    });
    expect(log).toEqual(['observe -', 'scale 0']);
  });

  it('is bounded: the pass says work is left', async () => {
    const result = await runPass(driver({ maxSteps: 2 }));
    expect(result).toMatchObject({ observed: 2, step: { kind: 'add' }, exhausted: true });
  });

  it('starts from a given observation, and stops on a cancelled signal before the next step', async () => {
    const log: string[] = [];
    const controller = new AbortController();
    const pass = runPass(driver({ execute: async (_s, n) => (controller.abort(), n + 1) }, log), {
      observed: 1,
      signal: controller.signal,
    });
    await expect(pass).rejects.toThrow(/aborted/);
    expect(log).toEqual([]);
  });
});
