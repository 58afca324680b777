// A Kubernetes label selector as a release's CLUSTER_SELECTOR gives it (k8s.io/apimachinery
// labels.Parse): read at start-up, so a typo stops the process with what to fix instead of an
// informer whose every list the apiserver refuses; and its keys, which k8-manager copies from a
// KdcCluster onto the objects it makes so that the same selector picks those too (a shard's
// caches then follow its shard, not the platform).

export type SelectorOperator = 'exists' | 'notExists' | 'in' | 'notIn';

export interface SelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values: string[];
}

export interface LabelSelector {
  /** The selector as given (what the apiserver is sent). */
  text: string;
  requirements: SelectorRequirement[];
  /** The label keys it reads, sorted, each once. */
  keys: string[];
}

export class LabelSelectorError extends Error {
  readonly kind = 'labelSelector';
}

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function checkKey(key: string, selector: string): string {
  const slash = key.indexOf('/');
  const [prefix, name] = slash === -1 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)];
  const prefixOk = prefix === undefined || (prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix));
  if (!prefixOk || name.length > 63 || !NAME.test(name))
    throw new LabelSelectorError(
      `label selector "${selector}": "${key}" is not a label key (an optional DNS prefix and "/", then up to 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit)`,
    );
  return key;
}

function checkValue(value: string, selector: string): string {
  if (value !== '' && (value.length > 63 || !NAME.test(value)))
    throw new LabelSelectorError(
      `label selector "${selector}": "${value}" is not a label value (up to 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit)`,
    );
  return value;
}

/** The requirements of a selector, split at the commas that are not inside `in (...)`. */
function splitRequirements(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(selector.slice(start, i));
      start = i + 1;
    }
    if (depth < 0 || depth > 1) throw new LabelSelectorError(`label selector "${selector}": unbalanced parentheses`);
  }
  if (depth !== 0) throw new LabelSelectorError(`label selector "${selector}": unbalanced parentheses`);
  parts.push(selector.slice(start));
  return parts.map((p) => p.trim());
}

function parseRequirement(part: string, selector: string): SelectorRequirement {
  if (part === '')
    throw new LabelSelectorError(`label selector "${selector}": an empty requirement (two commas, or one at an end)`);
  if (/[<>]/.test(part))
    throw new LabelSelectorError(
      `label selector "${selector}": "${part}": < and > are not supported here; use =, !=, in or notin`,
    );
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
  if (set) {
    if (set[3]!.trim() === '')
      throw new LabelSelectorError(`label selector "${selector}": "${part}" lists no values; name at least one`);
    const values = set[3]!.split(',').map((v) => checkValue(v.trim(), selector));
    return { key: checkKey(set[1]!, selector), operator: set[2] === 'in' ? 'in' : 'notIn', values };
  }
  const equality = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
  if (equality) {
    const operator = equality[2] === '!=' ? 'notIn' : 'in';
    return { key: checkKey(equality[1]!, selector), operator, values: [checkValue(equality[3]!, selector)] };
  }
  if (part.startsWith('!')) return { key: checkKey(part.slice(1).trim(), selector), operator: 'notExists', values: [] };
  return { key: checkKey(part, selector), operator: 'exists', values: [] };
}

/** Parses a selector such as `shard=a`, `tier in (gold,silver),!legacy`; throws LabelSelectorError naming the fix. */
export function parseLabelSelector(text: string): LabelSelector {
  const trimmed = text.trim();
  const requirements = trimmed === '' ? [] : splitRequirements(trimmed).map((p) => parseRequirement(p, trimmed));
  return { text: trimmed, requirements, keys: [...new Set(requirements.map((r) => r.key))].sort() };
}

/**
 * The labels an object made for a cluster should carry so that `selector` picks it exactly when it
 * picks the cluster: the cluster's value of each key the selector reads, or null where the cluster
 * has none (a merge patch's "remove"). Empty for an unsharded release.
 */
export function shardLabels(
  selector: LabelSelector | undefined,
  clusterLabels: Record<string, string> | undefined,
): Record<string, string | null> {
  return Object.fromEntries((selector?.keys ?? []).map((key) => [key, clusterLabels?.[key] ?? null]));
}

/** The labels of `shardLabels` an object is created with (a null is a label it must not have). */
export function presentShardLabels(shard: Readonly<Record<string, string | null>> = {}): Record<string, string> {
  return Object.fromEntries(Object.entries(shard).filter((entry): entry is [string, string] => entry[1] !== null));
}
