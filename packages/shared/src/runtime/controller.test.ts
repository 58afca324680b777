import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../metrics.ts';
import { Controller } from './controller.ts';
import type { Informer } from './informer.ts';
import type { KubeObject } from './kube.ts';

function fakeInformer(objects: KubeObject[]): Informer<KubeObject> {
  const informer = { list: () => objects, get: () => undefined, on: () => undefined };
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
});
