import { type PolicyRule, renderPolicy, transitKeyName, OPENBAO_TRANSIT_MOUNT } from '@kdc/shared';

// The OpenBao ACL policies the platform writes per encrypted cluster (SPEC 3.3), as pure
// functions of the cluster's resolved keys. Least privilege: the plugin may only encrypt and
// decrypt with its own key, read that key and look itself up; never rotate or configure.

export function kmsPluginPolicyRules(projectNamespace: string, kmsKey: string, mount = OPENBAO_TRANSIT_MOUNT): PolicyRule[] {
  const key = transitKeyName(projectNamespace, kmsKey);
  return [
    { path: `${mount}/encrypt/${key}`, capabilities: ['update'] },
    { path: `${mount}/decrypt/${key}`, capabilities: ['update'] },
    { path: `${mount}/keys/${key}`, capabilities: ['read'] },
    { path: 'auth/token/lookup-self', capabilities: ['read'] },
  ];
}

/** The backup writer: fresh data keys, unwrap for restore, rewrap after rotation. */
export function backupWriterPolicyRules(projectNamespace: string, kmsKey: string, mount = OPENBAO_TRANSIT_MOUNT): PolicyRule[] {
  const key = transitKeyName(projectNamespace, kmsKey);
  return [
    { path: `${mount}/datakey/plaintext/${key}`, capabilities: ['update'] },
    { path: `${mount}/decrypt/${key}`, capabilities: ['update'] },
    { path: `${mount}/rewrap/${key}`, capabilities: ['update'] },
    { path: `${mount}/keys/${key}`, capabilities: ['read'] },
    { path: 'auth/token/lookup-self', capabilities: ['read'] },
  ];
}

export const kmsPluginPolicy = (projectNamespace: string, kmsKey: string) => renderPolicy(kmsPluginPolicyRules(projectNamespace, kmsKey));
export const backupWriterPolicy = (projectNamespace: string, kmsKey: string) => renderPolicy(backupWriterPolicyRules(projectNamespace, kmsKey));
