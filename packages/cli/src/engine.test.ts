import { describe, expect, it } from 'vitest';
import { nodeTooOld } from './engine.ts';

describe('the Node check', () => {
  it.each(['v20.19.5', 'v22.12.0', 'v23.11.1'])('refuses %s, naming what to install', (version) => {
    expect(nodeTooOld(version)).toBe(
      `kubectl-kdc needs Node.js 24 or newer; this is Node.js ${version}. Install the single executable instead (npm run cli:build; it carries its own Node), or run it with Node 24.`,
    );
  });
  it.each(['v24.0.0', 'v24.21.0', 'v25.1.0'])('accepts %s', (version) => {
    expect(nodeTooOld(version)).toBeUndefined();
  });
});
