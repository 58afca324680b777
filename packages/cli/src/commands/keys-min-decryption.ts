// kubectl kdc keys min-decryption <kmskey> --to N [--confirm]: the only path in the product that
// advances a Transit key's min_decryption_version (SPEC 5). Dry run unless --confirm.
import { listBackups } from '@kdc/backup-envelope';
import {
  ENCRYPTABLE_RESOURCES,
  clusterNames,
  kmsKeyTransitName,
  resolveKeyRefs,
  type KubeClient,
  type KubeObject,
  type TransitKey,
  RESOURCES,
} from '@kdc/shared';
import { scanCoverage, tenantEtcdPrefix, type EtcdConnection } from '@kdc/shared/etcd';
import { bool, parsePositiveInt, str, type CommandSpec, type ParsedArgs } from '../terminal/args.ts';
import { S3_FLAGS, clusterBackups, clusterSpec } from '../clients/backup-access.ts';
import type { CommandContext } from '../context.ts';
import { describe, failure, usageError } from '../errors.ts';
import { ETCD_FLAGS, etcdSettings } from '../clients/etcd.ts';
import { rowCountsOf } from '../clients/etcd-rows.ts';
import { progressBar } from '../terminal/progress.ts';
import { KUBE_FLAGS, getKmsKey, kdcClusterRef, kubeAccess, kubeFailure } from '../clients/kube.ts';
import {
  keyStateDecision,
  minDecryptionDecision,
  renderInventory,
  type BackupInventory,
  type ClusterInventory,
  type EtcdInventory,
  type KeyState,
} from './min-decryption.ts';
import { OPENBAO_FLAGS, openBaoFailure, openBaoFor, openBaoSettings } from '../clients/openbao.ts';

export const spec: CommandSpec = {
  name: 'keys min-decryption',
  positionals: ['kmskey'],
  summary:
    "Pre-flight for advancing the Transit min_decryption_version of a KMSKey to N: inventories the Transit key version every backup and every etcd row of the namespace's KdcClusters still needs, and refuses while anything is below N. Dry run unless --confirm.",
  flags: {
    ...KUBE_FLAGS,
    to: { type: 'string', value: 'N', help: 'the new min_decryption_version (required)' },
    confirm: { type: 'boolean', help: 'write it (default: dry run)' },
    ...ETCD_FLAGS,
    ...OPENBAO_FLAGS,
    ...S3_FLAGS,
  },
};

interface ClusterFacts {
  name: string;
  object: KubeObject;
  usesForEtcd: boolean;
  usesForBackup: boolean;
  encryptionEnabled: boolean;
}

/** Which of the cluster's roles the KMSKey plays (spec and the controller's resolved status). */
export function clusterFacts(object: KubeObject, kmsKey: string): ClusterFacts {
  const name = object.metadata!.name!;
  const spec = clusterSpec(object);
  const refs = resolveKeyRefs(name, spec);
  const status = (
    object.status as
      { encryption?: { resolvedKeyRef?: string; resolvedBackupKeyRef?: string; kmsPluginReady?: boolean } } | undefined
  )?.encryption;
  return {
    name,
    object,
    usesForEtcd: refs.etcd === kmsKey || status?.resolvedKeyRef === kmsKey,
    usesForBackup: refs.backup === kmsKey || status?.resolvedBackupKeyRef === kmsKey,
    encryptionEnabled: spec.encryption?.etcd?.enabled === true || status?.kmsPluginReady === true,
  };
}

async function backupInventory(
  kube: KubeClient,
  namespace: string,
  facts: ClusterFacts,
  transitKey: string,
  args: ParsedArgs,
  ctx: CommandContext,
): Promise<BackupInventory> {
  const required = facts.usesForEtcd || facts.usesForBackup;
  if (clusterSpec(facts.object).backup?.enabled === false)
    return { status: 'skipped', reason: 'backups disabled (spec.backup.enabled: false)' };
  try {
    const { store, settings } = await clusterBackups(kube, namespace, facts.object, args.flags, ctx.env);
    try {
      const inventory = await listBackups(store, facts.name);
      if (inventory.invalid.length && required) {
        return {
          status: 'error',
          required,
          error: `${plural(inventory.invalid.length)} with unreadable metadata.json, e.g. ${inventory.invalid[0]!.key}: ${inventory.invalid[0]!.error}`,
        };
      }
      const versions: Record<number, number> = {};
      let ofKey = 0;
      for (const b of inventory.backups) {
        if (b.kind !== 'envelope' || b.transitKey !== transitKey || b.transitKeyVersion === undefined) continue;
        ofKey++;
        versions[b.transitKeyVersion] = (versions[b.transitKeyVersion] ?? 0) + 1;
      }
      return {
        status: 'read',
        destination: settings.destinationPath,
        total: inventory.backups.length,
        ofKey,
        versions,
      };
    } finally {
      store.destroy();
    }
  } catch (error) {
    return { status: 'error', required, error: describe(error) };
  }
}

const plural = (n: number) => (n === 1 ? '1 backup' : `${n} backups`);

async function etcdInventory(
  kube: KubeClient,
  namespace: string,
  facts: ClusterFacts,
  etcd: EtcdConnection | null,
  kmsKey: string,
  onProgress: (scanned: number, total: number) => void,
): Promise<EtcdInventory> {
  if (!facts.usesForEtcd) return { status: 'skipped', reason: `its etcd rows use another KMSKey, not ${kmsKey}` };
  if (!etcd) {
    if (facts.encryptionEnabled) {
      return {
        status: 'unprovable',
        reason:
          "encryption is enabled and etcd was not read, so no row's key version is proven: pass --etcd-endpoint https://<datastore>:2379 with --etcd-ca-file, --etcd-cert-file and --etcd-key-file",
      };
    }
    return { status: 'skipped', reason: 'encryption disabled; pass --etcd-endpoint to check rows anyway' };
  }
  let tcp: KubeObject | null = null;
  const tcpName = clusterNames(facts.name).tenantControlPlane;
  try {
    tcp = await kube.getOrNull<KubeObject>({ ...RESOURCES.tenantControlPlane, namespace, name: tcpName });
  } catch (error) {
    return {
      status: 'unprovable',
      reason: `cannot read TenantControlPlane ${namespace}/${tcpName} for its etcd prefix: ${describe(error)}`,
    };
  }
  // Kamaji names the prefix (the TCP's UID since 26.7.4): a guess from names would read nothing and prove nothing.
  const prefix = tenantEtcdPrefix(tcp);
  if (!prefix) {
    const why = tcp
      ? `TenantControlPlane ${namespace}/${tcpName} has no spec.dataStoreSchema or status.storage.setup.schema yet`
      : `TenantControlPlane ${namespace}/${tcpName} does not exist`;
    if (!facts.encryptionEnabled) return { status: 'skipped', reason: `${why}, so it has no etcd rows` };
    return { status: 'unprovable', reason: `${why}: its etcd prefix is unknown, so no row's key version is proven` };
  }
  let scan;
  try {
    // Every resource the platform can ever encrypt, not only the configured ones: a resource dropped
    // from spec.encryption.etcd.resources can still hold rows under an old key version.
    scan = await scanCoverage({
      connection: etcd,
      prefix,
      resources: ENCRYPTABLE_RESOURCES,
      currentKeyIds: [],
      onProgress: (p) => onProgress(p.scanned, p.total),
    });
  } catch (error) {
    return {
      status: 'unprovable',
      reason: `cannot read the rows under ${prefix}: ${describe(error)} (check --etcd-endpoint and --etcd-ca-file/--etcd-cert-file/--etcd-key-file)`,
    };
  }
  if (scan.prefixKeys === 0 && facts.encryptionEnabled) {
    // A running apiserver always has rows; none means the wrong etcd (or prefix), not safety.
    return {
      status: 'unprovable',
      reason: `no rows at all under ${prefix} in etcd ${etcd.endpoint}, although encryption is enabled: is that the cluster's DataStore? pass the --etcd-endpoint of the etcd that holds ${prefix}`,
    };
  }
  return { status: 'read', prefix, counts: rowCountsOf(scan) };
}

export async function execute(args: ParsedArgs, ctx: CommandContext): Promise<number> {
  const toText = str(args.flags, 'to');
  if (toText === undefined)
    throw usageError(
      '--to N is required: the min_decryption_version to set (see "kubectl kdc keys min-decryption --help")',
    );
  const target = parsePositiveInt(toText);
  if (target === null) throw usageError(`--to "${toText}" is not a key version: write a whole number >= 1`);
  const bao = openBaoSettings(args.flags, ctx.env);
  const etcd = etcdSettings(args.flags, ctx.env);
  const { kube, namespace } = kubeAccess(args.flags, ctx.env);
  const kmsKey = args.positionals.kmskey!;
  const kmsKeyObject = await getKmsKey(kube, namespace, kmsKey);
  const transitKey = kmsKeyTransitName(
    namespace,
    kmsKey,
    (kmsKeyObject.status as { keyId?: string } | undefined)?.keyId,
  );
  const { client, namespaceLabel } = await openBaoFor(kube, namespace, bao);
  const transit = client.transit();
  let raw: TransitKey | null;
  try {
    raw = await transit.readKey(transitKey);
  } catch (error) {
    throw openBaoFailure(`reading transit key ${transitKey} (${namespaceLabel})`, error);
  }
  if (!raw)
    throw failure(
      `transit key ${transitKey} of KMSKey ${namespace}/${kmsKey} does not exist in the ${namespaceLabel}: check the KMSKey's Ready condition (kubectl get kkey ${kmsKey} -n ${namespace}) and --openbao-namespace`,
    );
  const key: KeyState = {
    transitKey,
    latestVersion: raw.latestVersion,
    minDecryptionVersion: raw.minDecryptionVersion,
  };

  const early = keyStateDecision(target, key);
  if (early) {
    if (early.action === 'nothing') ctx.io.out(`${early.message}\n`);
    else for (const r of early.reasons) ctx.io.err(`refused: ${r}\n`);
    return early.code;
  }

  let clusters: KubeObject[];
  try {
    clusters = (await kube.list<KubeObject>(kdcClusterRef(namespace))).items;
  } catch (error) {
    throw kubeFailure(`listing KdcClusters in ${namespace}`, error);
  }
  const inventory: ClusterInventory[] = [];
  const bar = progressBar(ctx.io);
  for (const object of clusters.sort((a, b) => a.metadata!.name!.localeCompare(b.metadata!.name!))) {
    const facts = clusterFacts(object, kmsKey);
    inventory.push({
      cluster: facts.name,
      backups: await backupInventory(kube, namespace, facts, transitKey, args, ctx),
      etcd: await etcdInventory(kube, namespace, facts, etcd, kmsKey, (scanned, total) =>
        bar.update(scanned, total, `scanning the etcd rows of ${facts.name}`),
      ),
    });
  }
  bar.end();
  const input = { namespace, kmsKey, target, key, clusters: inventory };
  const decision = minDecryptionDecision(input);
  ctx.io.out(renderInventory(input));
  ctx.io.out('\n');
  for (const w of decision.warnings) ctx.io.out(`note: ${w}\n`);
  if (decision.action === 'refuse') {
    ctx.io.err(
      `refused: min_decryption_version of ${transitKey} stays ${key.minDecryptionVersion}; it cannot become ${target} while:\n`,
    );
    for (const r of decision.reasons) ctx.io.err(`  - ${r}\n`);
    return 1;
  }
  if (decision.action === 'nothing') {
    ctx.io.out(`${decision.message}\n`);
    return 0;
  }
  ctx.io.out(`${decision.message}\n`);
  if (!bool(args.flags, 'confirm')) {
    ctx.io.out(
      `would set min_decryption_version of ${transitKey} to ${target} (${namespaceLabel}); re-run with --confirm\n`,
    );
    return 0;
  }
  try {
    await transit.configure(transitKey, { min_decryption_version: target });
  } catch (error) {
    throw openBaoFailure(`setting min_decryption_version of ${transitKey} to ${target}`, error);
  }
  const after = await transit.readKey(transitKey).catch(() => null);
  if (after?.minDecryptionVersion !== target) {
    throw failure(
      `OpenBao accepted the change but transit key ${transitKey} reports min_decryption_version ${after?.minDecryptionVersion ?? '?'}: check it with bao read transit/keys/${transitKey}`,
    );
  }
  ctx.io.out(`min_decryption_version of ${transitKey} set to ${target}: versions below ${target} no longer decrypt\n`);
  return 0;
}
