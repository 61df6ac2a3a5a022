/**
 * The STS subset Wharf serves: GetCallerIdentity, so `aws sts get-caller-identity` says who a key
 * belongs to, and GetSessionToken, which hands out short-lived credentials acting as the caller
 * (lib/session-token.ts makes them; server/session-auth.ts accepts them). Both read only the
 * authenticated caller, in no region's state.
 */
import { WharfError } from '../core/errors';
import type { IssuedSession } from '../lib';
import type { Caller } from './context';

export const STS_SIGNING_NAME = 'sts';

export type StsHandler = (input: Record<string, unknown>, caller: Caller) => Promise<unknown>;

/** Issues session credentials for a long-term key (cmd/server.ts binds it to the key table). */
export type SessionIssuer = (parentAccessKeyId: string, durationSeconds: number) => IssuedSession;

/**
 * GetSessionToken's durations, as STS documents them: 900 s to 129,600 s (36 hours) for IAM users,
 * 43,200 s (12 hours) by default; the account's root is held to 3,600 s, its default, and a longer
 * request is cut to one hour rather than refused.
 */
export const SESSION_DURATION = { min: 900, max: 129_600, userDefault: 43_200, rootMax: 3_600 } as const;

/** AWS's validation wording; STS names members in camel case ('durationSeconds'). */
function durationOutOfRange(value: number, rule: string): WharfError {
  return new WharfError('ValidationError', `1 validation error detected: Value '${value}' at 'durationSeconds' failed to satisfy constraint: Member must have value ${rule}`);
}

/** The duration a session is issued for, given what the caller asked. */
export function sessionDuration(requested: unknown, isRoot: boolean): number {
  if (requested === undefined) return isRoot ? SESSION_DURATION.rootMax : SESSION_DURATION.userDefault;
  const d = Number(requested);
  if (!Number.isInteger(d)) throw new WharfError('ValidationError', `1 validation error detected: Value '${String(requested)}' at 'durationSeconds' failed to satisfy constraint: Member must be an integer`);
  if (d < SESSION_DURATION.min) throw durationOutOfRange(d, `greater than or equal to ${SESSION_DURATION.min}`);
  if (d > SESSION_DURATION.max) throw durationOutOfRange(d, `less than or equal to ${SESSION_DURATION.max}`);
  return isRoot ? Math.min(d, SESSION_DURATION.rootMax) : d;
}

export function stsHandlers(accountId: string, issueSession?: SessionIssuer): Record<string, StsHandler> {
  return {
    // As STS answers: a user's unique id (AIDA...), the account id for the root, and for other
    // holders (agents' keys) the access key id. A session answers as the user it acts for, as STS
    // does for GetSessionToken's sessions.
    GetCallerIdentity: async (_input, caller) => ({
      UserId: caller.userId ?? (caller.principal?.iamResource === 'root' ? accountId : caller.accessKeyId),
      Account: accountId,
      Arn: caller.principalArn,
    }),
    // No policy can allow or deny it (IAM: "You cannot use policies to control authentication
    // operations"), so it has no IAM check (server/wharf-apis.ts). Only long-term keys may call it.
    GetSessionToken: async (input, caller) => {
      if (caller.session) throw new WharfError('AccessDenied', 'Cannot call GetSessionToken with session credentials');
      if (!issueSession) throw new WharfError('UnsupportedFeatureException', 'Wharf does not implement GetSessionToken on this server.');
      // Wharf has no MFA devices: a code it cannot check must not look accepted.
      if (input.SerialNumber !== undefined || input.TokenCode !== undefined) {
        throw new WharfError('AccessDenied', 'MultiFactorAuthentication failed: Wharf has no MFA devices, so SerialNumber and TokenCode cannot be verified.');
      }
      const duration = sessionDuration(input.DurationSeconds, caller.principal?.iamResource === 'root');
      const s = issueSession(caller.accessKeyId, duration);
      return { Credentials: { AccessKeyId: s.accessKeyId, SecretAccessKey: s.secretAccessKey, SessionToken: s.sessionToken, Expiration: s.expiration } };
    },
  };
}
