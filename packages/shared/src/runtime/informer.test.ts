import { createServer } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { Informer, withoutManagedFields } from './informer.ts';
import type { KubeObject } from './kube.ts';
import { loopbackKubeClient } from './loopback.fixture.ts';

const managed = [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:data': { 'f:a': {} } } }];
const configMap = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'ns', resourceVersion: '5', labels: { a: 'b' }, managedFields: managed },
  data: { a: '1' },
});

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
    const server = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      if (!req.url?.includes('watch=true')) {
        res.end(
          JSON.stringify({ kind: 'ConfigMapList', metadata: { resourceVersion: '5' }, items: [configMap('listed')] }),
        );
        return;
      }
      // One event, then the stream stays open as a watch does.
      res.write(
        `${JSON.stringify({ type: 'ADDED', object: { ...configMap('watched'), metadata: { ...configMap('watched').metadata, resourceVersion: '6' } } })}\n`,
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
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
