import { type PolicyRule, renderPolicy, OPENBAO_TRANSIT_MOUNT } from '@kdc/shared';

// The OpenBao ACL policies the platform writes per encrypted cluster (SPEC 3.3), as pure
// functions of the Transit keys the cluster was proven to own. Least privilege: the plugin may
// only encrypt and decrypt with its own key, read that key and look itself up; never rotate or
// configure.

/** `transitKeys`: one key; two while a key switch runs both plugin instances (plugin-keys.ts). */
export function kmsPluginPolicyRules(
  transitKeys: string | readonly string[],
  { mount = OPENBAO_TRANSIT_MOUNT }: { mount?: string } = {},
): PolicyRule[] {
  const keys = typeof transitKeys === 'string' ? [transitKeys] : transitKeys;
  return [
    ...keys.flatMap((transitKey): PolicyRule[] => [
      { path: `${mount}/encrypt/${transitKey}`, capabilities: ['update'] },
      { path: `${mount}/decrypt/${transitKey}`, capabilities: ['update'] },
      { path: `${mount}/keys/${transitKey}`, capabilities: ['read'] },
    ]),
    { path: 'auth/token/lookup-self', capabilities: ['read'] },
  ];
}

/** The backup writer: fresh data keys, unwrap for restore, rewrap after rotation. */
export function backupWriterPolicyRules(
  transitKey: string,
  { mount = OPENBAO_TRANSIT_MOUNT }: { mount?: string } = {},
): PolicyRule[] {
  return [
    { path: `${mount}/datakey/plaintext/${transitKey}`, capabilities: ['update'] },
    { path: `${mount}/decrypt/${transitKey}`, capabilities: ['update'] },
    { path: `${mount}/rewrap/${transitKey}`, capabilities: ['update'] },
    { path: `${mount}/keys/${transitKey}`, capabilities: ['read'] },
    { path: 'auth/token/lookup-self', capabilities: ['read'] },
  ];
}

export const kmsPluginPolicy = (transitKeys: string | readonly string[]) =>
  renderPolicy(kmsPluginPolicyRules(transitKeys));
export const backupWriterPolicy = (transitKey: string) => renderPolicy(backupWriterPolicyRules(transitKey));
