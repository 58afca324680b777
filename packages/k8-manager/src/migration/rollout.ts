import type { Rollout } from './plan.ts';

// Kamaji rolls a control plane's pods one by one, so old and new replicas serve side by side. A
// step that re-writes rows must wait until every replica runs the expected EncryptionConfiguration
// and its plugin publishes the same key_id: judged from what each replica reports (the config hash
// on its pod, its sidecar, the key_id on its probe port), never from a timer.

export interface ReplicaView {
  pod: string;
  /** The pod's security.kube-dc.com/encryption-config-hash annotation. */
  configHash?: string;
  sidecarReady: boolean;
  /** What its plugin publishes (probe port /key-id); undefined when it did not answer. */
  keyId?: string;
}

export function judgeRollout(input: {
  desiredHash: string;
  replicas: readonly ReplicaView[];
  kmsProvidersHealthy: boolean;
}): Rollout {
  const { replicas } = input;
  if (!replicas.length) return { ready: false, message: 'no control-plane pod is running yet' };
  const behind = replicas.filter((r) => r.configHash !== input.desiredHash);
  if (behind.length)
    return {
      ready: false,
      message: `${replicas.length - behind.length} of ${replicas.length} control-plane replicas run the current encryption config (waiting for ${behind.map((r) => r.pod).join(', ')})`,
    };
  const notReady = replicas.filter((r) => !r.sidecarReady);
  if (notReady.length)
    return { ready: false, message: `the kms-plugin sidecar is not ready on ${notReady.map((r) => r.pod).join(', ')}` };
  if (!input.kmsProvidersHealthy)
    return { ready: false, message: 'the tenant apiserver does not report its KMS provider healthy' };
  const silent = replicas.filter((r) => !r.keyId);
  if (silent.length)
    return {
      ready: false,
      message: `the kms-plugin on ${silent.map((r) => r.pod).join(', ')} has not published a key_id`,
    };
  const keyIds = [...new Set(replicas.map((r) => r.keyId!))];
  if (keyIds.length > 1)
    return {
      ready: false,
      message: `the replicas' plugins publish ${keyIds.length} different key_ids (a rotation is reaching them)`,
    };
  return { ready: true, keyIds };
}
