/**
 * The global condition keys (`aws:*`) Wharf puts in the context of every request it checks against
 * an identity policy, and the check that a policy names only keys Wharf supplies.
 *
 * Each key here is one Wharf knows truthfully, as IAM defines it ("AWS global condition context
 * keys"); keys Wharf cannot know (aws:ResourceTag/..., aws:SourceVpc, aws:MultiFactorAuthAge, ...)
 * are left out, and a policy naming one is refused when the user is created, because such a
 * condition would silently act as if the key were absent on every call. Service keys (ecs:cluster,
 * ecs:CreateAction) are supplied by control/iam-resources.ts beside the action and resources.
 *
 *   aws:RequestedRegion        the region of the request's SigV4 credential scope
 *   aws:SecureTransport        'true' on a TLS listener, 'false' on plain HTTP
 *   aws:CurrentTime            ISO 8601 (2024-05-01T12:00:00Z), aws:EpochTime in seconds
 *   aws:SourceIp               the peer address of the connection (no proxy headers are trusted)
 *   aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType ('User' or 'Account'),
 *   aws:username (users), aws:userid (the user's AIDA... id; the account id for the root)
 *   aws:TokenIssueTime, aws:MultiFactorAuthPresent ('false')   session credentials only, as in
 *                              IAM, where both are absent for long-term access keys
 *   aws:ViaAWSService, aws:PrincipalIsAWSService   always 'false': no AWS service calls Wharf
 *                              on a user's behalf
 */
import type { PolicyDocument } from './iam-policy';

export const GLOBAL_CONDITION_KEYS = [
  'aws:CurrentTime',
  'aws:EpochTime',
  'aws:RequestedRegion',
  'aws:SecureTransport',
  'aws:SourceIp',
  'aws:PrincipalArn',
  'aws:PrincipalAccount',
  'aws:PrincipalType',
  'aws:username',
  'aws:userid',
  'aws:TokenIssueTime',
  'aws:MultiFactorAuthPresent',
  'aws:ViaAWSService',
  'aws:PrincipalIsAWSService',
] as const;

/** What the transport knows of one request, from which its global keys are made. */
export interface RequestFacts {
  /** The region of the SigV4 credential scope. */
  region: string;
  /** Whether the request came over TLS. */
  secureTransport: boolean;
  /** The time of the check (ms since the epoch), from the caller's clock. */
  nowMs: number;
  accountId: string;
  principalArn: string;
  /** The principal's IAM resource: `root` or `user/<name>`. */
  iamResource: string;
  /** The user's unique id (AIDA...), for users. */
  userId?: string;
  /** The connection's peer address, when known. */
  sourceIp?: string;
  /** Set for session credentials (STS GetSessionToken): when the session was issued. */
  session?: { issuedAtMs: number };
}

/** ISO 8601 to the second, as IAM writes aws:CurrentTime. */
function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** The global condition keys of one request. */
export function globalConditionContext(f: RequestFacts): Record<string, string> {
  const out: Record<string, string> = {
    'aws:RequestedRegion': f.region,
    'aws:SecureTransport': String(f.secureTransport),
    'aws:CurrentTime': isoSeconds(f.nowMs),
    'aws:EpochTime': String(Math.floor(f.nowMs / 1000)),
    'aws:PrincipalArn': f.principalArn,
    'aws:PrincipalAccount': f.accountId,
    'aws:ViaAWSService': 'false',
    'aws:PrincipalIsAWSService': 'false',
  };
  if (f.iamResource === 'root') {
    out['aws:PrincipalType'] = 'Account';
    out['aws:userid'] = f.accountId;
  } else if (f.iamResource.startsWith('user/')) {
    out['aws:PrincipalType'] = 'User';
    out['aws:username'] = f.iamResource.slice('user/'.length);
    if (f.userId) out['aws:userid'] = f.userId;
  }
  if (f.sourceIp) out['aws:SourceIp'] = f.sourceIp;
  if (f.session) {
    out['aws:TokenIssueTime'] = isoSeconds(f.session.issuedAtMs);
    out['aws:MultiFactorAuthPresent'] = 'false';
  }
  return out;
}

/** A condition key a policy names that is not among `supported` (compared case-insensitively). */
export interface UnsupportedConditionKey {
  /** 1-based, as IAM's messages count statements. */
  statement: number;
  operator: string;
  key: string;
}

/** The condition keys of `policy` that no request of Wharf's ever carries. */
export function unsupportedConditionKeys(policy: PolicyDocument, supported: readonly string[]): UnsupportedConditionKey[] {
  const known = new Set(supported.map((k) => k.toLowerCase()));
  const out: UnsupportedConditionKey[] = [];
  policy.Statement.forEach((s, i) => {
    for (const [operator, keys] of Object.entries(s.Condition ?? {})) {
      for (const key of Object.keys(keys)) if (!known.has(key.toLowerCase())) out.push({ statement: i + 1, operator, key });
    }
  });
  return out;
}
