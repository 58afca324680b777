import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../metrics.ts';
import { Controller } from './controller.ts';
import type { Informer } from './informer.ts';
import type { KubeObject } from './kube.ts';

type Handler = (event: 'add' | 'update' | 'delete', object: KubeObject) => void;

function fakeInformer(objects: KubeObject[], handlers: Handler[] = []): Informer<KubeObject> {
  const informer = { list: () => objects, get: () => undefined, on: (h: Handler) => handlers.push(h) };
  return informer as unknown as Informer<KubeObject>;
}

describe('Controller', () => {
  it('stop() aborts the signal an in-flight reconcile holds, and waits for it to return', async () => {
    const informer = fakeInformer([{ metadata: { namespace: 'acme', name: 'prod' } }]);
    let seen: AbortSignal | undefined;
    let returned = false;
    const controller = new Controller({
      name: 'test',
      logger: pino({ level: 'silent' }),
      registry: createRegistry(false),
      reconcile: async (_key, signal) => {
        seen = signal;
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        returned = true;
      },
    }).watchPrimary(informer);
    controller.start();
    await expect.poll(() => seen).toBeDefined();
    expect(seen!.aborted).toBe(false);
    await controller.stop();
    expect([seen!.aborted, returned]).toEqual([true, true]);
  });

  it('a shard reconciles only the primaries it owns: at start, on events and at every resync', async () => {
    const object = (namespace: string) => ({ metadata: { namespace, name: 'k' } });
    const objects = [object('mine-1'), object('theirs-1')];
    const handlers: Handler[] = [];
    const seen: string[] = [];
    const controller = new Controller({
      name: 'shard',
      logger: pino({ level: 'silent' }),
      registry: createRegistry(false),
      resyncMs: 50,
      reconcile: async (key) => {
        seen.push(key);
      },
    }).watchPrimary(fakeInformer(objects, handlers), (o) => o.metadata!.namespace!.startsWith('mine'));
    controller.start();
    for (const h of handlers) {
      h('add', object('theirs-2'));
      h('add', object('mine-2'));
    }
    // Positive control: resyncs happened (mine-1 seen again after its first reconcile).
    await expect.poll(() => seen.filter((k) => k === 'mine-1/k').length).toBeGreaterThan(1);
    await controller.stop();
    expect(new Set(seen)).toEqual(new Set(['mine-1/k', 'mine-2/k']));
  });

  it("an event's reconcile goes before the backlog a resync sweep queued", async () => {
    const objects = Array.from({ length: 50 }, (_, i) => ({ metadata: { namespace: `t${i}`, name: 'k' } }));
    const handlers: Handler[] = [];
    const seen: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const controller = new Controller({
      name: 'priority',
      logger: pino({ level: 'silent' }),
      registry: createRegistry(false),
      workers: 1,
      reconcile: async (key) => {
        seen.push(key);
        await gate; // the first reconcile holds the only worker while the rest queue up
      },
    }).watchPrimary(fakeInformer(objects, handlers));
    controller.start(); // the initial list: 50 keys, low priority
    await expect.poll(() => seen.length).toBe(1);
    for (const h of handlers) h('add', { metadata: { namespace: 'new', name: 'tenant' } });
    release();
    await expect.poll(() => seen.length).toBe(51);
    await controller.stop();
    expect(seen[1]).toBe('new/tenant');
    // Positive control: the sweep's keys all ran, in their order.
    expect(seen.slice(2)).toEqual(objects.slice(1).map((o) => `${o.metadata.namespace}/k`));
  });
});
