import { z } from 'zod';
import type { OpenBaoClient } from './client.ts';
import { isOpenBaoError } from './errors.ts';

// Who owns a Transit key, kept where OpenBao keeps the key (SPEC 3.3 tenant isolation). A tenant
// can edit every annotation and, without the platform's RBAC, every status of its objects, so the
// fact "this Transit key was created for KMSKey <namespace>/<name> with uid <uid>" lives in a KV v2
// record next to the key, in the same OpenBao namespace, written by the controller only.
//
// The first write uses check-and-set 0: of two controllers (or two KMSKeys) racing for one name,
// exactly one succeeds; the record is written BEFORE the key, so a key without a record was never
// created by the platform for anybody and is never adopted. Handing a key to another KMSKey (an
// import, or a KMSKey re-created after `retain`) is a platform admin's act (`kubectl kdc keys adopt`).

/** KV v2 mount, beside `transit/`, in every OpenBao namespace the platform uses. */
export const OWNERSHIP_MOUNT = 'kdc';
const TRANSIT_PREFIX = 'owners/transit';

export const transitKeyOwnerSchema = z.object({
  namespace: z.string().min(1),
  kmsKey: z.string().min(1),
  uid: z.string().min(1),
  /** The purpose the key was created for: it never changes (a tenant-edited spec cannot re-purpose it). */
  purpose: z.string().min(1),
  /** created: made by the controller for this KMSKey; legacy: a pre-namespacing key proven to be this KMSKey's; adopted: an admin's hand-over. */
  origin: z.enum(['created', 'legacy', 'adopted']),
  /** RFC 3339: when the record was written. Rotation of a legacy or adopted key is timed from here at the earliest. */
  claimedAt: z.string(),
});

export type TransitKeyOwner = z.infer<typeof transitKeyOwnerSchema>;

export interface OwnerRecord {
  owner: TransitKeyOwner;
  /** KV version of the record: the check-and-set value for a hand-over. */
  version: number;
}

export type ClaimResult = { claimed: true } | { claimed: false; current: OwnerRecord | null };

export class OwnershipError extends Error {
  readonly kind = 'malformed-record';
  constructor(message: string) {
    super(message);
    this.name = 'OwnershipError';
  }
}

/** The ownership records of one OpenBao namespace (the client's). */
export class OwnershipRegistry {
  private readonly bao: OpenBaoClient;
  private readonly mount: string;

  constructor(bao: OpenBaoClient, mount = OWNERSHIP_MOUNT) {
    this.bao = bao;
    this.mount = mount;
  }

  private data(transitKey: string) {
    return `${this.mount}/data/${TRANSIT_PREFIX}/${transitKey}`;
  }

  async read(transitKey: string): Promise<OwnerRecord | null> {
    const response = await this.bao.readOrNull<{ data?: { data?: unknown; metadata?: { version?: number } } }>(
      this.data(transitKey),
    );
    if (!response?.data?.data) return null;
    const parsed = transitKeyOwnerSchema.safeParse(response.data.data);
    // A record the platform did not write in this shape names no owner anyone may act for.
    if (!parsed.success)
      throw new OwnershipError(
        `ownership record of Transit key ${transitKey} is malformed: a platform admin must fix or remove ${this.data(transitKey)}`,
      );
    return { owner: parsed.data, version: Number(response.data.metadata?.version ?? 0) };
  }

  /** Records `owner` only if no record exists (check-and-set 0). */
  async claim(transitKey: string, owner: TransitKeyOwner): Promise<ClaimResult> {
    try {
      await this.bao.request('POST', this.data(transitKey), { options: { cas: 0 }, data: owner });
      return { claimed: true };
    } catch (error) {
      if (!isCasMismatch(error)) throw error;
      return { claimed: false, current: await this.read(transitKey) };
    }
  }

  /** Replaces the record at `version` (an admin's hand-over); fails if it changed meanwhile. */
  async handOver(transitKey: string, owner: TransitKeyOwner, version: number): Promise<void> {
    await this.bao.request('POST', this.data(transitKey), { options: { cas: version }, data: owner });
  }

  /** Removes every version of the record (after the key itself is destroyed). */
  async release(transitKey: string): Promise<void> {
    await this.bao.request('DELETE', `${this.mount}/metadata/${TRANSIT_PREFIX}/${transitKey}`);
  }

  async list(): Promise<string[]> {
    const response = await this.bao.readOrNull<{ data?: { keys?: string[] } }>(
      `${this.mount}/metadata/${TRANSIT_PREFIX}?list=true`,
    );
    return response?.data?.keys ?? [];
  }
}

function isCasMismatch(error: unknown): boolean {
  return isOpenBaoError(error, 'invalid') && error.errors.some((e) => e.includes('check-and-set'));
}

/** Whether `mounts` (sys/mounts) has the registry as a KV version 2 engine. */
export function ownershipMountReady(
  mounts: Record<string, { type: string; options?: Record<string, string> | null }>,
  mount = OWNERSHIP_MOUNT,
): boolean {
  const m = mounts[`${mount}/`];
  return m?.type === 'kv' && m.options?.version === '2';
}

/** Enables the registry mount (KV version 2) in the client's namespace. */
export async function enableOwnershipMount(bao: OpenBaoClient, mount = OWNERSHIP_MOUNT): Promise<void> {
  await bao.request('POST', `sys/mounts/${mount}`, {
    type: 'kv',
    options: { version: '2' },
    description: 'kube-dc: who owns each Transit key',
  });
}
