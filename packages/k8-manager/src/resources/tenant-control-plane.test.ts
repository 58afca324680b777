import { describe, expect, it } from 'vitest';
import { ANNOTATIONS, kamajiControlPlaneOwner, type TcpDeployment } from '@kdc/shared';
import {
  buildEncryptionFields,
  buildTenantControlPlane,
  contains,
  legacyOpenBaoUrls,
  mergeByName,
  mergeEncryptionFields,
} from './tenant-control-plane.ts';

const input = {
  namespace: 'acme-dev',
  cluster: 'c1',
  pluginImage: 'registry.local/kdc/kms-plugin:1.0.0',
  openBaoUrl: 'https://openbao.openbao.svc:8200',
  hasCaBundle: true,
  plugins: [{ slot: 'a' as const, transitKey: 'acme-dev.c1-etcd' }],
  configHash: 'h1',
};
const fields = buildEncryptionFields(input);
const others: TcpDeployment = {
  additionalInitContainers: [{ name: 'vendor-init', image: 'vendor:1' }],
  additionalVolumes: [{ name: 'vendor-vol', emptyDir: {} }],
  additionalVolumeMounts: {
    apiServer: [{ name: 'vendor-vol', mountPath: '/vendor' }],
    scheduler: [{ name: 'vendor-vol', mountPath: '/vendor' }],
  },
  extraArgs: { apiServer: ['--audit-log-maxage=7'], controllerManager: ['--v=2'] },
  podAdditionalMetadata: { annotations: { 'vendor/a': 'b' }, labels: { team: 'x' } },
  replicas: 2,
};

describe('buildEncryptionFields', () => {
  it('a key switch runs two plugin instances, each with its own key, socket and ports; the merge keeps them in order and drops the one that left', () => {
    const two = buildEncryptionFields({
      ...input,
      plugins: [
        { slot: 'b', transitKey: 'acme-dev.k2' },
        { slot: 'a', transitKey: 'acme-dev.k1' },
      ],
    });
    expect(two.initContainers.map((c) => c.name)).toEqual(['kdc-kms-socket-init', 'kms-plugin-b', 'kms-plugin']);
    const [b, a] = [two.initContainers[1]!, two.initContainers[2]!];
    expect(b.args).toEqual(
      expect.arrayContaining([
        '--socket=/var/run/kmsplugin/kms-b.sock',
        '--transit-key=acme-dev.k2',
        '--metrics-addr=127.0.0.1:8097',
        '--probe-addr=0.0.0.0:8098',
      ]),
    );
    expect(a.args).toEqual(
      expect.arrayContaining([
        '--socket=/var/run/kmsplugin/kms.sock',
        '--transit-key=acme-dev.k1',
        '--metrics-addr=127.0.0.1:8095',
        '--probe-addr=0.0.0.0:8096',
      ]),
    );
    expect(b.readinessProbe).toMatchObject({ httpGet: { port: 8098 } });
    const merged = mergeEncryptionFields(others, two, 'c1');
    const after = mergeEncryptionFields(
      merged,
      buildEncryptionFields({ ...input, plugins: [{ slot: 'b', transitKey: 'acme-dev.k2' }] }),
      'c1',
    );
    expect(after.additionalInitContainers!.map((c) => c.name)).toEqual([
      'vendor-init',
      'kdc-kms-socket-init',
      'kms-plugin-b',
    ]);
    expect(mergeEncryptionFields(after, null, 'c1').additionalInitContainers!.map((c) => c.name)).toEqual([
      'vendor-init',
    ]);
  });

  it('runs the plugin as a native sidecar after the socket-dir init', () => {
    expect(fields.initContainers.map((c) => [c.name, c.restartPolicy])).toEqual([
      ['kdc-kms-socket-init', undefined],
      ['kms-plugin', 'Always'],
    ]);
    const [init, plugin] = fields.initContainers as [
      (typeof fields.initContainers)[number],
      (typeof fields.initContainers)[number],
    ];
    // The socket dir is handed to the plugin's user by the plugin's own image, as root with CAP_CHOWN alone.
    expect(init).toMatchObject({
      image: plugin.image,
      args: ['prepare-socket-dir', '--dir=/var/run/kmsplugin', '--owner=65532:65532'],
      securityContext: { runAsUser: 0, capabilities: { drop: ['ALL'], add: ['CHOWN'] } },
    });
    expect(init.command).toBeUndefined();
    expect(plugin.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(plugin.args).toContain('--transit-key=acme-dev.c1-etcd');
    expect(plugin.args).toContain('--auth-role=tcp-acme-dev.c1');
    expect(plugin.args).toContain('--openbao-ca-file=/etc/kdc/openbao-ca/openbao-ca.crt');
    expect(plugin.readinessProbe).toBeDefined();
  });

  it('keeps metrics on loopback and gives probes a port of their own on the pod network', () => {
    const plugin = fields.initContainers[1]!;
    expect(plugin.args).toContain('--metrics-addr=127.0.0.1:8095');
    expect(plugin.args).toContain('--probe-addr=0.0.0.0:8096');
    expect(plugin.args!.filter((a) => a.startsWith('--metrics-addr=0.0.0.0'))).toEqual([]);
    expect(plugin.ports).toEqual([{ name: 'kms-probes', containerPort: 8096, protocol: 'TCP' }]);
    for (const p of [plugin.startupProbe, plugin.readinessProbe, plugin.livenessProbe] as {
      httpGet: { port: number };
    }[])
      expect(p.httpGet.port).toBe(8096);
  });

  it('mounts a projected token with audience openbao and no CA volume without a CA bundle', () => {
    const noCa = buildEncryptionFields({ ...input, hasCaBundle: false });
    expect(noCa.volumes.map((v) => v.name)).toEqual(['kdc-kms-socket', 'kdc-encryption-config', 'kdc-openbao-token']);
    expect(JSON.stringify(noCa.volumes[2])).toContain('"audience":"openbao"');
    expect(noCa.initContainers[1]!.args!.some((a) => a.startsWith('--openbao-ca-file'))).toBe(false);
  });

  it('passes the organisation namespace only when there is one', () => {
    expect(buildEncryptionFields({ ...input, openBaoNamespace: 'acme' }).initContainers[1]!.args).toContain(
      '--openbao-namespace=acme',
    );
    expect(fields.initContainers[1]!.args!.some((a) => a.startsWith('--openbao-namespace'))).toBe(false);
  });
});

describe('mergeEncryptionFields', () => {
  const merged = mergeEncryptionFields(others, fields, 'c1');

  it('keeps every entry another controller put there, in place', () => {
    expect(merged.additionalInitContainers!.map((c) => c.name)).toEqual([
      'vendor-init',
      'kdc-kms-socket-init',
      'kms-plugin',
    ]);
    expect(merged.additionalVolumes!.map((v) => v.name)).toEqual([
      'vendor-vol',
      'kdc-kms-socket',
      'kdc-encryption-config',
      'kdc-openbao-token',
      'kdc-openbao-ca',
    ]);
    expect(merged.additionalVolumeMounts!.apiServer!.map((m) => m.name)).toEqual([
      'vendor-vol',
      'kdc-kms-socket',
      'kdc-encryption-config',
    ]);
    expect(merged.additionalVolumeMounts!.scheduler).toEqual(others.additionalVolumeMounts!.scheduler);
    expect(merged.extraArgs).toEqual({
      apiServer: [
        '--audit-log-maxage=7',
        '--encryption-provider-config=/etc/kubernetes/kdc-encryption/encryption-config.yaml',
      ],
      controllerManager: ['--v=2'],
    });
    expect(merged.podAdditionalMetadata).toEqual({
      annotations: { 'vendor/a': 'b', [ANNOTATIONS.encryptionConfigHash]: 'h1' },
      labels: { team: 'x' },
    });
    expect(merged.serviceAccountName).toBe('c1-kms-plugin');
    expect(merged.replicas).toBe(2);
  });

  it('is a fixed point: merging again changes nothing', () => {
    expect(mergeEncryptionFields(merged, fields, 'c1')).toEqual(merged);
  });

  it('keeps apiserver defaults on our entries when they already match', () => {
    const defaulted = structuredClone(merged);
    (defaulted.additionalInitContainers![2] as any).ports[0].hostPort = undefined;
    (defaulted.additionalInitContainers![2] as any).terminationMessagePolicy = 'File';
    expect(mergeEncryptionFields(defaulted, fields, 'c1')).toEqual(defaulted);
  });

  it('keeps entries others add after ours, and ours after theirs', () => {
    const later = structuredClone(merged);
    later.additionalInitContainers!.push({ name: 'vendor-late', image: 'v:2' });
    later.extraArgs!.apiServer!.push('--vendor=1');
    const again = mergeEncryptionFields(later, fields, 'c1');
    expect(again).toEqual(later);
  });

  it('replaces a changed entry of ours in place and drops an owned volume no longer wanted', () => {
    const next = mergeEncryptionFields(
      merged,
      buildEncryptionFields({ ...input, hasCaBundle: false, configHash: 'h2', pluginImage: 'kms:2' }),
      'c1',
    );
    expect(next.additionalInitContainers!.map((c) => c.name)).toEqual([
      'vendor-init',
      'kdc-kms-socket-init',
      'kms-plugin',
    ]);
    expect(next.additionalInitContainers![2]!.image).toBe('kms:2');
    expect(next.additionalVolumes!.map((v) => v.name)).not.toContain('kdc-openbao-ca');
    expect(next.podAdditionalMetadata!.annotations![ANNOTATIONS.encryptionConfigHash]).toBe('h2');
  });

  it('restores our order when someone moved the plugin before its init container', () => {
    const swapped = structuredClone(merged);
    swapped.additionalInitContainers = [
      swapped.additionalInitContainers![0]!,
      swapped.additionalInitContainers![2]!,
      swapped.additionalInitContainers![1]!,
    ];
    expect(mergeEncryptionFields(swapped, fields, 'c1').additionalInitContainers!.map((c) => c.name)).toEqual([
      'vendor-init',
      'kdc-kms-socket-init',
      'kms-plugin',
    ]);
  });

  it('replaces a foreign --encryption-provider-config flag: there can be only one', () => {
    const foreign = { ...others, extraArgs: { apiServer: ['--encryption-provider-config=/elsewhere.yaml', '--v=2'] } };
    expect(mergeEncryptionFields(foreign, fields, 'c1').extraArgs!.apiServer).toEqual([
      '--v=2',
      '--encryption-provider-config=/etc/kubernetes/kdc-encryption/encryption-config.yaml',
    ]);
  });

  it('sets fsGroup so the non-root plugin can read its token and CA, and keeps a foreign one', () => {
    expect(merged.podSecurityContext).toEqual({ fsGroup: 65532 });
    const foreign = mergeEncryptionFields(
      { ...others, podSecurityContext: { fsGroup: 2000, runAsNonRoot: true } },
      fields,
      'c1',
    );
    expect(foreign.podSecurityContext).toEqual({ fsGroup: 2000, runAsNonRoot: true });
    expect((foreign.additionalInitContainers![2]!.securityContext as any).runAsGroup).toBe(2000);
    expect(mergeEncryptionFields(foreign, fields, 'c1')).toEqual(foreign);
    expect(mergeEncryptionFields(foreign, null, 'c1').podSecurityContext).toEqual({
      fsGroup: 2000,
      runAsNonRoot: true,
    });
  });

  it('detaches: removes exactly ours and leaves the rest as it was', () => {
    expect(mergeEncryptionFields(merged, null, 'c1')).toEqual(others);
    expect(mergeEncryptionFields(undefined, null, 'c1')).toEqual({});
  });

  it('leaves a foreign serviceAccountName alone on detach', () => {
    expect(mergeEncryptionFields({ serviceAccountName: 'theirs' }, null, 'c1').serviceAccountName).toBe('theirs');
  });
});

describe('the OpenBao URL changes (kdc1 key_ids hash the URL the plugin was given)', () => {
  const A = 'https://openbao.openbao.svc:8200';
  const B = 'https://openbao.example.com';
  const C = 'https://bao.internal:8200';
  const attachedWith = (url: string, legacy: string[] = []) =>
    mergeEncryptionFields(
      others,
      buildEncryptionFields({ ...input, openBaoUrl: url, legacyOpenBaoUrls: legacy }),
      'c1',
    );
  const pluginArgs = (d: TcpDeployment) => d.additionalInitContainers!.find((c) => c.name === 'kms-plugin')!.args!;

  it.each<[string, TcpDeployment | undefined, string, string[]]>([
    ['nothing attached yet', others, A, []],
    ['no TCP deployment at all', undefined, A, []],
    ['same URL: nothing to carry', attachedWith(A), A, []],
    ['a new URL carries the old one', attachedWith(A), B, [A]],
    ['a trailing slash is the same URL', attachedWith(`${A}/`), A, []],
    ['a third URL keeps every earlier one, oldest first', attachedWith(B, [A]), C, [A, B]],
    ['back to an earlier URL: it is --openbao-addr again, the other stays', attachedWith(B, [A]), A, [B]],
  ])('%s', (_name, deployment, url, legacy) => {
    expect(legacyOpenBaoUrls(deployment, url)).toEqual(legacy);
  });

  it('passes them to the plugin, and an unchanged URL leaves the TCP as it is', () => {
    const before = attachedWith(A);
    const moved = mergeEncryptionFields(
      before,
      buildEncryptionFields({ ...input, openBaoUrl: B, legacyOpenBaoUrls: legacyOpenBaoUrls(before, B) }),
      'c1',
    );
    expect(pluginArgs(moved)).toEqual(
      expect.arrayContaining([`--openbao-addr=${B}`, `--legacy-key-id-openbao-addr=${A}`]),
    );
    expect(pluginArgs(moved).filter((a) => a.startsWith('--openbao-addr='))).toEqual([`--openbao-addr=${B}`]);
    const again = mergeEncryptionFields(
      moved,
      buildEncryptionFields({ ...input, openBaoUrl: B, legacyOpenBaoUrls: legacyOpenBaoUrls(moved, B) }),
      'c1',
    );
    expect(again).toEqual(moved);
  });
});

describe('helpers', () => {
  it('contains() treats extra fields in actual as defaults', () => {
    expect(contains({ a: 1, b: { c: 2, d: 3 } }, { b: { c: 2 } })).toBe(true);
    expect(contains({ a: [1, 2] }, { a: [1] })).toBe(false);
    expect(contains({ a: 1 }, { a: '1' })).toBe(false);
  });
  it('mergeByName appends ours to an empty list', () => {
    expect(mergeByName(undefined, [{ name: 'x' }], ['x'])).toEqual([{ name: 'x' }]);
  });
  it('builds a TCP Kamaji accepts: service type and kubelet cgroupfs are required', () => {
    const tcp = buildTenantControlPlane('acme-dev', 'c1', {
      version: 'v1.35.0',
      controlPlane: { replicas: 2 },
      dataStore: 'etcd-a',
    });
    expect(tcp.metadata.name).toBe('c1-cp');
    expect(tcp.spec).toMatchObject({
      dataStore: 'etcd-a',
      controlPlane: { service: { serviceType: 'ClusterIP' } },
      kubernetes: { version: 'v1.35.0' },
    });
  });
  it('sees a KamajiControlPlane owner', () => {
    const tcp = buildTenantControlPlane('ns', 'c', { version: 'v1', controlPlane: { replicas: 1 } });
    expect(kamajiControlPlaneOwner(tcp)).toBeUndefined();
    (tcp.metadata as any).ownerReferences = [{ kind: 'KamajiControlPlane', name: 'kcp-1' }];
    expect(kamajiControlPlaneOwner(tcp)).toBe('kcp-1');
  });
});
