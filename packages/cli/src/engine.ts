// The CLI runs on Node 24 (what the project is built and tested on). An older Node fails with
// syntax or API errors that say nothing about the cause; this says it first.
export const MIN_NODE_MAJOR = 24;

export function nodeTooOld(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (major >= MIN_NODE_MAJOR) return undefined;
  return `kubectl-kdc needs Node.js ${MIN_NODE_MAJOR} or newer; this is Node.js ${version}. Install the single executable instead (npm run cli:build; it carries its own Node), or run it with Node ${MIN_NODE_MAJOR}.`;
}
