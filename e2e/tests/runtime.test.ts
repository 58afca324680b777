import { afterAll, describe, expect, it } from 'vitest';
import {
  Controller,
  createLogger,
  createRegistry,
  EventRecorder,
  Informer,
  KDC_API_VERSION,
  type KubeObject,
  setCondition,
  splitKey,
  updateStatusIfChanged,
  at,
  RESOURCES,
} from '@kdc/shared';
import { waitFor } from '../src/wait.ts';
import { createNamespace, management } from './helpers.ts';

type Cluster = KubeObject & {
  spec: { version: string };
  status?: { phase?: string; observedGeneration?: number; conditions?: any[] };
};
const ref = (namespace?: string, name?: string) => ({ ...RESOURCES.kdcCluster, namespace, name });
const logger = createLogger('runtime-test', { level: 'silent' });

describe('controller runtime against the real apiserver', () => {
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  it('informer cache sees add, update and delete', async () => {
    const kube = management();
    const ns = await createNamespace(kube, 'inf');
    const informer = new Informer<Cluster>(kube, ref(ns), { logger });
    const events: string[] = [];
    informer.on((event, o) => events.push(`${event}:${o.metadata?.name}`));
    informer.start();
    stops.push(() => informer.stop());
    await informer.waitForSync();
    await kube.create(ref(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: 'a' },
      spec: { version: 'v1.35.0' },
    });
    await waitFor('add in cache', async () => informer.get('a', ns));
    await kube.patch(ref(ns, 'a'), { spec: { version: 'v1.35.1' } });
    await waitFor('update in cache', async () => informer.get('a', ns)?.spec.version === 'v1.35.1');
    await kube.delete(ref(ns, 'a'));
    await waitFor('delete from cache', async () => informer.get('a', ns) === undefined);
    expect(events).toEqual(['add:a', 'update:a', 'delete:a']);
  });

  it('reconciles through a work queue, patches status once, then writes nothing at steady state; records events', async () => {
    const kube = management();
    const ns = await createNamespace(kube, 'ctl');
    const informer = new Informer<Cluster>(kube, ref(ns), { logger });
    const recorder = new EventRecorder(kube, 'runtime-test', 'test-0');
    let reconciles = 0;
    let writes = 0;
    const controller = new Controller({
      name: 'test',
      logger,
      registry: createRegistry(false),
      reconcile: async (key) => {
        reconciles++;
        const { namespace, name } = splitKey(key);
        const object = informer.get(name, namespace);
        if (!object) return;
        const generation = object.metadata?.generation;
        const status = {
          ...object.status,
          phase: 'Observed',
          observedGeneration: generation,
          conditions: setCondition(
            object.status?.conditions,
            {
              type: 'Ready',
              status: 'True',
              reason: 'Observed',
              message: `saw ${object.spec.version}`,
              observedGeneration: generation,
            },
            new Date(),
          ),
        };
        if (await updateStatusIfChanged(kube, ref(namespace, name), object, status)) {
          writes++;
          await recorder.record(object, 'Normal', 'Observed', `saw ${object.spec.version}`);
        }
      },
    });
    controller.watchPrimary(informer);
    informer.start();
    await informer.waitForSync();
    controller.start();
    stops.push(async () => {
      await controller.stop();
      await informer.stop();
    });
    await kube.create(ref(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: 'b' },
      spec: { version: 'v1.35.0' },
    });
    const observed = await waitFor('status written', async () => {
      const live = await kube.get<Cluster>(ref(ns, 'b'));
      return live.status?.phase === 'Observed' ? live : undefined;
    });
    expect(observed.status?.conditions?.[0]).toMatchObject({
      type: 'Ready',
      status: 'True',
      reason: 'Observed',
      observedGeneration: 1,
    });

    // The status write itself produces a watch event: that reconcile must be a no-op.
    await waitFor('the status event to be reconciled', async () => reconciles >= 2 && controller.queue.inFlight === 0);
    const rv = (await kube.get<Cluster>(ref(ns, 'b'))).metadata?.resourceVersion;
    const writesBefore = writes;
    for (let i = 0; i < 5; i++) controller.enqueue(`${ns}/b`);
    await waitFor(
      'resync reconciles to drain',
      async () => controller.queue.length === 0 && controller.queue.inFlight === 0,
    );
    expect(writes).toBe(writesBefore);
    expect((await kube.get<Cluster>(ref(ns, 'b'))).metadata?.resourceVersion).toBe(rv);

    await kube.patch(ref(ns, 'b'), { spec: { version: 'v1.35.2' } });
    await waitFor(
      'generation 2 observed',
      async () => (await kube.get<Cluster>(ref(ns, 'b'))).status?.observedGeneration === 2,
    );
    // The event follows the status write it reports.
    const messages = async () => {
      const events = await kube.list<KubeObject & { message: string; involvedObject: { name: string } }>(
        at(RESOURCES.event, ns),
      );
      return events.items
        .filter((e) => e.involvedObject.name === 'b')
        .map((e) => e.message)
        .sort();
    };
    await waitFor('the second event', async () => (await messages()).length >= 2);
    expect(await messages()).toEqual(['saw v1.35.0', 'saw v1.35.2']);
  });

  it('backs off and retries a failing reconcile until it succeeds', async () => {
    let attempts = 0;
    const controller = new Controller({
      name: 'flaky',
      logger,
      registry: createRegistry(false),
      backoff: { baseDelayMs: 20, maxDelayMs: 200 },
      reconcile: async () => {
        attempts++;
        if (attempts < 4) throw new Error('transient');
      },
    });
    controller.start();
    stops.push(() => controller.stop());
    const started = Date.now();
    controller.enqueue('ns/x');
    await waitFor('fourth attempt', async () => attempts >= 4);
    // 20 + 40 + 80 ms of backoff at least
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(controller.queue.numRequeues('ns/x')).toBe(0);
  });
});
