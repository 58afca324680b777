// The job CLI's flags and environment, parsed into a typed configuration (pure, unit-tested).
// Flags win over environment variables; every error names the flag and what to do.
import { durationMs, flagHelpLines, integer as integerIn, readFlags, type FlagSpec } from '@kdc/shared/config';
import { OPENBAO_K8S_AUTH_MOUNT, OPENBAO_TRANSIT_MOUNT, openBaoAccessNames } from '@kdc/shared/names';
import { DEFAULT_TOKEN_FILE, readOpenBaoAuth } from '@kdc/shared/openbao';
import type { AuthSettings } from './auth.ts';
import { DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE } from './backup.ts';
import { DEFAULT_SEGMENT_SIZE, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE } from './format.ts';

export const COMMANDS = ['backup', 'restore', 'rewrap', 'list'] as const;
export type Command = (typeof COMMANDS)[number];

const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;

type Flag = FlagSpec & { commands: readonly Command[] };
const ALL = COMMANDS;
const BAO: readonly Command[] = ['backup', 'restore', 'rewrap'];

export const FLAGS = {
  cluster: {
    type: 'string',
    env: ['KDC_CLUSTER'],
    help: 'KdcCluster name; backups live under <cluster>/ (required)',
    commands: ALL,
  },
  namespace: {
    type: 'string',
    env: ['KDC_NAMESPACE', 'POD_NAMESPACE'],
    help: 'project namespace of the cluster: bound in a backup; a restore refuses a backup of another namespace (required by both); names the default --auth-role',
    commands: ['backup', 'restore', 'rewrap'],
  },
  's3-endpoint': {
    type: 'string',
    env: ['S3_ENDPOINT'],
    help: 'S3 endpoint URL, e.g. https://s3.example:9000 (empty = AWS)',
    commands: ALL,
  },
  's3-bucket': { type: 'string', env: ['S3_BUCKET'], help: 'bucket (required)', commands: ALL },
  's3-region': {
    type: 'string',
    env: ['S3_REGION', 'AWS_REGION'],
    default: 'us-east-1',
    help: 'S3 region',
    commands: ALL,
  },
  's3-ca-file': {
    type: 'string',
    env: ['S3_CA_FILE'],
    help: 'PEM bundle to verify an https S3 endpoint',
    commands: ALL,
  },
  'openbao-addr': {
    type: 'string',
    env: ['OPENBAO_ADDR', 'VAULT_ADDR'],
    help: 'OpenBao URL (required)',
    commands: BAO,
  },
  'openbao-ca-file': {
    type: 'string',
    env: ['OPENBAO_CACERT', 'VAULT_CACERT'],
    help: 'PEM bundle to verify OpenBao',
    commands: BAO,
  },
  'openbao-namespace': {
    type: 'string',
    env: ['OPENBAO_NAMESPACE'],
    help: 'OpenBao namespace (X-Vault-Namespace); empty = root',
    commands: BAO,
  },
  'transit-mount': { type: 'string', default: OPENBAO_TRANSIT_MOUNT, help: 'Transit mount path', commands: BAO },
  'transit-key': {
    type: 'string',
    env: ['TRANSIT_KEY'],
    help: 'backup: the Transit key for new data keys (required); restore/rewrap: only accept/touch backups of this key',
    commands: BAO,
  },
  'auth-method': {
    type: 'string',
    default: 'kubernetes',
    help: 'kubernetes or token (token: OPENBAO_TOKEN or --token-file)',
    commands: BAO,
  },
  'auth-mount': { type: 'string', default: OPENBAO_K8S_AUTH_MOUNT, help: 'Kubernetes auth mount', commands: BAO },
  'auth-role': {
    type: 'string',
    env: ['OPENBAO_AUTH_ROLE'],
    help: 'Kubernetes auth role (default backup-<namespace>.<cluster>)',
    commands: BAO,
  },
  'token-file': {
    type: 'string',
    help: `kubernetes: projected ServiceAccount token (default ${DEFAULT_TOKEN_FILE}); token: file holding the OpenBao token`,
    commands: BAO,
  },
  'etcd-endpoint': {
    type: 'string',
    env: ['ETCD_ENDPOINT'],
    help: 'etcd client URL to snapshot, http(s)://host:port',
    commands: ['backup'],
  },
  'etcd-ca-file': { type: 'string', env: ['ETCD_CA_FILE'], help: 'PEM CA of etcd', commands: ['backup'] },
  'etcd-cert-file': {
    type: 'string',
    env: ['ETCD_CERT_FILE'],
    help: 'client certificate for etcd',
    commands: ['backup'],
  },
  'etcd-key-file': { type: 'string', env: ['ETCD_KEY_FILE'], help: 'client key for etcd', commands: ['backup'] },
  'snapshot-file': {
    type: 'string',
    help: 'back up an existing snapshot file instead of streaming one from etcd',
    commands: ['backup'],
  },
  'segment-size': {
    type: 'string',
    default: `${DEFAULT_SEGMENT_SIZE / 2 ** 20}Mi`,
    help: `AEAD segment size, ${MIN_SEGMENT_SIZE}..64Mi (the bounds every reader checks)`,
    commands: ['backup'],
  },
  'part-size': {
    type: 'string',
    default: `${DEFAULT_PART_SIZE / 2 ** 20}Mi`,
    help: 'multipart part size, 5Mi..5Gi (memory ~ part size x (concurrency + 1))',
    commands: ['backup'],
  },
  'upload-concurrency': {
    type: 'string',
    default: String(DEFAULT_QUEUE_SIZE),
    help: 'parts uploaded in parallel, 1..16',
    commands: ['backup'],
  },
  'retention-days': {
    type: 'string',
    help: 'after a successful backup, delete backups older than this many days (never the newest), 1..365',
    commands: ['backup'],
  },
  'stale-upload-age': {
    type: 'string',
    default: '24h',
    help: 'abort multipart uploads under <cluster>/ older than this (crashed runs)',
    commands: ['backup'],
  },
  backup: {
    type: 'string',
    help: 'backup to restore: <cluster>/<cluster>-<timestamp>/ (or .db), or "latest": the newest envelope backup whose data key verifies (required)',
    commands: ['restore'],
  },
  'allow-unauthenticated': {
    type: 'boolean',
    help: 'restore a plaintext <cluster>-<timestamp>.db named by --backup: nothing authenticates it, anyone who can write to the bucket could have put it there',
    commands: ['restore'],
  },
  'data-dir': {
    type: 'string',
    help: 'restore into this fresh etcd data dir (absent or empty) with etcdutl',
    commands: ['restore'],
  },
  output: {
    type: 'string',
    help: 'write the verified plaintext snapshot file here instead (must not exist)',
    commands: ['restore'],
  },
  etcdutl: { type: 'string', env: ['ETCDUTL'], default: 'etcdutl', help: 'etcdutl binary', commands: ['restore'] },
  'etcd-name': { type: 'string', help: 'etcdutl --name of the restored member', commands: ['restore'] },
  'initial-cluster': { type: 'string', help: 'etcdutl --initial-cluster', commands: ['restore'] },
  'initial-advertise-peer-urls': {
    type: 'string',
    help: 'etcdutl --initial-advertise-peer-urls',
    commands: ['restore'],
  },
  'bump-revision': {
    type: 'string',
    help: 'etcdutl --bump-revision (implies --mark-compacted), so watchers resync',
    commands: ['restore'],
  },
  'dry-run': { type: 'boolean', help: 'rewrap: only report what would change', commands: ['rewrap'] },
  json: { type: 'boolean', help: 'list: JSON lines instead of a table', commands: ['list'] },
  'log-level': { type: 'string', default: 'info', help: 'pino level (logs go to stderr)', commands: ALL },
} as const satisfies Record<string, Flag>;

type FlagName = keyof typeof FLAGS;

export interface CommonConfig {
  cluster: string;
  s3: {
    endpoint?: string;
    bucket: string;
    region: string;
    caFile?: string;
    accessKeyId?: string;
    secretAccessKey?: string;
  };
  logLevel: string;
}

export interface OpenBaoConfig {
  addr: string;
  caFile?: string;
  namespace?: string;
  transitMount: string;
  auth: AuthSettings;
}

export type CliConfig =
  | (CommonConfig & {
      command: 'backup';
      namespace: string;
      openbao: OpenBaoConfig;
      transitKey: string;
      source:
        | { kind: 'etcd'; endpoint: string; caFile?: string; certFile?: string; keyFile?: string }
        | { kind: 'file'; path: string };
      segmentSize: number;
      partSize: number;
      queueSize: number;
      retentionDays?: number;
      staleUploadAgeMs: number;
    })
  | (CommonConfig & {
      command: 'restore';
      namespace: string;
      openbao: OpenBaoConfig;
      transitKey?: string;
      backup: string;
      allowUnauthenticated: boolean;
      destination:
        | {
            kind: 'data-dir';
            path: string;
            etcdutl: string;
            name?: string;
            initialCluster?: string;
            initialAdvertisePeerUrls?: string;
            bumpRevision?: number;
          }
        | { kind: 'file'; path: string };
    })
  | (CommonConfig & { command: 'rewrap'; openbao: OpenBaoConfig; transitKey?: string; dryRun: boolean })
  | (CommonConfig & { command: 'list'; json: boolean });

export type ParseResult = { ok: true; config: CliConfig } | { ok: false; errors: string[] };

/** "16Mi", "1048576", "64KiB", "1G" (binary units). */
export function parseSize(text: string): number | null {
  const match = /^(\d+)\s*(k|ki|kib|m|mi|mib|g|gi|gib)?$/i.exec(text.trim());
  if (!match) return null;
  const unit = (match[2] ?? '').toLowerCase()[0];
  const factor = unit === 'k' ? 2 ** 10 : unit === 'm' ? 2 ** 20 : unit === 'g' ? 2 ** 30 : 1;
  const value = Number(match[1]) * factor;
  return Number.isSafeInteger(value) ? value : null;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function parseCli(argv: string[], env: Record<string, string | undefined> = {}): ParseResult {
  const [command, ...rest] = argv;
  if (!command || !(COMMANDS as readonly string[]).includes(command)) {
    return {
      ok: false,
      errors: [
        `${command ? `unknown command "${command}"` : 'missing command'}: use one of ${COMMANDS.join(', ')} (--help for flags)`,
      ],
    };
  }
  const cmd = command as Command;
  const mine = Object.fromEntries(
    Object.entries(FLAGS).filter(([, f]) => (f.commands as readonly Command[]).includes(cmd)),
  ) as Partial<typeof FLAGS>;
  const read = readFlags(mine as typeof FLAGS, rest, env, { context: cmd });
  if (!read.ok) return read;
  const { flags } = read;
  const errors = flags.errors;
  const get = (flag: FlagName) => flags.get(flag);
  const required = (flag: FlagName, why = '') => flags.required(flag, why);
  const size = (flag: FlagName, min: number, max: number) => {
    const text = get(flag)!;
    const value = parseSize(text);
    if (value === null || value < min || value > max)
      errors.push(`--${flag}: "${text}" must be a size between ${min} and ${max} bytes (e.g. 1Mi, 16Mi)`);
    return value ?? 0;
  };
  const integer = (flag: FlagName, min: number, max: number) => {
    const text = get(flag);
    if (text === undefined) return undefined;
    return flags.check(flag, integerIn(min, max)) ?? Number(text);
  };

  const cluster = required('cluster');
  if (cluster && !DNS_LABEL.test(cluster))
    errors.push(`--cluster: "${cluster}" is not a DNS label (lowercase letters, digits, "-")`);
  const s3Endpoint = get('s3-endpoint');
  if (s3Endpoint && !/^https?:\/\/[^/\s]+/.test(s3Endpoint))
    errors.push(`--s3-endpoint: "${s3Endpoint}" is not an http(s) URL`);
  const accessKeyId = env.S3_ACCESS_KEY_ID;
  const secretAccessKey = env.S3_SECRET_ACCESS_KEY;
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey))
    errors.push(
      'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together (or use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)',
    );
  const common: CommonConfig = {
    cluster,
    s3: {
      ...(s3Endpoint ? { endpoint: s3Endpoint.replace(/\/$/, '') } : {}),
      bucket: required('s3-bucket'),
      region: get('s3-region')!,
      ...(get('s3-ca-file') ? { caFile: get('s3-ca-file') } : {}),
      ...(accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : {}),
    },
    logLevel: get('log-level')!,
  };

  const openbao = (): OpenBaoConfig => {
    const addr = required('openbao-addr');
    if (addr && !/^https?:\/\/[^/\s]+/.test(addr)) errors.push(`--openbao-addr: "${addr}" is not an http(s) URL`);
    const namespace = get('namespace');
    const auth = readOpenBaoAuth(flags, env, {
      methods: ['kubernetes', 'token'],
      defaultRole: {
        role: cluster && namespace ? openBaoAccessNames(namespace, cluster).backupRole : undefined,
        unless: 'unless --namespace names the default role backup-<namespace>.<cluster>',
      },
    }) ?? { method: 'token' };
    return {
      addr: addr.replace(/\/$/, ''),
      ...(get('openbao-ca-file') ? { caFile: get('openbao-ca-file') } : {}),
      ...(get('openbao-namespace') ? { namespace: get('openbao-namespace') } : {}),
      transitMount: get('transit-mount')!,
      auth,
    };
  };

  let config: CliConfig | undefined;
  switch (cmd) {
    case 'backup': {
      const namespace = required('namespace');
      const transitKey = required('transit-key', ' (the Transit key that wraps the data keys)');
      const endpoint = get('etcd-endpoint');
      const file = get('snapshot-file');
      if (Boolean(endpoint) === Boolean(file))
        errors.push('give exactly one of --etcd-endpoint (stream from etcd) or --snapshot-file');
      if (endpoint && !/^(https?:\/\/)?[^/\s]+:\d+\/?$/.test(endpoint))
        errors.push(`--etcd-endpoint: "${endpoint}" is not http(s)://host:port`);
      const retentionDays = integer('retention-days', 1, 365);
      const staleUploadAgeMs = flags.check('stale-upload-age', durationMs(3600, '1h (e.g. 24h)')) ?? 0;
      config = {
        ...common,
        command: 'backup',
        namespace,
        openbao: openbao(),
        transitKey,
        source: file
          ? { kind: 'file', path: file }
          : {
              kind: 'etcd',
              endpoint: endpoint ?? '',
              ...(get('etcd-ca-file') ? { caFile: get('etcd-ca-file') } : {}),
              ...(get('etcd-cert-file') ? { certFile: get('etcd-cert-file') } : {}),
              ...(get('etcd-key-file') ? { keyFile: get('etcd-key-file') } : {}),
            },
        segmentSize: size('segment-size', MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE),
        partSize: size('part-size', MIN_PART_SIZE, MAX_PART_SIZE),
        queueSize: integer('upload-concurrency', 1, 16) ?? DEFAULT_QUEUE_SIZE,
        ...(retentionDays !== undefined ? { retentionDays } : {}),
        staleUploadAgeMs,
      };
      if (Boolean(get('etcd-cert-file')) !== Boolean(get('etcd-key-file')))
        errors.push('--etcd-cert-file and --etcd-key-file go together');
      break;
    }
    case 'restore': {
      const namespace = required('namespace', " (a backup of another namespace's cluster is refused)");
      const backup = required('backup', ' (a backup key from "list", or "latest")');
      const allowUnauthenticated = flags.bool('allow-unauthenticated');
      if (allowUnauthenticated && !backup.endsWith('.db'))
        errors.push(
          '--allow-unauthenticated only applies to a plaintext backup named by --backup (<cluster>/<cluster>-<timestamp>.db)',
        );
      const dataDir = get('data-dir');
      const output = get('output');
      if (Boolean(dataDir) === Boolean(output))
        errors.push('give exactly one of --data-dir (an etcd data dir, via etcdutl) or --output (the snapshot file)');
      const bump = integer('bump-revision', 1, Number.MAX_SAFE_INTEGER);
      config = {
        ...common,
        command: 'restore',
        namespace,
        openbao: openbao(),
        ...(get('transit-key') ? { transitKey: get('transit-key') } : {}),
        backup,
        allowUnauthenticated,
        destination: output
          ? { kind: 'file', path: output }
          : {
              kind: 'data-dir',
              path: dataDir ?? '',
              etcdutl: get('etcdutl')!,
              ...(get('etcd-name') ? { name: get('etcd-name') } : {}),
              ...(get('initial-cluster') ? { initialCluster: get('initial-cluster') } : {}),
              ...(get('initial-advertise-peer-urls')
                ? { initialAdvertisePeerUrls: get('initial-advertise-peer-urls') }
                : {}),
              ...(bump !== undefined ? { bumpRevision: bump } : {}),
            },
      };
      break;
    }
    case 'rewrap':
      config = {
        ...common,
        command: 'rewrap',
        openbao: openbao(),
        ...(get('transit-key') ? { transitKey: get('transit-key') } : {}),
        dryRun: flags.bool('dry-run'),
      };
      break;
    case 'list':
      config = { ...common, command: 'list', json: flags.bool('json') };
      break;
  }
  if (errors.length || !config) return { ok: false, errors };
  return { ok: true, config };
}

export function helpText(): string {
  const lines = [
    'kdc-backup: envelope-encrypted etcd snapshots in S3 (docs/backup-format.md)',
    '',
    'Usage: kdc-backup <backup|restore|rewrap|list> [flags]',
    '  backup   stream a snapshot from etcd, encrypt it with a fresh Transit data key, upload it',
    '  restore  download, verify and decrypt a backup into a fresh etcd data dir (or a file)',
    '  rewrap   rewrap every backup data key of the cluster to the latest Transit key version',
    "  list     list the cluster's backups with key versions and sizes",
    '',
    'Flags:',
    ...flagHelpLines(FLAGS, (name) => {
      const commands = FLAGS[name as FlagName].commands;
      return [`for ${commands.length === COMMANDS.length ? 'all' : commands.join(',')}`];
    }),
    '',
    'S3 credentials: S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY, else the AWS SDK chain (AWS_ACCESS_KEY_ID, ...).',
    'Exit codes: 0 done, 1 failed (the message says why), 2 bad flags.',
  ];
  return `${lines.join('\n')}\n`;
}
