import {
  KMS_SOCKET_PATH,
  OPENBAO_AUTH_METHODS,
  OPENBAO_K8S_AUTH_MOUNT,
  durationMs,
  flagHelpLines,
  hostPort,
  httpUrl,
  integer,
  readFlags,
  readOpenBaoAuth,
  type FlagSpecs,
  type OpenBaoAuthConfig,
} from '@kdc/shared';
import { KEY_ID_FORMS, type KeyIdForm } from './key/keyid.ts';

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
  auth: OpenBaoAuthConfig;
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
    env: ['OPENBAO_ADDR'],
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
  'openbao-ca-file': { type: 'string', env: ['OPENBAO_CACERT'], help: 'PEM bundle to verify OpenBao' },
  'openbao-namespace': {
    type: 'string',
    env: ['OPENBAO_NAMESPACE'],
    help: 'OpenBao namespace (X-Vault-Namespace); empty = root',
  },
  'transit-mount': { type: 'string', default: 'transit', help: 'Transit mount path' },
  'transit-key': { type: 'string', env: ['TRANSIT_KEY'], help: 'Transit key name (required)' },
  'auth-method': { type: 'string', default: 'kubernetes', help: `one of ${OPENBAO_AUTH_METHODS.join(', ')}` },
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
} as const satisfies FlagSpecs;

export type ConfigResult = { ok: true; config: PluginConfig } | { ok: false; errors: string[] };

export function parseConfig(argv: string[], env: Record<string, string | undefined> = {}): ConfigResult {
  const read = readFlags(FLAGS, argv, env);
  if (!read.ok) return read;
  const { flags } = read;
  const openBaoAddr = flags.required('openbao-addr', ' (the OpenBao URL)') && flags.check('openbao-addr', httpUrl);
  const legacyKeyIdOpenBaoAddrs: string[] = [];
  for (const raw of flags.all('legacy-key-id-openbao-addr')) {
    const parsed = httpUrl.safeParse(raw);
    if (!parsed.success) flags.fail(`--legacy-key-id-openbao-addr: "${raw}" is not an http(s) URL`);
    // kdc1 hashed the address as the plugin stored it: without a trailing slash.
    const addr = parsed.success ? parsed.data : raw.replace(/\/$/, '');
    if (addr !== openBaoAddr && !legacyKeyIdOpenBaoAddrs.includes(addr)) legacyKeyIdOpenBaoAddrs.push(addr);
  }
  const keyIdForm = flags.get('key-id-form') as KeyIdForm;
  if (!KEY_ID_FORMS.includes(keyIdForm))
    flags.fail(`--key-id-form: "${keyIdForm}" is not one of ${KEY_ID_FORMS.join(', ')}`);
  const transitKey = flags.required('transit-key', ' (the Transit key to use)');
  const socket = flags.get('socket')!;
  if (!socket.startsWith('/')) flags.fail(`--socket: "${socket}" must be an absolute path`);
  const socketGroup = flags.check(
    'socket-group',
    integer(0, Number.MAX_SAFE_INTEGER, (v) => `"${v}" is not a numeric gid`),
  );
  const metrics = flags.check('metrics-addr', hostPort);
  const probe = flags.check('probe-addr', hostPort);
  if (probe && metrics && probe.port === metrics.port)
    flags.fail('--probe-addr: must use another port than --metrics-addr');
  const maxQueuedCalls = flags.check(
    'max-queued-calls',
    integer(1, Number.MAX_SAFE_INTEGER, (v) => `"${v}" is not a positive integer`),
  );
  const auth = readOpenBaoAuth(flags, env, { methods: OPENBAO_AUTH_METHODS });
  const healthIntervalMs = flags.check('health-interval', durationMs());
  const healthStaleAfterMs = flags.check('health-stale-after', durationMs());
  const requestTimeoutMs = flags.check('request-timeout', durationMs());
  if (healthIntervalMs && healthStaleAfterMs && healthStaleAfterMs <= healthIntervalMs) {
    flags.fail('--health-stale-after: must be longer than --health-interval, or Status flaps between checks');
  }
  if (flags.errors.length || !auth) return { ok: false, errors: flags.errors };
  return {
    ok: true,
    config: {
      socket,
      ...(socketGroup !== undefined ? { socketGroup } : {}),
      openBaoAddr: openBaoAddr || '',
      legacyKeyIdOpenBaoAddrs,
      keyIdForm,
      ...(flags.get('openbao-ca-file') ? { openBaoCaFile: flags.get('openbao-ca-file') } : {}),
      ...(flags.get('openbao-namespace') ? { openBaoNamespace: flags.get('openbao-namespace') } : {}),
      transitMount: flags.get('transit-mount')!,
      transitKey,
      auth,
      metricsHost: metrics!.host,
      metricsPort: metrics!.port,
      ...(probe ? { probe } : {}),
      maxQueuedCalls: maxQueuedCalls!,
      healthIntervalMs: healthIntervalMs!,
      healthStaleAfterMs: healthStaleAfterMs!,
      requestTimeoutMs: requestTimeoutMs!,
      logLevel: flags.get('log-level')!,
    },
  };
}

export function helpText(): string {
  return `kms-plugin: KMS v2 plugin for OpenBao Transit\n\nFlags:\n${flagHelpLines(FLAGS).join('\n')}\n`;
}
