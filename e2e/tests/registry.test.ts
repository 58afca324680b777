import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBinaries } from '../src/binaries.ts';
import { CHART_DIR, helmRun, renderChart } from '../src/chart.ts';
import { shippedImages, type ShippedImages } from '../src/images.ts';
import { freePort } from '../src/ports.ts';
import { ManagedProcess } from '../src/process.ts';
import { waitFor } from '../src/wait.ts';
import { platform } from './helpers.ts';

const run = promisify(execFile);

// What docs/images.md and docs/runbook.md tell an operator to do with a registry: push the images
// with their digests unchanged, push the packaged chart as an OCI artifact, install from there.
// The registry is a real one (go-containerregistry's, in memory, plain HTTP on loopback).
describe('shipping through an OCI registry', () => {
  let registry: ManagedProcess;
  let host: string;
  let shipped: ShippedImages;
  const work = mkdtempSync(join(tmpdir(), 'kdc-registry-'));

  beforeAll(async () => {
    const [{ registry: binary }, images] = await Promise.all([ensureBinaries(['registry']), shippedImages()]);
    shipped = images;
    const port = await freePort();
    host = `127.0.0.1:${port}`;
    registry = ManagedProcess.start({
      name: 'registry',
      binary,
      args: ['-port', String(port)],
      logFile: join(platform().logDir, 'oci-registry.log'),
    });
    await waitFor(
      'the registry listening',
      () =>
        new Promise<boolean | undefined>((resolve) => {
          const socket = createConnection({ host: '127.0.0.1', port }, () => {
            socket.destroy();
            resolve(true);
          });
          socket.on('error', () => resolve(undefined));
        }),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  }, 600_000);

  afterAll(async () => {
    await registry?.stop();
  });

  it('skopeo copies an image with its digest unchanged, so the digest npm run images printed is the one to pin', async () => {
    const plugin = shipped.built['kms-plugin']!;
    await run('skopeo', [
      'copy',
      '--preserve-digests',
      '--dest-tls-verify=false',
      `oci:${plugin.layout}:${plugin.tag}`,
      `docker://${host}/kdc/kms-plugin:${plugin.tag}`,
    ]);
    const { stdout } = await run('skopeo', [
      'inspect',
      '--tls-verify=false',
      `docker://${host}/kdc/kms-plugin@${plugin.digest}`,
    ]);
    expect(JSON.parse(stdout)).toMatchObject({
      Digest: plugin.digest,
      Labels: { 'org.opencontainers.image.title': 'kms-plugin' },
    });
  }, 120_000);

  it('helm package and helm push make the chart an OCI artifact that installs as the directory does', async () => {
    const kubeconfig = platform().management.kubeconfig;
    await helmRun(kubeconfig, ['package', CHART_DIR, '-d', work]);
    const [packaged] = readdirSync(work).filter((f) => f.endsWith('.tgz'));
    expect(packaged).toBe('kdc-encryption-0.1.0.tgz');
    await helmRun(kubeconfig, ['push', join(work, packaged!), `oci://${host}/charts`, '--plain-http']);
    const chart = await helmRun(kubeconfig, [
      'show',
      'chart',
      `oci://${host}/charts/kdc-encryption`,
      '--version',
      '0.1.0',
      '--plain-http',
    ]);
    expect(chart).toMatch(/^name: kdc-encryption$/m);
    expect(chart).toMatch(/^kubeVersion: '?>=1\.29\.0-0'?$/m);
    // The pulled chart renders exactly what the directory renders (values.schema.json travels with it).
    const set = [
      '--set',
      'openBao.url=https://bao:8200',
      '--set',
      'openBao.tokenSecret.name=t',
      '--namespace',
      'kube-dc-system',
    ];
    const fromRegistry = await helmRun(kubeconfig, [
      'template',
      'kdc',
      `oci://${host}/charts/kdc-encryption`,
      '--version',
      '0.1.0',
      '--plain-http',
      ...set,
    ]);
    const fromDir = await renderChart({
      release: 'kdc',
      namespace: 'kube-dc-system',
      valuesFile: '/dev/null',
      set: { 'openBao.url': 'https://bao:8200', 'openBao.tokenSecret.name': 't' },
    });
    const objects = parseAllDocuments(fromRegistry)
      .map((d) => d.toJS() as { kind?: string } | null)
      .filter((o) => o?.kind);
    expect(objects).toEqual(fromDir);
    await expect(
      helmRun(kubeconfig, [
        'template',
        'kdc',
        `oci://${host}/charts/kdc-encryption`,
        '--version',
        '0.1.0',
        '--plain-http',
        '--set',
        'k8Manager.bogus=1',
      ]),
    ).rejects.toThrow(/additional properties 'bogus' not allowed/);
  }, 120_000);
});
