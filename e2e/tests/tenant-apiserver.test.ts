import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KubeClient, at, RESOURCES } from '@kdc/shared';
import { listRaw, readRaw } from '../src/etcd-raw.ts';
import { startKubeApiserver, type KubeApiserver } from '../src/kube-apiserver.ts';
import { writeAesgcmEncryptionConfig } from '../src/kms.ts';
import { platform, unique } from './helpers.ts';

describe('a tenant kube-apiserver from the same code', () => {
  const started: KubeApiserver[] = [];
  afterAll(async () => {
    for (const s of started) await s.stop();
  });

  it('runs on its own etcd prefix with its own encryption config; the raw etcd bytes show it', async () => {
    const { dir, logDir, binaries, etcd } = platform();
    const name = unique('tenant');
    const tenantDir = join(dir, name);
    mkdirSync(tenantDir, { recursive: true });
    const configFile = join(tenantDir, 'encryption-config.yaml');
    writeAesgcmEncryptionConfig(configFile);
    const prefix = `/${name}`;
    const tenant = await startKubeApiserver({
      binary: binaries['kube-apiserver'],
      dir: tenantDir,
      logDir,
      etcdEndpoint: etcd.endpoint,
      etcdPrefix: prefix,
      name,
      extraArgs: [`--encryption-provider-config=${configFile}`],
    });
    started.push(tenant);
    const kube = KubeClient.fromFile(tenant.kubeconfig);
    await kube.create(at(RESOURCES.secret, 'default'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db' },
      stringData: { password: 'tenant-plaintext-marker' },
    });
    await kube.create(at(RESOURCES.configMap, 'default'), {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'cm' },
      data: { note: 'configmaps-stay-plain' },
    });

    const secret = await readRaw(etcd.endpoint, `${prefix}/secrets/default/db`);
    expect(secret).not.toBeNull();
    expect(secret!.toString('latin1').startsWith('k8s:enc:aesgcm:v1:key1:')).toBe(true);
    expect(secret!.includes(Buffer.from('tenant-plaintext-marker'))).toBe(false);
    const configMap = await readRaw(etcd.endpoint, `${prefix}/configmaps/default/cm`);
    expect(configMap!.includes(Buffer.from('configmaps-stay-plain'))).toBe(true);

    const read = await kube.get<{ data: Record<string, string> } & Record<string, unknown>>(
      at(RESOURCES.secret, 'default', 'db'),
    );
    expect(Buffer.from(read.data.password!, 'base64').toString()).toBe('tenant-plaintext-marker');

    // The management cluster lives under /registry and never sees the tenant's keys.
    const management = KubeClient.fromFile(platform().management.kubeconfig);
    expect(await management.getOrNull(at(RESOURCES.secret, 'default', 'db'))).toBeNull();
    expect((await listRaw(etcd.endpoint, `${prefix}/secrets/`)).map((kv) => kv.key)).toEqual([
      `${prefix}/secrets/default/db`,
    ]);
  });
});
