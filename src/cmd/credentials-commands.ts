/**
 * `wharf credentials create|list|rotate|delete`: IAM users with identity policies, kept in the
 * local server's data dir (cmd/users.ts). Run them where the server runs, as the user that owns
 * its data dir (root): they edit users.json directly and the server picks the change up within a
 * second, without a restart. A secret is printed once, here, and stored nowhere.
 */
import { parseArgs } from 'node:util';
import { defaultDataDir } from './client';
import { BUILTIN_POLICIES } from './builtin-policies';
import { createUser, deleteUser, readUsers, resolvePolicy, rotateUser, type NewKey } from './users';

export const CREDENTIALS_HELP = `wharf credentials: the local server's access keys

  wharf credentials                 print the built-in admin key as shell exports
  wharf credentials --agent --cluster C
                                    create a join token for the agents of cluster C (C = '~fargate':
                                    for \`wharf agent --fargate\` hosts of the Fargate pool)
  wharf credentials --agent --list | --revoke KEYID
                                    the join tokens; revoke one (\`wharf credentials --agent --help\`)
  wharf credentials create --name N --policy FILE|${Object.keys(BUILTIN_POLICIES).join('|')} [--output json]
                                    add user N with an IAM identity policy; prints its key ONCE
  wharf credentials list            users, key ids, policies, creation times (never secrets)
  wharf credentials rotate --name N give N a new key (printed once); the old one stops working
  wharf credentials delete --name N remove N; its key stops working

Flags:
  --data-dir DIR   the server's data dir (default $WHARF_DATA_DIR or ~/.wharf)
  --output json    print the new key as JSON instead of shell exports

Built-in policies: readonly (Describe*/List*/Get*, no secret values), operator (run clusters,
services and tasks; not the platform's instances, capacity providers or secret values), admin
(everything). A FILE holds a policy in IAM's JSON grammar.
`;

function printKey(k: NewKey, json: boolean, verb: string): void {
  if (json) {
    process.stdout.write(JSON.stringify({
      AccessKey: { UserName: k.user.name, UserId: k.user.userId, AccessKeyId: k.user.accessKeyId, SecretAccessKey: k.secretAccessKey, Status: 'Active', CreateDate: k.user.keyCreated, Policy: k.user.policyName },
    }, null, 2) + '\n');
  } else {
    process.stderr.write(`# ${verb} user ${k.user.name} (policy ${k.user.policyName}). The secret is shown only now: store it safely.\n`);
    process.stdout.write(`export AWS_ACCESS_KEY_ID=${k.user.accessKeyId}\nexport AWS_SECRET_ACCESS_KEY=${k.secretAccessKey}\n`);
  }
}

/** Runs a subcommand; returns false when `sub` is not one. */
export function cmdCredentialUsers(sub: string, argv: string[]): boolean {
  if (!['create', 'list', 'rotate', 'delete'].includes(sub)) return false;
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string', default: defaultDataDir() },
      name: { type: 'string' },
      policy: { type: 'string' },
      output: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(CREDENTIALS_HELP);
    return true;
  }
  const dataDir = values['data-dir']!;
  const json = values.output === 'json';
  if (values.output !== undefined && !json) throw new Error(`--output ${values.output}: only json is known`);
  const name = () => {
    if (!values.name) throw new Error(`wharf credentials ${sub} needs --name NAME`);
    return values.name;
  };
  switch (sub) {
    case 'create': {
      if (!values.policy) throw new Error(`wharf credentials create needs --policy FILE|${Object.keys(BUILTIN_POLICIES).join('|')}`);
      const n = name();
      printKey(createUser(dataDir, n, resolvePolicy(values.policy)), json, 'created');
      break;
    }
    case 'rotate':
      printKey(rotateUser(dataDir, name()), json, 'rotated the key of');
      break;
    case 'delete':
      deleteUser(dataDir, name());
      process.stderr.write(`deleted user ${values.name}; its key no longer works\n`);
      break;
    case 'list': {
      const users = readUsers(dataDir).users;
      if (json) {
        process.stdout.write(JSON.stringify({ Users: users.map((u) => ({ UserName: u.name, UserId: u.userId, AccessKeyId: u.accessKeyId, Policy: u.policyName, CreateDate: u.created, KeyCreateDate: u.keyCreated })) }, null, 2) + '\n');
        break;
      }
      const rows = [['NAME', 'ACCESS KEY ID', 'POLICY', 'CREATED'], ...users.map((u) => [u.name, u.accessKeyId, u.policyName, u.created])];
      const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      process.stdout.write(rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n') + '\n');
      break;
    }
  }
  return true;
}
