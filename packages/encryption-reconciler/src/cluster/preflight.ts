import { createHash, randomBytes } from 'node:crypto';
import {
  OPENBAO_AUDIENCE,
  requestServiceAccountToken,
  OPENBAO_K8S_AUTH_MOUNT,
  clusterNames,
  isOpenBaoError,
  openBaoAccessNames,
  type KubeClient,
  type OpenBaoClient,
  at,
  RESOURCES,
} from '@kdc/shared';
import type { DesiredAccess } from './access.ts';

export interface PreflightResult {
  ok: boolean;
  reason: string;
  message: string;
}

/** Changes whenever anything the pre-flight proved could have changed. */
export function accessFingerprint(namespace: string, cluster: string, access: DesiredAccess): string {
  return createHash('sha256')
    .update(JSON.stringify([namespace, cluster, access]))
    .digest('hex')
    .slice(0, 12);
}

/**
 * Proves the chain the plugin will use, with its real credentials: a TokenRequest for the
 * plugin's ServiceAccount (audience openbao), a login to its role, an encrypt/decrypt probe and
 * a key read; and that rotation is denied (asked of OpenBao's capabilities endpoint, so a
 * mistaken grant never rotates anybody's key).
 */
export async function runPreflight(input: {
  kube: KubeClient;
  anonymous: OpenBaoClient;
  namespace: string;
  cluster: string;
  access: DesiredAccess;
  fingerprint: string;
}): Promise<PreflightResult> {
  const names = clusterNames(input.cluster);
  const key = input.access.etcdTransitKey;
  const role = openBaoAccessNames(input.namespace, input.cluster).pluginRole;
  const sa = await input.kube.getOrNull(at(RESOURCES.serviceAccount, input.namespace, names.kmsPluginServiceAccount));
  if (!sa)
    return {
      ok: false,
      reason: 'ServiceAccountMissing',
      message: `ServiceAccount ${names.kmsPluginServiceAccount} does not exist yet (k8-manager creates it)`,
    };
  const jwt = await requestServiceAccountToken(
    input.kube,
    input.namespace,
    names.kmsPluginServiceAccount,
    [OPENBAO_AUDIENCE],
    600,
  );
  let client: OpenBaoClient;
  try {
    const login = await input.anonymous.loginKubernetes(OPENBAO_K8S_AUTH_MOUNT, role, jwt);
    client = input.anonymous.withToken(login.clientToken);
  } catch (error) {
    return {
      ok: false,
      reason: 'LoginFailed',
      message: `login to ${OPENBAO_K8S_AUTH_MOUNT} role ${role} as ${names.kmsPluginServiceAccount} failed: ${statusOf(error)}`,
    };
  }
  try {
    const probe = randomBytes(32);
    let step = 'encrypt';
    try {
      const ct = await client.transit().encrypt(key, probe);
      step = 'decrypt';
      const back = await client.transit().decrypt(key, ct.ciphertext);
      if (!back.equals(probe))
        return { ok: false, reason: 'ProbeMismatch', message: `decrypting the probe with ${key} returned other data` };
      step = 'read';
      if (!(await client.transit().readKey(key)))
        return { ok: false, reason: 'KeyMissing', message: `Transit key ${key} does not exist` };
    } catch (error) {
      const reason = isOpenBaoError(error, 'denied') ? 'CapabilityMissing' : 'ProbeFailed';
      return { ok: false, reason, message: `${step} on transit key ${key} failed: ${statusOf(error)}` };
    }
    const rotatePath = `transit/keys/${key}/rotate`;
    const caps = await client.request<{ capabilities?: string[]; [path: string]: unknown }>(
      'POST',
      'sys/capabilities-self',
      { paths: [rotatePath] },
    );
    const granted = (caps[rotatePath] as string[] | undefined) ?? caps.capabilities ?? [];
    if (!granted.includes('deny'))
      return {
        ok: false,
        reason: 'RotateAllowed',
        message: `the plugin's token may ${granted.join(',')} ${rotatePath}: its policy must never allow rotation`,
      };
    return {
      ok: true,
      reason: 'PreflightSucceeded',
      message: `login, encrypt/decrypt and key read with ${key} work; rotate is denied (access ${input.fingerprint})`,
    };
  } finally {
    await client.revokeSelf().catch(() => undefined);
  }
}

function statusOf(error: unknown): string {
  if (isOpenBaoError(error))
    return error.status ? `HTTP ${error.status} ${error.errors.join('; ').slice(0, 200)}` : 'OpenBao unreachable';
  return (error as Error).message.slice(0, 200);
}
