import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { canListen, freePort, pickPort, portSlice } from './ports.ts';

describe('test ports', () => {
  it('gives every worker its own slice, all below the ephemeral range', () => {
    const slices = Array.from({ length: 9 }, (_, slot) => portSlice(slot, 32_768));
    for (const [i, s] of slices.entries()) {
      expect(s.first + s.size).toBeLessThanOrEqual(32_768);
      if (i > 0) expect(s.first).toBeGreaterThanOrEqual(slices[i - 1]!.first + slices[i - 1]!.size);
    }
    expect(() => portSlice(0, 10_500)).toThrow(/too low/);
  });

  it('hands out distinct ports that a server can then listen on', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    expect(new Set(ports).size).toBe(20);
    for (const port of ports) expect(port).toBeLessThan(32_768);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(ports[0], '127.0.0.1', resolve));
    server.close();
  });

  it('skips a port that something else holds or that was already handed out', async () => {
    const held = createServer();
    const heldPort = await freePort();
    await new Promise<void>((resolve) => held.listen(heldPort, '127.0.0.1', resolve));
    try {
      const handed = await freePort();
      const candidates = [heldPort, handed, heldPort];
      const other = await freePort();
      const picked = await pickPort(() => candidates.shift() ?? other, 5, new Set([handed]), canListen);
      expect(picked).toBe(other);
      expect(await pickPort(() => heldPort, 3, new Set(), canListen)).toBeUndefined();
    } finally {
      held.close();
    }
  });
});
