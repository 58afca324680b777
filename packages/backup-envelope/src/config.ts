// The job CLI's flags and environment, parsed into a typed configuration (pure, unit-tested).
// Flags win over environment variables; every error names the flag and what to do.
import { durationMs, integer as integerIn, readFlags } from '@kdc/shared/config';
import { openBaoAccessNames } from '@kdc/shared/names';
import { readOpenBaoAuth } from '@kdc/shared/openbao';
import type { AuthSettings } from './auth.ts';
import { DEFAULT_QUEUE_SIZE } from './backup.ts';
import { COMMANDS, FLAGS, MAX_PART_SIZE, MIN_PART_SIZE, type Command, type FlagName } from './flags.ts';
import { MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE } from './format/spec.ts';

export { COMMANDS, FLAGS, helpText, type Command } from './flags.ts';

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
