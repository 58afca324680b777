// kubectl kdc keys adopt <kmskey> --transit-key <name>: a platform admin hands an existing
// Transit key to a KMSKey (an import, or a KMSKey re-created after `retain`). The KMSKey controller
// never adopts a key by itself; this writes the ownership record it trusts, with the admin's own
// OpenBao token (a tenant has none). Dry run unless --confirm.
import {
  OwnershipRegistry,
  kmsKeySpecSchema,
  legacyTransitKeyName,
  rfc3339,
  transitKeyName,
  type OwnerRecord,
  type TransitKeyOwner,
} from '@kdc/shared';
import { bool, str, type CommandSpec, type ParsedArgs } from '../terminal/args.ts';
import type { CommandContext } from '../context.ts';
import { failure, usageError } from '../errors.ts';
import { KUBE_FLAGS, getKmsKey, kubeAccess } from '../clients/kube.ts';
import { OPENBAO_FLAGS, openBaoFailure, openBaoFor, openBaoSettings } from '../clients/openbao.ts';

export const spec: CommandSpec = {
  name: 'keys adopt',
  positionals: ['kmskey'],
  summary:
    'Hands an existing Transit key to a KMSKey (platform admins only: needs an OpenBao token that may write the kdc/ ownership records). The KMSKey then uses that key as its own; whoever held it before loses it. Dry run unless --confirm.',
  flags: {
    ...KUBE_FLAGS,
    ...OPENBAO_FLAGS,
    'transit-key': {
      type: 'string',
      value: 'name',
      help: 'the Transit key to hand over (required): <namespace>.<kmskey>, or <namespace>-<kmskey> for a key of the first naming scheme',
    },
    confirm: { type: 'boolean', help: 'write the ownership record (without it: only say what would change)' },
  },
};

/** What the hand-over changes, in words; pure. */
export function describeHandOver(transitKey: string, current: OwnerRecord | null, next: TransitKeyOwner): string {
  const from = current
    ? `KMSKey ${current.owner.namespace}/${current.owner.kmsKey} (uid ${current.owner.uid}, ${current.owner.origin})`
    : 'nobody (no ownership record)';
  return `Transit key ${transitKey}: owner ${from} -> KMSKey ${next.namespace}/${next.kmsKey} (uid ${next.uid}), purpose ${next.purpose}`;
}

export async function execute(args: ParsedArgs, ctx: CommandContext): Promise<number> {
  const transitKey = str(args.flags, 'transit-key');
  if (!transitKey) throw usageError('--transit-key <name> is required: the Transit key to hand over');
  const bao = openBaoSettings(args.flags, ctx.env);
  const { kube, namespace } = kubeAccess(args.flags, ctx.env);
  const name = args.positionals.kmskey!;
  // A KMSKey only ever looks under its two names (names.ts): a key elsewhere could not be used.
  const usable = [transitKeyName(namespace, name), legacyTransitKeyName(namespace, name)];
  if (!usable.includes(transitKey))
    throw usageError(`KMSKey ${namespace}/${name} can only use Transit key ${usable.join(' or ')}, not ${transitKey}`);
  const object = await getKmsKey(kube, namespace, name);
  const parsed = kmsKeySpecSchema.safeParse(object.spec ?? {});
  if (!parsed.success)
    throw failure(
      `KMSKey ${namespace}/${name} has an invalid spec: fix it first (kubectl describe kkey ${name} -n ${namespace})`,
    );
  const { client, namespaceLabel } = await openBaoFor(kube, namespace, bao);
  let current: OwnerRecord | null;
  try {
    if (!(await client.transit().readKey(transitKey)))
      throw failure(
        `Transit key ${transitKey} does not exist in the ${namespaceLabel}: check the name and --openbao-namespace`,
      );
    current = await new OwnershipRegistry(client).read(transitKey);
  } catch (error) {
    if (error instanceof Error && error.name === 'CliError') throw error;
    throw openBaoFailure(`reading Transit key ${transitKey} and its owner`, error);
  }
  const next: TransitKeyOwner = {
    namespace,
    kmsKey: name,
    uid: object.metadata!.uid!,
    purpose: current?.owner.purpose ?? parsed.data.purpose,
    origin: 'adopted',
    claimedAt: rfc3339(ctx.now()),
  };
  if (current && current.owner.purpose !== parsed.data.purpose) {
    throw failure(
      `Transit key ${transitKey} was created for purpose ${current.owner.purpose}, KMSKey ${name} asks for ${parsed.data.purpose}: a key never changes purpose; set the KMSKey's spec.purpose to ${current.owner.purpose} first`,
    );
  }
  if (current?.owner.uid === next.uid) {
    ctx.io.out(`Transit key ${transitKey} already belongs to KMSKey ${namespace}/${name}: nothing to do\n`);
    return 0;
  }
  ctx.io.out(`${describeHandOver(transitKey, current, next)}\n`);
  if (!bool(args.flags, 'confirm')) {
    ctx.io.out('dry run: nothing written (add --confirm)\n');
    return 0;
  }
  try {
    await new OwnershipRegistry(client).handOver(transitKey, next, current?.version ?? 0);
  } catch (error) {
    throw openBaoFailure(
      `writing the ownership record of ${transitKey} (it may have changed meanwhile: run the command again)`,
      error,
    );
  }
  ctx.io.out(
    `done: KMSKey ${namespace}/${name} owns Transit key ${transitKey}; its controller picks it up on the next reconcile\n`,
  );
  return 0;
}
