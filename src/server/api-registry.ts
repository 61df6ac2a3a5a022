/**
 * What server/ needs to know of an AWS service it speaks: how requests name it (the JSON
 * X-Amz-Target prefix), which signing name SigV4 must carry, the model's full operation list (so
 * that an operation Wharf does not implement is refused clearly) and the handlers it implements.
 */
import type { ServiceModel } from '../api/model';
import type { Caller } from '../control/context';
import type { ErrorCode } from '../core/errors';
import type { Partition } from '../core/arn';
import type { IamRequest } from '../control/iam-resources';
import type { AuthFailureCodes } from './session-auth';

/**
 * A call in IAM's terms (action, resources, condition context) for the identity-policy check that
 * runs after validation and before the handler; undefined when the call needs no permission.
 * Without a hook, a call is `<signingName>:<operation>` on `*`.
 */
export type Authorize = (operation: string, input: Record<string, unknown>, partition: Partition) => IamRequest | undefined;

export type RequestContext = Caller;

export type Handler = (input: any, ctx: RequestContext) => Promise<unknown>;

export interface JsonServiceApi {
  /** e.g. AmazonEC2ContainerServiceV20141113 */
  targetPrefix: string;
  signingName: string;
  /** Every operation of the model. */
  modelOperations: readonly string[];
  handlers: Record<string, Handler>;
  /** Operations an agent's key (a cluster join token) may call; none when absent. */
  agentOperations?: readonly string[];
  /** Validates input against the model before the handler runs (throws WharfError). */
  validate?: (operation: string, input: unknown) => void;
  authorize?: Authorize;
}

/**
 * An AWS service spoken in one of the query protocols (form-encoded requests, XML answers:
 * api/query-protocol.ts): EC2 (`ec2` flavour) and ELBv2 (`query`). Requests carry no
 * X-Amz-Target; the service is the one the SigV4 credential scope names.
 */
export interface QueryServiceApi {
  signingName: string;
  /** The model requests are decoded by and answers encoded from. */
  model: ServiceModel;
  handlers: Record<string, Handler>;
  /** Validates decoded input against the model before the handler runs (throws WharfError). */
  validate?: (operation: string, input: unknown) => void;
  authorize?: Authorize;
  /**
   * The code this service gives a request it cannot accept as sent (a missing or malformed
   * parameter, a broken model constraint): ELBv2 says ValidationError. EC2 (none given) says
   * MissingParameter / InvalidParameterValue.
   */
  validationErrorCode?: ErrorCode;
  /**
   * The code of an IAM refusal (ELBv2: AccessDenied, EC2: UnauthorizedOperation);
   * AccessDeniedException when absent.
   */
  deniedErrorCode?: ErrorCode;
  /**
   * How this service names an unknown key or session token and an expired session (STS and
   * ELBv2: InvalidClientTokenId, ExpiredToken); the JSON APIs' names when absent.
   */
  authFailureCodes?: AuthFailureCodes;
}
