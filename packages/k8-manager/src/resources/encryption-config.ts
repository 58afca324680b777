import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { kmsPluginSlot, kmsProviderNameFor, type PluginSlot } from '@kdc/shared';

// The EncryptionConfiguration file of one cluster (SPEC 3.4).

/**
 * Which resources are written through KMS and which are being decrypted. `encrypt`: `[kms,
 * identity]` (identity keeps rows written before readable). `decrypt`: `[identity, kms]` while
 * their rows are re-written to plaintext (the disable migration, or a resource dropped from the
 * spec); kms stays second so rows not re-written yet stay readable. Each resource has an entry and
 * a provider name of its own (kmsProviderNameFor), except `shared` ones: clusters configured before
 * names per resource wrote them all under the one name, so they stay in one entry.
 */
export interface Providers {
  encrypt: readonly string[];
  decrypt: readonly string[];
  shared?: readonly string[];
}

/** Above the plugin's own OpenBao timeout (2.5 s), so a slow OpenBao fails in the plugin first. */
export const KMS_PROVIDER_TIMEOUT = '3s';

/**
 * `slots`: the plugin instances the control plane runs, writer first (plugin-keys.ts). During a
 * key switch the second one only reads: its provider follows the writer's in every entry, so rows
 * under either key stay readable while only the first writes.
 */
export function buildEncryptionConfiguration(providers: Providers, slots: readonly PluginSlot[] = ['a']) {
  const kms = (name: string, slot: PluginSlot) => ({
    kms: { apiVersion: 'v2', name, endpoint: kmsPluginSlot(slot).endpoint, timeout: KMS_PROVIDER_TIMEOUT },
  });
  const identity = { identity: {} };
  const entries: { resources: string[]; providers: object[] }[] = [];
  const names = new Set<string>();
  const add = (resources: string[], nameIn: (slot: PluginSlot) => string, mode: 'encrypt' | 'decrypt') => {
    const plugins = slots.map((slot) => kms(nameIn(slot), slot));
    for (const {
      kms: { name },
    } of plugins) {
      // kube-apiserver refuses the whole file otherwise (duplicate KMS provider name), so never render it.
      if (names.has(name)) throw new Error(`KMS provider ${name} would be named in two entries`);
      names.add(name);
    }
    entries.push({ resources, providers: mode === 'encrypt' ? [...plugins, identity] : [identity, ...plugins] });
  };
  for (const [mode, list] of [
    ['encrypt', providers.encrypt],
    ['decrypt', providers.decrypt],
  ] as const) {
    const shared = list.filter((r) => providers.shared?.includes(r)).sort();
    if (shared.length) add(shared, (slot) => kmsPluginSlot(slot).sharedProviderName, mode);
    for (const r of list.filter((x) => !providers.shared?.includes(x)).sort())
      add([r], (slot) => kmsProviderNameFor(r, slot), mode);
  }
  return { apiVersion: 'apiserver.config.k8s.io/v1', kind: 'EncryptionConfiguration', resources: entries };
}

/**
 * Tenants share a handful of configurations, and every reconcile plans (twice) from one: rendering
 * YAML was 7% of k8-manager's CPU at steady state (500 tenants, profiled). Rendered once per
 * distinct input; the bound only guards against a pathological spread.
 */
const rendered = new Map<string, string>();
const RENDERED_MAX = 256;

export function renderEncryptionConfiguration(providers: Providers, slots?: readonly PluginSlot[]): string {
  const key = JSON.stringify([providers.encrypt, providers.decrypt, providers.shared ?? null, slots ?? null]);
  const hit = rendered.get(key);
  if (hit !== undefined) return hit;
  const text = stringify(buildEncryptionConfiguration(providers, slots));
  if (rendered.size >= RENDERED_MAX) rendered.clear();
  rendered.set(key, text);
  return text;
}

/** A stable digest of a Secret's data: key order does not matter. */
export function contentHash(data: Record<string, string>): string {
  const hash = createHash('sha256');
  for (const key of Object.keys(data).sort()) hash.update(`${key}\0${data[key]}\0`);
  return hash.digest('hex').slice(0, 32);
}
