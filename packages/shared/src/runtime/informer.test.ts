import { createServer } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { Informer, WATCH_TIMING, withoutManagedFields } from './informer.ts';
import type { KubeObject } from './kube.ts';
import { loopbackKubeClient } from './loopback.fixture.ts';

const managed = [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:data': { 'f:a': {} } } }];
const configMap = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'ns', resourceVersion: '5', labels: { a: 'b' }, managedFields: managed },
  data: { a: '1' },
});

/** Lists ConfigMap `listed` at resourceVersion 5, then answers the watch with `events` and stays open as a watch does. */
async function listAndWatchServer(events: object[]) {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    if (!req.url?.includes('watch=true')) {
      res.end(
        JSON.stringify({ kind: 'ConfigMapList', metadata: { resourceVersion: '5' }, items: [configMap('listed')] }),
      );
      return;
    }
    res.write(events.map((e) => `${JSON.stringify(e)}\n`).join(''));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

describe('withoutManagedFields', () => {
  it('drops metadata.managedFields and keeps the rest (the input is not changed)', () => {
    const input = configMap('x');
    expect(withoutManagedFields(input)).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'x', namespace: 'ns', resourceVersion: '5', labels: { a: 'b' } },
      data: { a: '1' },
    });
    expect(input.metadata?.managedFields).toEqual(managed);
  });
});

describe('Informer cache', () => {
  it('keeps listed and watched objects without managedFields, and indexes them', async () => {
    const server = await listAndWatchServer([
      {
        type: 'ADDED',
        object: { ...configMap('watched'), metadata: { ...configMap('watched').metadata, resourceVersion: '6' } },
      },
    ]);
    const informer = new Informer(loopbackKubeClient(server), {
      group: '',
      version: 'v1',
      plural: 'configmaps',
      namespace: 'ns',
    });
    const byValue = informer.index((o) => (o as { data?: { a?: string } }).data?.a);
    try {
      informer.start();
      await informer.waitForSync();
      await vi.waitFor(() => expect(informer.get('watched', 'ns')).toBeDefined(), { timeout: 5000 });
      // The index heard the list and the watch as the cache did.
      expect(
        byValue
          .get('1')
          .map((o) => o.metadata?.name)
          .sort(),
      ).toEqual(['listed', 'watched']);
      for (const name of ['listed', 'watched']) {
        const cached = informer.get(name, 'ns');
        expect(cached?.metadata).not.toHaveProperty('managedFields');
        expect(cached?.data).toEqual({ a: '1' });
      }
    } finally {
      await informer.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('Informer transform', () => {
  it('keeps what the transform returns of listed and watched objects; a bookmark passes it by', async () => {
    const watched = (rv: string, a: string) => ({
      ...configMap('watched'),
      metadata: { ...configMap('watched').metadata, resourceVersion: rv },
      data: { a },
    });
    const server = await listAndWatchServer([
      { type: 'ADDED', object: watched('6', '1') },
      { type: 'BOOKMARK', object: { kind: 'ConfigMap', metadata: { resourceVersion: '7' } } },
      { type: 'MODIFIED', object: watched('8', '2') },
    ]);
    const seen: string[] = [];
    const informer = new Informer(
      loopbackKubeClient(server),
      { group: '', version: 'v1', plural: 'configmaps', namespace: 'ns' },
      {
        transform: (o) => {
          seen.push(`${o.metadata?.name}@${o.metadata?.resourceVersion}`);
          const { name, namespace, resourceVersion } = o.metadata ?? {};
          return { metadata: { name, namespace, resourceVersion }, a: (o as { data?: { a?: string } }).data?.a };
        },
      },
    );
    try {
      informer.start();
      await informer.waitForSync();
      await vi.waitFor(() => expect(informer.get('watched', 'ns')?.metadata?.resourceVersion).toBe('8'), {
        timeout: 5000,
      });
      expect(informer.get('listed', 'ns')).toEqual({
        metadata: { name: 'listed', namespace: 'ns', resourceVersion: '5' },
        a: '1',
      });
      expect(informer.get('watched', 'ns')).toEqual({
        metadata: { name: 'watched', namespace: 'ns', resourceVersion: '8' },
        a: '2',
      });
      // The bookmark (no name) never reached the transform.
      expect(seen).toEqual(['listed@5', 'watched@6', 'watched@8']);
    } finally {
      await informer.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('Informer watch timing', () => {
  /** A server that lists nothing and answers each watch with headers, then silence. */
  const silentServer = async () => {
    const watches: URLSearchParams[] = [];
    const server = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const query = new URL(req.url ?? '/', 'http://x').searchParams;
      if (query.get('watch') !== 'true') {
        res.end(JSON.stringify({ kind: 'ConfigMapList', metadata: { resourceVersion: '5' }, items: [] }));
        return;
      }
      watches.push(query);
      res.flushHeaders();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      watches,
      informer: (watchTiming?: { minTimeoutSeconds: number; inactivityMs: number }) =>
        new Informer(
          loopbackKubeClient(server),
          { group: '', version: 'v1', plural: 'configmaps', namespace: 'ns' },
          { watchTiming },
        ),
      close: async () => {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      },
    };
  };

  it("asks the server to end each watch after 5-10 minutes and to send bookmarks (client-go's reflector)", async () => {
    const { watches, informer, close } = await silentServer();
    const quiet = informer();
    try {
      quiet.start();
      await vi.waitFor(() => expect(watches).toHaveLength(1), { timeout: 5000 });
      const timeout = Number(watches[0]!.get('timeoutSeconds'));
      expect(timeout).toBeGreaterThanOrEqual(WATCH_TIMING.minTimeoutSeconds);
      expect(timeout).toBeLessThan(2 * WATCH_TIMING.minTimeoutSeconds);
      expect(watches[0]!.get('allowWatchBookmarks')).toBe('true');
      expect(watches[0]!.get('resourceVersion')).toBe('5');
      expect(WATCH_TIMING.inactivityMs).toBeGreaterThan(120_000);
    } finally {
      await quiet.stop();
      await close();
    }
  });

  it('starts a watch again from its resourceVersion once it was silent for the inactivity time', async () => {
    const { watches, informer, close } = await silentServer();
    const quiet = informer({ minTimeoutSeconds: 300, inactivityMs: 400 });
    try {
      quiet.start();
      await vi.waitFor(() => expect(watches.length).toBeGreaterThanOrEqual(3), { timeout: 5000 });
      expect(watches.every((w) => w.get('resourceVersion') === '5')).toBe(true);
    } finally {
      await quiet.stop();
      await close();
    }
  });
});
