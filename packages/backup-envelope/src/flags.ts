// kdc-backup's flags: one table that parsing, per-command validity and --help all read.
import { flagHelpLines, type FlagSpec } from '@kdc/shared/config';
import { OPENBAO_K8S_AUTH_MOUNT, OPENBAO_TRANSIT_MOUNT } from '@kdc/shared/names';
import { DEFAULT_TOKEN_FILE } from '@kdc/shared/openbao';
import { DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE } from './backup.ts';
import { DEFAULT_SEGMENT_SIZE, MIN_SEGMENT_SIZE } from './format/spec.ts';

export const COMMANDS = ['backup', 'restore', 'rewrap', 'list'] as const;
export type Command = (typeof COMMANDS)[number];

export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;

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

export type FlagName = keyof typeof FLAGS;

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
