import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImages, projectVersion, runTool, sandboxArgs, type BuiltImage } from '@kdc/images';
import { kmsPluginPolicyRules } from '@kdc/encryption-reconciler';
import { KMS_PROVIDER_NAME, clusterNames, renderPolicy, transitKeyName, at, RESOURCES } from '@kdc/shared';
import { shippedImages, type ShippedImages } from '../src/images.ts';
import { startLifecycleTenant, type LifecycleTenant } from '../src/lifecycle-tenant.ts';
import { rawRows, tenantPrefix } from '../src/tenant-rows.ts';
import { kmsClient } from '../src/kms.ts';
import { ManagedProcess } from '../src/process.ts';
import { freePort } from '../src/ports.ts';
import { waitFor } from '../src/wait.ts';
import { createNamespace, management, openBaoRoot, platform, shardControllers, unique } from './helpers.ts';

// Issue 13: the images we ship, built here from real parts (our Node 24 base from the npm node
// binary and Debian's glibc, then one bundled program each), run from their own unpacked root
// filesystems: the root read-only, as the image's user, with only the image's env. The kms-plugin
// image serves a real kube-apiserver's calls against the real OpenBao from there.

const run = async (args: string[]) => {
  const { code, out } = await runTool('bwrap', args);
  return { code, out };
};

describe('the shipped images', () => {
  let shipped: ShippedImages;
  let images: BuiltImage[];
  let base: BuiltImage;
  let version: string;
  const rootfs = new Map<string, string>();

  beforeAll(async () => {
    version = await projectVersion();
    shipped = await shippedImages((line) => process.stderr.write(`[images] ${line}\n`));
    ({ base } = shipped);
    images = Object.values(shipped.built);
    for (const image of images) rootfs.set(image.name, shipped.table[image.ref]!.rootfs);
  }, 1_800_000);

  it('are four programs on our base: non-root 65532, the program as entrypoint, no shell, no node_modules', () => {
    expect(images.map((i) => i.name)).toEqual(['k8-manager', 'encryption-reconciler', 'kms-plugin', 'kdc-backup']);
    for (const image of images) {
      expect(image.ref).toBe(`kdc.local/${image.name}:${version}`);
      expect(image.config).toMatchObject({
        User: '65532:65532',
        Entrypoint: ['/nodejs/bin/node', '/app/main.js'],
        WorkingDir: '/app',
      });
      expect(image.config.Labels?.['org.opencontainers.image.version']).toBe(version);
      const root = rootfs.get(image.name)!;
      for (const shell of ['bin/sh', 'usr/bin/sh', 'bin/busybox', 'usr/bin/apt'])
        expect(existsSync(join(root, shell)), `${image.name}: /${shell}`).toBe(false);
      expect(readdirSync(join(root, 'app'))).not.toContain('node_modules');
      expect(statSync(join(root, 'app/main.js')).uid).toBe(0);
      // The program adds a few MB on the shared base layer (kdc-backup also etcd's static etcdutl, ~7 MB).
      expect(image.compressedBytes - base.compressedBytes).toBeGreaterThan(0);
      expect(image.compressedBytes - base.compressedBytes).toBeLessThan(image.name === 'kdc-backup' ? 16e6 : 8e6);
    }
  });

  it('each runs from its root filesystem, read-only, as 65532 with the image env only, and names its release', async () => {
    for (const image of images) {
      const root = rootfs.get(image.name)!;
      const { code, out } = await run(sandboxArgs(root, image.config, { args: ['--version'] }));
      expect({ code, out }).toEqual({ code: 0, out: `${image.name} ${version}\n` });
      // The positive control for "read-only, as 65532": the same sandbox shows both.
      const probe = await run(
        sandboxArgs(
          root,
          { ...image.config, Entrypoint: ['/nodejs/bin/node', '-e'] },
          {
            args: [
              "const fs = require('fs'); let w = 'writable'; try { fs.writeFileSync('/app/x', '') } catch (e) { w = e.code } console.log(process.getuid(), w, Object.keys(process.env).sort().join(','))",
            ],
          },
        ),
      );
      // The image's env, and PWD (bwrap sets it with the working dir); kdc-backup names its etcdutl.
      expect(probe).toEqual({
        code: 0,
        out: `65532 EROFS ${image.name === 'kdc-backup' ? 'ETCDUTL,' : ''}NODE_ENV,PATH,PWD\n`,
      });
    }
  });

  it('builds the same digest again from the same inputs (reproducible)', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'images-again-'));
    try {
      const again = await buildImages({ cacheDir, only: ['kdc-backup'] });
      expect(again.images[0]!.built).toBe(true);
      expect({ base: again.base.digest, backup: again.images[0]!.digest }).toEqual({
        base: base.digest,
        backup: images.find((i) => i.name === 'kdc-backup')!.digest,
      });
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  }, 900_000);

  it('kdc-backup restores with the etcdutl it ships and swaps the data dir with its own data-dir steps (no shell image)', async () => {
    const image = images.find((i) => i.name === 'kdc-backup')!;
    const root = rootfs.get('kdc-backup')!;
    const work = mkdtempSync(join(tmpdir(), 'kdc-backup-image-'));
    try {
      const { code } = await runTool(platform().binaries.etcdctl, [
        '--endpoints',
        platform().etcd.endpoint,
        'snapshot',
        'save',
        join(work, 'snap.db'),
      ]);
      expect(code).toBe(0);
      mkdirSync(join(work, 'etcd/data'), { recursive: true });
      writeFileSync(join(work, 'etcd/data/live'), 'the data dir before the restore');
      // The sandbox maps its user 65532 to the caller: the work dir is the job's own, as etcd's volume is the job's user's.
      const inImage = (args: string[], entrypoint = image.config.Entrypoint) =>
        run(
          sandboxArgs(
            root,
            { ...image.config, Entrypoint: entrypoint },
            { args, binds: [{ host: work, path: '/tmp/work' }] },
          ),
        );
      const restored = await inImage(
        ['snapshot', 'restore', '/tmp/work/snap.db', '--data-dir', '/tmp/work/etcd/data.restoring'],
        ['/usr/local/bin/etcdutl'],
      );
      expect(restored.code, restored.out).toBe(0);
      expect(existsSync(join(work, 'etcd/data.restoring/member/snap/db'))).toBe(true);
      const swapped = await inImage([
        'data-dir',
        'swap',
        '--restoring=/tmp/work/etcd/data.restoring',
        '--data-dir=/tmp/work/etcd/data',
        '--previous=/tmp/work/etcd/data.pre-restore',
      ]);
      expect(swapped).toEqual({
        code: 0,
        out: 'kdc-backup data-dir swap: /tmp/work/etcd/data.restoring is now /tmp/work/etcd/data; the data dir before the restore is /tmp/work/etcd/data.pre-restore\n',
      });
      expect(existsSync(join(work, 'etcd/data/member/snap/db'))).toBe(true);
      expect(readFileSync(join(work, 'etcd/data.pre-restore/live'), 'utf8')).toBe('the data dir before the restore');
      // Again: nothing restored now, so the live dir stays and the step fails saying so.
      const again = await inImage([
        'data-dir',
        'swap',
        '--restoring=/tmp/work/etcd/data.restoring',
        '--data-dir=/tmp/work/etcd/data',
        '--previous=/tmp/work/etcd/data.pre-restore',
      ]);
      expect(again.code).toBe(1);
      expect(again.out).toMatch(/nothing restored at .* is untouched/);
      expect(existsSync(join(work, 'etcd/data/member/snap/db'))).toBe(true);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  describe('kms-plugin from its image', () => {
    const ns = unique('img');
    const key = transitKeyName(ns, 'etcd');
    const policy = unique('kms-img');
    let dir: string;
    let plugin: ManagedProcess | undefined;
    afterAll(async () => {
      await plugin?.stop();
      await openBaoRoot()
        .deletePolicy(policy)
        .catch(() => undefined);
    });

    it('serves Status, Encrypt and Decrypt on its socket against OpenBao, with a token of the least-privilege policy', async () => {
      dir = join(platform().dir, ns);
      mkdirSync(join(dir, 'sock'), { recursive: true });
      const root = openBaoRoot();
      await root.transit().createKey(key);
      await root.writePolicy(policy, renderPolicy(kmsPluginPolicyRules(key)));
      const token = await root.createToken({ policies: [policy], ttl: '1h', no_default_policy: true });
      writeFileSync(join(dir, 'token'), token.clientToken, { mode: 0o600 });
      writeFileSync(join(dir, 'ca.pem'), platform().openbao.caPem);
      const metrics = await freePort();
      const image = images.find((i) => i.name === 'kms-plugin')!;
      plugin = ManagedProcess.start({
        name: `${ns}-kms-plugin-image`,
        binary: 'bwrap',
        logFile: join(platform().logDir, `${ns}-kms-plugin-image.log`),
        args: sandboxArgs(rootfs.get('kms-plugin')!, image.config, {
          binds: [
            { host: join(dir, 'sock'), path: '/tmp/kmsplugin' },
            { host: join(dir, 'token'), path: '/tmp/secrets/token', readOnly: true },
            { host: join(dir, 'ca.pem'), path: '/tmp/ca.pem', readOnly: true },
          ],
          args: [
            `--openbao-addr=${platform().openbao.url}`,
            '--openbao-ca-file=/tmp/ca.pem',
            `--transit-key=${key}`,
            '--auth-method=token',
            '--token-file=/tmp/secrets/token',
            '--socket=/tmp/kmsplugin/kms.sock',
            `--metrics-addr=127.0.0.1:${metrics}`,
          ],
        }),
      });
      await waitFor(
        'the plugin from its image to be ready',
        async () => {
          if (!plugin!.running) throw new Error(`exited:\n${plugin!.tail()}`);
          return (await fetch(`http://127.0.0.1:${metrics}/readyz`).catch(() => null))?.status === 200 || undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      const client = kmsClient(join(dir, 'sock/kms.sock'));
      try {
        const status = await client.status();
        expect(status).toMatchObject({ version: 'v2', healthz: 'ok' });
        const { ciphertext, key_id } = await client.encrypt(Buffer.from('from the image'));
        expect(key_id).toBe(status.key_id);
        expect((await client.decrypt({ ciphertext, key_id })).plaintext.toString()).toBe('from the image');
      } finally {
        client.close();
      }
    }, 120_000);
  });

  describe('a tenant control plane with the kms-plugin image as its sidecar', () => {
    const kube = management();
    const id = unique('imgtcp');
    const cluster = 'shop';
    const names = clusterNames(cluster);
    let stage: LifecycleTenant;
    afterAll(async () => {
      await stage?.stop();
    });

    it('k8-manager patches the shipped image in; the runner runs it from its root as 65532; Secrets land in etcd under it', async () => {
      const plugin = shipped.built['kms-plugin']!;
      const ns = await createNamespace(kube, 'imgtcp');
      stage = await startLifecycleTenant({
        state: platform(),
        kube,
        id,
        namespace: ns,
        cluster,
        spec: { version: 'v1.35.0', controlPlane: { replicas: 1 }, encryption: { etcd: { enabled: true } } },
        controllers: () => shardControllers(id, { OBSERVE_PERIOD: '3s', KMS_PLUGIN_IMAGE: plugin.ref }),
        // Only the shipped image: the source mapping of the plugin is not in this runner's table.
        images: shipped.table,
      });
      const pod = stage.runner.pod(ns, names.tenantControlPlane)!;
      const sidecar = pod.containers.find((c) => c.name === 'kms-plugin')!;
      expect(sidecar).toMatchObject({ kind: 'sidecar', running: true, ready: true });
      // The process runs as 65532 with the image as its root: our bundle there, no shell.
      const status = readFileSync(`/proc/${sidecar.pid}/status`, 'utf8');
      expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe('65532');
      expect(readFileSync(`/proc/${sidecar.pid}/cmdline`, 'utf8').split('\0').slice(0, 2)).toEqual([
        '/nodejs/bin/node',
        '/app/main.js',
      ]);
      expect(existsSync(`/proc/${sidecar.pid}/root/app/main.js`)).toBe(true);
      expect(existsSync(`/proc/${sidecar.pid}/root/bin/sh`)).toBe(false);

      await stage.tenant.create(at(RESOURCES.secret, 'default'), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 's-image' },
        stringData: { v: 'sealed by the shipped plugin' },
      });
      const rows = await rawRows(stage.etcdctl, await tenantPrefix(kube, ns, names.tenantControlPlane), 'secrets');
      expect(rows.plaintext).toBe(0);
      expect([...rows.providers.keys()]).toEqual([KMS_PROVIDER_NAME]);
    }, 600_000);
  });
});
