/**
 * The EC2 operations Wharf serves (the VPC view of awsvpc tasks: control/vpc.ts,
 * control/security-groups.ts), by name, for server/'s query-protocol dispatch. Inputs arrive
 * decoded into the EC2 model's shapes (api/query-protocol.ts); answers are the model's output
 * shapes.
 */
import { WharfError } from '../core/errors';
import type { Caller, ControlContext } from './context';
import * as groups from './security-groups';
import * as vpc from './vpc';

export type Ec2Handler = (input: any, caller: Caller) => Promise<unknown>;

/** The SigV4 signing name of EC2. */
export const EC2_SIGNING_NAME = 'ec2';

export function ec2Handlers(ctx: ControlContext): Record<string, Ec2Handler> {
  const table: Record<string, Ec2Handler> = {
    DescribeVpcs: (i) => vpc.describeVpcs(ctx, i),
    DescribeSubnets: (i) => vpc.describeSubnets(ctx, i),
    CreateSecurityGroup: (i) => groups.createSecurityGroup(ctx, i),
    AuthorizeSecurityGroupIngress: (i) => groups.authorizeSecurityGroupIngress(ctx, i),
    RevokeSecurityGroupIngress: (i) => groups.revokeSecurityGroupIngress(ctx, i),
    DeleteSecurityGroup: (i) => groups.deleteSecurityGroup(ctx, i),
    DescribeSecurityGroups: (i) => groups.describeSecurityGroups(ctx, i),
  };
  for (const [op, handler] of Object.entries(table)) {
    table[op] = async (input: { DryRun?: boolean }, caller) => {
      // EC2's dry run: the caller may call it (Wharf has no IAM), so the answer is always this.
      if (input.DryRun) throw new WharfError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.');
      return handler(input, caller);
    };
  }
  return table;
}
