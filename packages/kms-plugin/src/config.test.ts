import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.ts';

const base = ['--openbao-addr=https://bao:8200', '--transit-key=ns-prod-etcd', '--auth-role=tcp-prod'];

describe('parseConfig', () => {
  it('applies defaults for a Kubernetes-auth sidecar', () => {
    const result = parseConfig(base);
    expect(result).toMatchObject({
      ok: true,
      config: {
        socket: '/var/run/kmsplugin/kms.sock',
        openBaoAddr: 'https://bao:8200',
        transitMount: 'transit',
        auth: {
          method: 'kubernetes',
          mount: 'k8s-host',
          role: 'tcp-prod',
          tokenFile: '/var/run/secrets/openbao/token',
        },
        metricsHost: '127.0.0.1',
        metricsPort: 8095,
        healthIntervalMs: 10_000,
        healthStaleAfterMs: 30_000,
        requestTimeoutMs: 2_500,
        maxQueuedCalls: 1024,
      },
    });
    expect(result.ok && result.config.probe).toBeUndefined();
  });

  it('serves probes on their own address when asked', () => {
    expect(parseConfig([...base, '--probe-addr=0.0.0.0:8096', '--max-queued-calls=10'])).toMatchObject({
      ok: true,
      config: { probe: { host: '0.0.0.0', port: 8096 }, metricsHost: '127.0.0.1', maxQueuedCalls: 10 },
    });
    expect(parseConfig([...base, '--probe-addr=[::]:8096'])).toMatchObject({
      ok: true,
      config: { probe: { host: '::', port: 8096 } },
    });
  });

  it('publishes kdc2 by default and keeps the legacy addresses kdc1 ids were made under', () => {
    expect(parseConfig(base)).toMatchObject({ ok: true, config: { keyIdForm: 'kdc2', legacyKeyIdOpenBaoAddrs: [] } });
    const result = parseConfig([
      ...base,
      '--legacy-key-id-openbao-addr=https://127.0.0.1:8200/',
      '--legacy-key-id-openbao-addr=https://bao:8200',
      '--legacy-key-id-openbao-addr=https://127.0.0.1:8200',
      '--key-id-form=kdc1',
    ]);
    // The current address is always accepted; duplicates and trailing slashes collapse.
    expect(result).toMatchObject({
      ok: true,
      config: {
        keyIdForm: 'kdc1',
        openBaoAddr: 'https://bao:8200',
        legacyKeyIdOpenBaoAddrs: ['https://127.0.0.1:8200'],
      },
    });
  });

  it('reads env fallbacks', () => {
    const result = parseConfig(['--auth-method=token'], {
      OPENBAO_ADDR: 'http://127.0.0.1:8200',
      TRANSIT_KEY: 'k',
      OPENBAO_TOKEN: 't',
    });
    expect(result).toMatchObject({ ok: true, config: { auth: { method: 'token', token: 't' } } });
  });

  it.each([
    [[], ['--openbao-addr: required', '--transit-key: required', '--auth-role: required']],
    [[...base, '--auth-method=ldap'], ['--auth-method: "ldap" is not one of']],
    [[...base, '--socket=relative.sock'], ['--socket: "relative.sock" must be an absolute path']],
    [[...base, '--socket-group=wheel'], ['--socket-group: "wheel" is not a numeric gid']],
    [[...base, '--metrics-addr=8095'], ['--metrics-addr: "8095" is not host:port']],
    [[...base, '--probe-addr=0.0.0.0'], ['--probe-addr: "0.0.0.0" is not host:port']],
    [[...base, '--probe-addr=0.0.0.0:8095'], ['--probe-addr: must use another port than --metrics-addr']],
    [[...base, '--max-queued-calls=0'], ['--max-queued-calls: "0" is not a positive integer']],
    [[...base, '--health-interval=1w'], ['--health-interval: unit "w"']],
    [[...base, '--health-interval=40s'], ['--health-stale-after: must be longer than --health-interval']],
    [[...base, '--openbao-addr=bao:8200'], ['--openbao-addr: "bao:8200" is not an http(s) URL']],
    [
      [...base, '--auth-method=approle'],
      ['--approle-role-id: required', '--approle-secret-id-file: required'],
    ],
    [[...base, '--bogus=1'], ['unknown flag --bogus']],
    [
      [...base, '--legacy-key-id-openbao-addr=bao:8200'],
      ['--legacy-key-id-openbao-addr: "bao:8200" is not an http(s) URL'],
    ],
    [[...base, '--key-id-form=kdc3'], ['--key-id-form: "kdc3" is not one of kdc2, kdc1']],
  ])('%j names the flag to fix', (argv, messages) => {
    const result = parseConfig(argv);
    expect(result.ok).toBe(false);
    if (!result.ok) for (const message of messages) expect(result.errors.join('\n')).toContain(message);
  });
});
