import { Agent as HttpsAgent } from 'node:https';
import { TenantRequestError, type TenantApiClient } from '@kdc/shared';

// Re-writing rows the way kube-storage-version-migrator does: list a page through the tenant's
// own apiserver, then write every object back unchanged with its resourceVersion. The apiserver
// stores it through its current write provider, so the row comes back encrypted under the
// current key_id. A conflict means somebody wrote the object meanwhile, through the same
// provider: nothing left to do for it. Values pass through memory only; nothing is logged.

export const MIGRATED_RESOURCES = { secrets: 'Secret', configmaps: 'ConfigMap' } as const;
export type MigratedResource = keyof typeof MIGRATED_RESOURCES;

export interface RewritePage {
  rewritten: number;
  /** Gone or written by somebody else meanwhile. */
  skipped: number;
  /** Refused for another reason (the next scan finds them; the next pass tries again). */
  failed: number;
  /** The list's continue token; absent after the last page. */
  continue?: string;
  /** The first re-written row was not stored under the current key_id: the page stopped there. */
  halted?: boolean;
}

/** The list's continue token expired (410): the resource is walked again from its start. */
export class ContinueExpiredError extends Error {
  readonly kind = 'continue-expired';
  constructor() {
    super('the list continue token expired');
    this.name = 'ContinueExpiredError';
  }
}

export class RewriteError extends Error {
  readonly kind = 'list-failed';
  constructor(message: string) {
    super(message);
    this.name = 'RewriteError';
  }
}

/** At most `perSecond` writes a second, with bursts of at most one second's worth (GCRA). */
export class Pacer {
  private readonly intervalMs: number;
  private readonly burstMs: number;
  private theoretical = 0;
  constructor(perSecond: number) {
    this.intervalMs = 1000 / Math.max(1, perSecond);
    this.burstMs = 1000 - this.intervalMs;
  }
  async take(): Promise<void> {
    const now = performance.now();
    this.theoretical = Math.max(this.theoretical, now) + this.intervalMs;
    const wait = this.theoretical - now - this.burstMs;
    if (wait >= 1) await new Promise((resolve) => setTimeout(resolve, Math.ceil(wait)));
  }
}

interface ListedObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  [key: string]: unknown;
}

const PAGE_BYTES = 48 * 2 ** 20;
const OBJECT_BYTES = 4 * 2 ** 20;

export async function rewritePage(
  client: TenantApiClient,
  resource: MigratedResource,
  token: string | undefined,
  options: {
    limit: number;
    timeoutMs: number;
    pacer: Pacer;
    /** Writes in flight at once (default 4). */
    concurrency?: number;
    /**
     * Asked after the page's first successful write: is that row now stored under the current
     * key_id? kube-apiserver adopts a new key_id on its own schedule (about a minute after the
     * plugin publishes it); until it does, re-writing more rows would change nothing.
     */
    verifyFirst?: (namespace: string, name: string) => Promise<boolean>;
  },
): Promise<RewritePage> {
  // One keep-alive agent per page: a few connections carry the whole page instead of one TLS
  // handshake per object, and nothing stays open between pages.
  const agent = new HttpsAgent({ keepAlive: true, maxSockets: options.concurrency ?? 4 });
  try {
    const query = new URLSearchParams({ limit: String(options.limit), ...(token ? { continue: token } : {}) });
    const listed = await client.request('GET', `/api/v1/${resource}?${query.toString()}`, {
      timeoutMs: options.timeoutMs,
      maxBytes: PAGE_BYTES,
      agent,
    });
    if (listed.status === 410) throw new ContinueExpiredError();
    if (listed.status !== 200) throw new RewriteError(`listing ${resource} answered HTTP ${listed.status}`);
    const page = JSON.parse(listed.body) as { metadata?: { continue?: string }; items?: ListedObject[] };
    const result: RewritePage = {
      rewritten: 0,
      skipped: 0,
      failed: 0,
      ...(page.metadata?.continue ? { continue: page.metadata.continue } : {}),
    };
    const items = page.items ?? [];
    const write = async (item: ListedObject): Promise<'rewritten' | 'skipped' | 'failed'> => {
      const { name, namespace } = item.metadata ?? {};
      if (!name || !namespace) return 'failed';
      await options.pacer.take();
      const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/${resource}/${encodeURIComponent(name)}`;
      try {
        const written = await client.request('PUT', path, {
          body: { ...item, apiVersion: 'v1', kind: MIGRATED_RESOURCES[resource] },
          timeoutMs: options.timeoutMs,
          maxBytes: OBJECT_BYTES,
          agent,
        });
        return written.status === 200
          ? 'rewritten'
          : written.status === 409 || written.status === 404
            ? 'skipped'
            : 'failed';
      } catch (error) {
        if (!(error instanceof TenantRequestError)) throw error;
        return 'failed';
      }
    };
    // The first object alone, and checked, before the rest of the page goes in parallel.
    let next = 0;
    while (next < items.length && result.rewritten === 0) {
      const item = items[next++]!;
      const outcome = await write(item);
      result[outcome]++;
      if (
        outcome === 'rewritten' &&
        options.verifyFirst &&
        !(await options.verifyFirst(item.metadata!.namespace!, item.metadata!.name!))
      ) {
        const { continue: _notYet, ...halted } = result;
        return { ...halted, halted: true };
      }
    }
    const workers = Array.from({ length: options.concurrency ?? 4 }, async () => {
      while (next < items.length) result[await write(items[next++]!)]++;
    });
    await Promise.all(workers);
    return result;
  } finally {
    agent.destroy();
  }
}
