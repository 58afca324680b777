// One contract for every planner and its driver (OpenShift library-go's encryption controllers are
// the model): a pure planner names the next single step from what was observed; the driver
// observes, asks, executes that one step, folds in its effect (or observes again), and asks again
// until the planner says the pass ends, a step's effect can only be seen later, or the bound is
// reached. What the reconcile then writes to status, and when it comes back, is the caller's: the
// pass result says where it stopped.

export interface Step {
  kind: string;
}

export interface StepDriver<O, S extends Step> {
  /** Reads what the planner needs: at the start of the pass, and after a step that returned nothing. */
  observe(previous?: O): Promise<O>;
  /** The pure planner. */
  plan(observed: O): S;
  /** The step ends the pass: nothing to do now (done, wait, refused, idle). */
  stops(step: S): boolean;
  /** Carries out one step; returns the observation with its effect folded in, or undefined to observe again. */
  execute(step: S, observed: O, signal: AbortSignal): Promise<O | undefined>;
  /** The step's effect is seen only later (a watch event, a pod going away): the pass ends after it. */
  endsPass?(step: S): boolean;
  /** At most this many steps per pass (a reconcile stays bounded). */
  maxSteps: number;
}

export interface PassResult<O, S extends Step> {
  /** The last observation, with every executed step folded in. */
  observed: O;
  /** The step the pass stopped at: a stopping one, or the last executed when the pass ended otherwise. */
  step: S;
  executed: S[];
  /** The bound was reached with work left: reconcile again soon. */
  exhausted: boolean;
}

export async function runPass<O, S extends Step>(
  driver: StepDriver<O, S>,
  options: { signal?: AbortSignal; onStep?: (step: S) => void; observed?: O } = {},
): Promise<PassResult<O, S>> {
  const signal = options.signal ?? new AbortController().signal;
  let observed = options.observed ?? (await driver.observe());
  let step = driver.plan(observed);
  const executed: S[] = [];
  while (!driver.stops(step)) {
    if (executed.length >= driver.maxSteps) return { observed, step, executed, exhausted: true };
    signal.throwIfAborted();
    options.onStep?.(step);
    const folded = await driver.execute(step, observed, signal);
    executed.push(step);
    // Nothing to look at yet: the next pass observes.
    if (driver.endsPass?.(step)) return { observed: folded ?? observed, step, executed, exhausted: false };
    observed = folded ?? (await driver.observe(observed));
    step = driver.plan(observed);
  }
  return { observed, step, executed, exhausted: false };
}
