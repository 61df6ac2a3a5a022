/**
 * The STS subset Wharf serves: GetCallerIdentity, so `aws sts get-caller-identity` says who a key
 * belongs to. It reads only the authenticated caller, in no region's state.
 */
import type { Caller } from './context';

export const STS_SIGNING_NAME = 'sts';

export type StsHandler = (input: Record<string, unknown>, caller: Caller) => Promise<unknown>;

export function stsHandlers(accountId: string): Record<string, StsHandler> {
  return {
    // As STS answers: a user's unique id (AIDA...), the account id for the root, and for other
    // holders (agents' keys) the access key id.
    GetCallerIdentity: async (_input, caller) => ({
      UserId: caller.userId ?? (caller.principal?.iamResource === 'root' ? accountId : caller.accessKeyId),
      Account: accountId,
      Arn: caller.principalArn,
    }),
  };
}
