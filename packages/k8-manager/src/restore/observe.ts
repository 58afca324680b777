import {
  ANNOTATIONS,
  BACKUP_CREDENTIAL_KEYS,
  checkS3Endpoint,
  resolveBackupSettings,
  type KubeClient,
  type KubeObject,
  RESOURCES,
} from '@kdc/shared';
import { readBucketCredentials, type BackupInspector } from '../backup/bucket.ts';
import { dataStoreFacts, type TcpsByDataStore } from '../tenant/datastore.ts';
import { etcdLayout, type EtcdStatefulSet } from '../tenant/etcd-layout.ts';
import type { ObservedRestore } from './plan.ts';
import type { RestoreInput } from './reconcile.ts';

// What the restore reads besides its own Job: the backup a key names (at Validating, so that a
// refusal comes before anything is stopped) and the DataStore's etcd StatefulSet (not watched, so
// read again before every step).

export interface RestoreObserverDeps {
  kube: KubeClient;
  tcpsOnDataStore: TcpsByDataStore;
  inspectBackup: BackupInspector;
}

export function restoreObserver(deps: RestoreObserverDeps) {
  async function validateBackup(input: RestoreInput, key: string): Promise<ObservedRestore['backup']> {
    const refuse = (reason: string, message: string) => ({ ok: false as const, reason, message });
    const { parseBackupKey } = await import('@kdc/backup-envelope');
    const parsed = parseBackupKey(key);
    if (!parsed)
      return refuse(
        'InvalidKey',
        `"${key}" is neither <cluster>/<cluster>-<timestamp>/ (an envelope backup) nor <cluster>/<cluster>-<timestamp>.db (a plaintext one)`,
      );
    if (parsed.cluster !== input.name)
      return refuse('ForeignKey', `"${key}" is a backup of cluster ${parsed.cluster}, not of ${input.name}`);
    if (
      parsed.kind === 'plaintext' &&
      input.cluster.metadata?.annotations?.[ANNOTATIONS.restoreUnauthenticatedConfirmed] !== key
    ) {
      return refuse(
        'UnauthenticatedBackup',
        `"${key}" is a plaintext snapshot: nothing authenticates it, and anyone who can write to the bucket could have put it there. Restore it only if you know where it came from: set the annotation ${ANNOTATIONS.restoreUnauthenticatedConfirmed}=${key} as well (kubectl kdc backups restore --confirm-unauthenticated)`,
      );
    }
    const settings = resolveBackupSettings(input.namespace, input.name, input.spec, input.platform.s3Endpoint ?? '');
    if (!settings?.ok)
      return refuse('BackupDisabled', 'spec.backup is disabled or invalid: the bucket to restore from is unknown');
    const endpoint = checkS3Endpoint(settings.settings.s3Endpoint, input.platform);
    if (!endpoint.ok) return refuse(endpoint.reason, endpoint.message);
    const bucket = await readBucketCredentials(deps.kube, input.namespace, settings.settings.credentialSecret);
    if (!bucket || bucket.missing.length) {
      return refuse(
        'S3NotAvailable',
        `Secret ${input.namespace}/${settings.settings.credentialSecret} with ${BACKUP_CREDENTIAL_KEYS.accessKeyId} and ${BACKUP_CREDENTIAL_KEYS.secretAccessKey} is needed to read the backup`,
      );
    }
    let found;
    try {
      found = await deps.inspectBackup({
        cluster: input.name,
        bucket: settings.settings.bucket,
        endpoint: settings.settings.s3Endpoint,
        credentials: bucket.credentials,
        key,
      });
    } catch (error) {
      return refuse(
        'BackupUnreadable',
        `cannot read s3://${settings.settings.bucket}/${key}: ${(error as Error).message.slice(0, 400)}`,
      );
    }
    if (!found.found)
      return refuse(
        'BackupNotFound',
        `s3://${settings.settings.bucket}/${key} does not exist or is incomplete (no metadata.json or no snapshot.db.enc)`,
      );
    if (found.kind === 'envelope') {
      const expected = input.backupTransitKey;
      if (found.transitKey !== expected)
        return refuse(
          'ForeignKey',
          `the backup's data key is wrapped by Transit key ${found.transitKey}, not by this cluster's backup key ${expected}`,
        );
      if (found.source?.cluster !== undefined && found.source.cluster !== input.name)
        return refuse('ForeignKey', `the backup was taken of cluster ${found.source.cluster}, not of ${input.name}`);
      if (found.source?.namespace !== undefined && found.source.namespace !== input.namespace) {
        return refuse(
          'ForeignBackup',
          `the backup was taken of cluster ${input.name} in namespace ${found.source.namespace}, not in ${input.namespace}`,
        );
      }
    }
    return { ok: true };
  }

  async function observeEtcd(input: RestoreInput): Promise<NonNullable<ObservedRestore['etcd']>> {
    const none = (reason: string, message: string) => ({
      ok: false as const,
      reason,
      message,
      statefulSet: null,
      missing: message,
      specReplicas: 0,
      runningReplicas: 0,
      readyReplicas: 0,
    });
    const ds = await dataStoreFacts(deps.kube, deps.tcpsOnDataStore, input.tcp);
    if (!ds.name || !ds.object)
      return none('DataStoreUnknown', `the DataStore of TenantControlPlane ${input.tcp.metadata.name} is not known`);
    const ref = ds.object.metadata?.annotations?.[ANNOTATIONS.etcdStatefulSet];
    if (!ref)
      return none(
        'DataStoreUnmanaged',
        `DataStore ${ds.name} has no ${ANNOTATIONS.etcdStatefulSet} annotation naming the StatefulSet that runs its etcd`,
      );
    const [stsNamespace, stsName] = ref.includes('/') ? (ref.split('/') as [string, string]) : [input.namespace, ref];
    if (stsNamespace !== input.namespace)
      return none(
        'DataStoreUnmanaged',
        `the etcd StatefulSet ${ref} of DataStore ${ds.name} must run in the cluster's namespace ${input.namespace}`,
      );
    const sts = await deps.kube.getOrNull<KubeObject & EtcdStatefulSet>({
      ...RESOURCES.statefulSet,
      namespace: stsNamespace,
      name: stsName,
    });
    if (!sts) return none('DataStoreUnmanaged', `StatefulSet ${ref} (from DataStore ${ds.name}) does not exist`);
    const counts = {
      statefulSet: stsName,
      specReplicas: sts.spec?.replicas ?? 1,
      runningReplicas: sts.status?.replicas ?? 0,
      readyReplicas: sts.status?.readyReplicas ?? 0,
    };
    // Read even when shared, so that a tenant stopped by an earlier step can be started again.
    if (ds.neighbours.length)
      return {
        ok: false,
        reason: 'SharedDataStore',
        message: `DataStore ${ds.name} also serves ${ds.neighbours.join(', ')}: restoring its etcd would roll their data back too`,
        ...counts,
      };
    return { ...etcdLayout(sts), ...counts };
  }

  return { validateBackup, observeEtcd };
}
