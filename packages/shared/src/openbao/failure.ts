import { OpenBaoError } from './errors.ts';

// What an OpenBao failure means for the objects a controller reconciles: a condition reason
// and a message that says what to do. A refusal of the controller's own token (expired,
// revoked, renewal refused) is the operator's to fix, and says where the token comes from.

/** Why OpenBao no longer accepts the controller's token, and where an operator replaces it. */
export interface TokenRejection {
  /** e.g. "its TTL ran out", "it was revoked or is unknown to OpenBao". */
  why: string;
  /** e.g. "the Secret kube-dc-system/kdc-openbao-token (key token)". Never the token. */
  replace: string;
}

/** A token that can change while the process runs (renewed, re-read from a rotated Secret). */
export interface TokenProvider {
  token(): string | undefined;
  /** After a 401/403: checks the token itself; a rejection when it is the token, not the policy. */
  refused(): Promise<TokenRejection | undefined>;
  /** What is known now, without asking OpenBao: the token's rejection, if it was refused. */
  rejected(): TokenRejection | undefined;
}

type OpenBaoErrorInput = ConstructorParameters<typeof OpenBaoError>[0];

/** A 401/403 whose cause is the token itself, not a missing capability. */
export class OpenBaoTokenRejectedError extends OpenBaoError {
  readonly rejection: TokenRejection;

  constructor(input: OpenBaoErrorInput & { rejection: TokenRejection }) {
    super(input);
    this.name = 'OpenBaoTokenRejectedError';
    this.rejection = input.rejection;
  }
}

export type OpenBaoFailureReason =
  'OpenBaoUnavailable' | 'OpenBaoSealed' | 'OpenBaoTokenRejected' | 'OpenBaoPermissionDenied' | 'OpenBaoError';

export interface OpenBaoFailure {
  reason: OpenBaoFailureReason;
  message: string;
  /** The controller's own credentials: only an operator can fix it (an outage passes by itself). */
  credentials: boolean;
}

export const CONTROLLER_POLICY_FILE = 'charts/kdc-encryption/files/encryption-reconciler-policy.hcl';
const RETRY = 'retrying with backoff';

/**
 * Pure: the condition for an OpenBao error met while reconciling. No timestamps or changing
 * numbers in the message: a repeated failure must not rewrite status (and trigger a reconcile).
 */
export function openBaoFailure(error: OpenBaoError, actor = 'the encryption-reconciler'): OpenBaoFailure {
  const out = (reason: OpenBaoFailureReason, message: string, credentials = false): OpenBaoFailure => ({
    reason,
    message: message.slice(0, 1000),
    credentials,
  });
  if (error instanceof OpenBaoTokenRejectedError) {
    const { why, replace } = error.rejection;
    return out(
      'OpenBaoTokenRejected',
      `${actor}'s OpenBao token was refused (${error.status}): ${why}; put a valid token with the controller policy into ${replace} (no restart needed); ${RETRY}`,
      true,
    );
  }
  switch (error.kind) {
    case 'unavailable':
      return out('OpenBaoUnavailable', `OpenBao is unreachable; ${RETRY}`);
    case 'sealed':
      return out('OpenBaoSealed', `${error.message}; OpenBao is sealed or in maintenance; ${RETRY}`);
    case 'denied':
      return out(
        'OpenBaoPermissionDenied',
        `${error.message}: ${actor}'s OpenBao token is valid but its policy does not allow this; give the token the policy in ${CONTROLLER_POLICY_FILE}; ${RETRY}`,
        true,
      );
    default:
      return out('OpenBaoError', `${error.message}; ${RETRY}`);
  }
}
