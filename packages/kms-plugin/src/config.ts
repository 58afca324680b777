import { parseArgs } from 'node:util';
import { KMS_SOCKET_PATH, OPENBAO_K8S_AUTH_MOUNT, parseKmsKeyInterval } from '@kdc/shared';
import { KEY_ID_FORMS, type KeyIdForm } from './keyid.ts';

export type AuthMethod = 'kubernetes' | 'token' | 'approle' | 'userpass';
export const AUTH_METHODS: readonly AuthMethod[] = ['kubernetes', 'token', 'approle', 'userpass'];

export interface PluginConfig {
  socket: string;
  socketGroup?: number;
  openBaoAddr: string;
  /** URLs earlier plugins of this tenant reached OpenBao by: their kdc1 key_ids still decrypt. */
  legacyKeyIdOpenBaoAddrs: string[];
  /** The key_id form published and used for Encrypt. */
  keyIdForm: KeyIdForm;
  openBaoCaFile?: string;
  openBaoNamespace?: string;
  transitMount: string;
  transitKey: string;
  auth:
    | { method: 'kubernetes'; mount: string; role: string; tokenFile: string }
    | { method: 'token'; tokenFile?: string; token?: string }
    | { method: 'approle'; mount: string; roleId: string; secretIdFile: string }
    | { method: 'userpass'; mount: string; username: string; passwordFile: string };
  metricsHost: string;
  metricsPort: number;
  /** The probe listener (health, readiness, key version) for kubelet and k8-manager; absent = off. */
  probe?: { host: string; port: number };
  /** Calls that may wait for OpenBao; beyond this they fail with RESOURCE_EXHAUSTED. */
  maxQueuedCalls: number;
  healthIntervalMs: number;
  healthStaleAfterMs: number;
  requestTimeoutMs: number;
  logLevel: string;
}

export const FLAGS = {
  socket: { type: 'string', default: KMS_SOCKET_PATH, help: 'Unix socket the apiserver dials (unix:// endpoint path)' },
  'socket-group': { type: 'string', help: 'numeric gid allowed on the socket; the mode becomes 0660 (default 0600)' },
  'openbao-addr': {
    type: 'string',
    env: 'OPENBAO_ADDR',
    help: 'OpenBao URL, e.g. https://openbao.openbao.svc:8200 (required)',
  },
  'legacy-key-id-openbao-addr': {
    type: 'string',
    multiple: true,
    help: 'repeatable: an OpenBao URL an earlier plugin of this tenant was given; kdc1 key_ids made under it still decrypt (--openbao-addr always does)',
  },
  'key-id-form': {
    type: 'string',
    default: 'kdc2',
    help: 'key_id form to publish: kdc2 (the OpenBao namespace, mount and key name, whatever URL reaches them) or kdc1 (the form before kdc2, which hashes --openbao-addr; only while a rollback to such a plugin must stay possible). Decrypt accepts both',
  },
  'openbao-ca-file': { type: 'string', env: 'OPENBAO_CACERT', help: 'PEM bundle to verify OpenBao' },
  'openbao-namespace': {
    type: 'string',
    env: 'OPENBAO_NAMESPACE',
    help: 'OpenBao namespace (X-Vault-Namespace); empty = root',
  },
  'transit-mount': { type: 'string', default: 'transit', help: 'Transit mount path' },
  'transit-key': { type: 'string', env: 'TRANSIT_KEY', help: 'Transit key name (required)' },
  'auth-method': { type: 'string', default: 'kubernetes', help: `one of ${AUTH_METHODS.join(', ')}` },
  'auth-mount': {
    type: 'string',
    help: `auth mount (default ${OPENBAO_K8S_AUTH_MOUNT} for kubernetes, approle, userpass)`,
  },
  'auth-role': { type: 'string', help: 'Kubernetes-auth role (required for kubernetes)' },
  'token-file': {
    type: 'string',
    help: 'kubernetes: projected ServiceAccount token (re-read at each login); token: file holding the token',
  },
  'approle-role-id': { type: 'string', help: 'AppRole role_id' },
  'approle-secret-id-file': { type: 'string', help: 'file holding the AppRole secret_id' },
  'userpass-username': { type: 'string', help: 'userpass user name' },
  'userpass-password-file': { type: 'string', help: 'file holding the userpass password' },
  'metrics-addr': {
    type: 'string',
    default: '127.0.0.1:8095',
    help: 'host:port for /metrics, /healthz, /readyz (loopback by default)',
  },
  'probe-addr': {
    type: 'string',
    help: 'host:port for /healthz, /readyz and /key-version only (no metrics), for probes from outside the pod; off by default',
  },
  'max-queued-calls': {
    type: 'string',
    default: '1024',
    help: 'Encrypt/Decrypt calls that may wait for OpenBao; more fail at once with RESOURCE_EXHAUSTED',
  },
  'health-interval': {
    type: 'string',
    default: '10s',
    help: 'how often the background loop reads the key and probes encrypt/decrypt',
  },
  'health-stale-after': {
    type: 'string',
    default: '30s',
    help: 'Status reports unhealthy when the last good check is older than this',
  },
  'request-timeout': {
    type: 'string',
    default: '2500ms',
    help: 'timeout of one OpenBao call (below the apiserver provider timeout)',
  },
  'log-level': { type: 'string', default: 'info', help: 'pino level' },
} as const;

type FlagName = keyof typeof FLAGS;
export const DEFAULT_TOKEN_FILE = '/var/run/secrets/openbao/token';

/** `host:port` or `[v6]:port` (the port after the last colon). */
function hostPort(value: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|(.+)):(\d{1,5})$/.exec(value);
  if (!match || Number(match[3]) > 65535) return undefined;
  return { host: match[1] ?? match[2]!, port: Number(match[3]) };
}

const HTTP_URL = /^https?:\/\/[^/\s]+/;
const withoutSlash = (url: string) => url.replace(/\/$/, '');

export type ConfigResult = { ok: true; config: PluginConfig } | { ok: false; errors: string[] };

function durationMs(flag: FlagName, value: string, errors: string[]): number {
  const parsed = parseKmsKeyInterval(value);
  if (!parsed.ok || parsed.seconds <= 0) {
    errors.push(`--${flag}: ${parsed.ok ? 'must be greater than zero' : parsed.error}`);
    return 0;
  }
  return Math.round(parsed.seconds * 1000);
}

export function parseConfig(argv: string[], env: Record<string, string | undefined> = {}): ConfigResult {
  let values: Record<string, string | undefined>;
  let legacyAddrs: string[];
  try {
    const options = Object.fromEntries(
      Object.entries(FLAGS).map(([name, f]) => [
        name,
        {
          type: 'string' as const,
          ...('default' in f ? { default: f.default } : {}),
          ...('multiple' in f ? { multiple: f.multiple } : {}),
        },
      ]),
    );
    const parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<
      string,
      string | string[] | undefined
    >;
    legacyAddrs = (parsed['legacy-key-id-openbao-addr'] as string[] | undefined) ?? [];
    values = Object.fromEntries(Object.entries(parsed).filter(([, v]) => !Array.isArray(v))) as Record<
      string,
      string | undefined
    >;
  } catch (error) {
    return {
      ok: false,
      errors: [
        (error as Error).message.replace(
          /^Unknown option '(.+?)'.*/s,
          'unknown flag $1: run with --help for the list of flags',
        ),
      ],
    };
  }
  for (const [name, f] of Object.entries(FLAGS)) {
    if (values[name] === undefined && 'env' in f && env[f.env]) values[name] = env[f.env];
  }
  const errors: string[] = [];
  const get = (flag: FlagName) => values[flag]?.trim() || undefined;
  const require = (flag: FlagName, why: string) => {
    const value = get(flag);
    if (!value) errors.push(`--${flag}: required ${why}`);
    return value ?? '';
  };

  const openBaoAddr = require('openbao-addr', '(the OpenBao URL)');
  if (openBaoAddr && !HTTP_URL.test(openBaoAddr)) errors.push(`--openbao-addr: "${openBaoAddr}" is not an http(s) URL`);
  const legacyKeyIdOpenBaoAddrs: string[] = [];
  for (const raw of legacyAddrs.map((a) => a.trim())) {
    if (!HTTP_URL.test(raw)) errors.push(`--legacy-key-id-openbao-addr: "${raw}" is not an http(s) URL`);
    // kdc1 hashed the address as the plugin stored it: without a trailing slash.
    const addr = withoutSlash(raw);
    if (addr !== withoutSlash(openBaoAddr) && !legacyKeyIdOpenBaoAddrs.includes(addr))
      legacyKeyIdOpenBaoAddrs.push(addr);
  }
  const keyIdForm = get('key-id-form') as KeyIdForm;
  if (!KEY_ID_FORMS.includes(keyIdForm))
    errors.push(`--key-id-form: "${keyIdForm}" is not one of ${KEY_ID_FORMS.join(', ')}`);
  const transitKey = require('transit-key', '(the Transit key to use)');
  const socket = get('socket')!;
  if (!socket.startsWith('/')) errors.push(`--socket: "${socket}" must be an absolute path`);
  let socketGroup: number | undefined;
  if (get('socket-group')) {
    socketGroup = Number(get('socket-group'));
    if (!Number.isInteger(socketGroup) || socketGroup < 0)
      errors.push(`--socket-group: "${get('socket-group')}" is not a numeric gid`);
  }
  const metricsAddr = get('metrics-addr')!;
  const metricsMatch = hostPort(metricsAddr);
  if (!metricsMatch) errors.push(`--metrics-addr: "${metricsAddr}" is not host:port`);
  const probeAddr = get('probe-addr');
  const probe = probeAddr ? hostPort(probeAddr) : undefined;
  if (probeAddr && !probe) errors.push(`--probe-addr: "${probeAddr}" is not host:port`);
  if (probe && metricsMatch && probe.port === metricsMatch.port)
    errors.push('--probe-addr: must use another port than --metrics-addr');
  const maxQueuedCalls = Number(get('max-queued-calls'));
  if (!Number.isInteger(maxQueuedCalls) || maxQueuedCalls < 1)
    errors.push(`--max-queued-calls: "${get('max-queued-calls')}" is not a positive integer`);

  const method = get('auth-method') as AuthMethod;
  let auth: PluginConfig['auth'] | undefined;
  const mount = get('auth-mount');
  switch (method) {
    case 'kubernetes':
      auth = {
        method,
        mount: mount ?? OPENBAO_K8S_AUTH_MOUNT,
        role: require('auth-role', 'with --auth-method=kubernetes'),
        tokenFile: get('token-file') ?? DEFAULT_TOKEN_FILE,
      };
      break;
    case 'token': {
      const token = env.OPENBAO_TOKEN;
      const tokenFile = get('token-file');
      if (!token && !tokenFile) errors.push('--token-file: required with --auth-method=token (or set OPENBAO_TOKEN)');
      auth = { method, ...(tokenFile ? { tokenFile } : {}), ...(token ? { token } : {}) };
      break;
    }
    case 'approle':
      auth = {
        method,
        mount: mount ?? 'approle',
        roleId: require('approle-role-id', 'with --auth-method=approle'),
        secretIdFile: require('approle-secret-id-file', 'with --auth-method=approle'),
      };
      break;
    case 'userpass':
      auth = {
        method,
        mount: mount ?? 'userpass',
        username: require('userpass-username', 'with --auth-method=userpass'),
        passwordFile: require('userpass-password-file', 'with --auth-method=userpass'),
      };
      break;
    default:
      errors.push(`--auth-method: "${method}" is not one of ${AUTH_METHODS.join(', ')}`);
  }

  const healthIntervalMs = durationMs('health-interval', get('health-interval')!, errors);
  const healthStaleAfterMs = durationMs('health-stale-after', get('health-stale-after')!, errors);
  const requestTimeoutMs = durationMs('request-timeout', get('request-timeout')!, errors);
  if (healthIntervalMs && healthStaleAfterMs && healthStaleAfterMs <= healthIntervalMs) {
    errors.push('--health-stale-after: must be longer than --health-interval, or Status flaps between checks');
  }
  if (errors.length || !auth) return { ok: false, errors };
  return {
    ok: true,
    config: {
      socket,
      ...(socketGroup !== undefined ? { socketGroup } : {}),
      openBaoAddr: withoutSlash(openBaoAddr),
      legacyKeyIdOpenBaoAddrs,
      keyIdForm,
      ...(get('openbao-ca-file') ? { openBaoCaFile: get('openbao-ca-file') } : {}),
      ...(get('openbao-namespace') ? { openBaoNamespace: get('openbao-namespace') } : {}),
      transitMount: get('transit-mount')!,
      transitKey,
      auth,
      metricsHost: metricsMatch!.host,
      metricsPort: metricsMatch!.port,
      ...(probe ? { probe } : {}),
      maxQueuedCalls,
      healthIntervalMs,
      healthStaleAfterMs,
      requestTimeoutMs,
      logLevel: get('log-level')!,
    },
  };
}

export function helpText(): string {
  const lines = Object.entries(FLAGS).map(
    ([name, f]) =>
      `  --${name.padEnd(28)} ${f.help}${'default' in f ? ` (default ${f.default})` : ''}${'env' in f ? ` [env ${f.env}]` : ''}`,
  );
  return `kms-plugin: KMS v2 plugin for OpenBao Transit\n\nFlags:\n${lines.join('\n')}\n`;
}
