// `k8-manager check-leases --lease=<name>...`: what the chart's `helm test` pod runs. A controller
// answers when a replica holds its Lease and renews it. Renewals are seen as the Lease changing
// between two reads (its resourceVersion), never by comparing renewTime, written by another
// machine's clock, with ours.
import { parseArgs } from 'node:util';
import { KubeClient, leaseRef, type KubeObject } from '@kdc/shared';

type Lease = KubeObject & { spec?: { holderIdentity?: string; leaseDurationSeconds?: number } };

export interface LeaseVerdict {
  lease: string;
  ok: boolean;
  message: string;
}

export async function checkLease(
  kube: Pick<KubeClient, 'getOrNull'>,
  namespace: string,
  name: string,
  sleep: (ms: number) => Promise<void>,
  pollMs = 1000,
): Promise<LeaseVerdict> {
  const first = await kube.getOrNull<Lease>(leaseRef(namespace, name));
  if (!first)
    return {
      lease: name,
      ok: false,
      message: `no Lease ${namespace}/${name}: the controller never ran here, or runs with another LEASE_NAME`,
    };
  const waitMs = ((first.spec?.leaseDurationSeconds ?? 15) + 5) * 1000;
  for (let waited = 0; waited <= waitMs; waited += pollMs) {
    await sleep(pollMs);
    const now = await kube.getOrNull<Lease>(leaseRef(namespace, name));
    if (!now) return { lease: name, ok: false, message: `Lease ${namespace}/${name} was deleted while being checked` };
    const holder = now.spec?.holderIdentity;
    if (holder && now.metadata?.resourceVersion !== first.metadata?.resourceVersion)
      return { lease: name, ok: true, message: `${name}: held by ${holder} and renewed` };
  }
  const holder = first.spec?.holderIdentity;
  return {
    lease: name,
    ok: false,
    message: holder
      ? `${name}: held by ${holder} but not renewed for ${waitMs / 1000} s: that replica is stuck or gone, and no other took over`
      : `${name}: no replica holds the Lease: none is running, or none can reach the apiserver`,
  };
}

export const CHECK_LEASES_HELP = `k8-manager check-leases --lease=<name> [--lease=<name>...] [--namespace=<ns>]
  Exit 0 when every named Lease is held and renewed (each controller answers), 1 naming the ones that are not.
  --namespace defaults to POD_NAMESPACE.
`;

export function parseCheckLeases(
  argv: string[],
  env: Record<string, string | undefined>,
): { ok: true; namespace: string; leases: string[] } | { ok: false; error: string } {
  try {
    const { values } = parseArgs({
      args: argv,
      options: { lease: { type: 'string', multiple: true }, namespace: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    });
    const namespace = values.namespace ?? env.POD_NAMESPACE;
    if (!values.lease?.length) return { ok: false, error: 'check-leases: name at least one --lease' };
    if (!namespace)
      return { ok: false, error: 'check-leases: --namespace is required outside a pod (POD_NAMESPACE is not set)' };
    return { ok: true, namespace, leases: values.lease };
  } catch (error) {
    return { ok: false, error: `check-leases: ${(error as Error).message.split('\n')[0]}` };
  }
}

/** The subcommand: every Lease checked at once; exit code 0, 1 (a controller does not answer) or 2 (bad flags). */
export async function checkLeasesMain(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    process.stdout.write(CHECK_LEASES_HELP);
    return 0;
  }
  const parsed = parseCheckLeases(argv, process.env);
  if (!parsed.ok) {
    process.stderr.write(`k8-manager ${parsed.error}\n`);
    return 2;
  }
  const kube = KubeClient.fromDefault();
  kube.requestTimeoutMs = 10_000;
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
  const verdicts = await Promise.all(
    parsed.leases.map((name) =>
      checkLease(kube, parsed.namespace, name, sleep).catch((error: unknown) => ({
        lease: name,
        ok: false,
        message: `${name}: cannot read its Lease: ${(error as Error).message}`,
      })),
    ),
  );
  for (const v of verdicts) process.stdout.write(`${v.ok ? 'ok' : 'FAIL'}  ${v.message}\n`);
  return verdicts.every((v) => v.ok) ? 0 : 1;
}
