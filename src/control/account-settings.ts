/**
 * Account settings: PutAccountSetting (for a principal), PutAccountSettingDefault (for the
 * account), DeleteAccountSetting, ListAccountSettings. The effective value of a setting is the
 * principal's own, else the account default, else ECS's built-in default.
 *
 * As in ECS, the account default is the root user's own setting: PutAccountSettingDefault and
 * the root's PutAccountSetting write the same record, so a root caller sees the default it set
 * in a plain ListAccountSettings.
 */
import { iamArn } from '../core/arn';
import { partitionOf } from '../core/regions';
import { invalidParameter } from '../core/errors';
import { keys, type AccountSettingRecord } from '../core/resources';
import type {
  DeleteAccountSettingRequest,
  DeleteAccountSettingResponse,
  ListAccountSettingsRequest,
  ListAccountSettingsResponse,
  PutAccountSettingDefaultRequest,
  PutAccountSettingDefaultResponse,
  PutAccountSettingRequest,
  PutAccountSettingResponse,
  Setting,
  SettingName,
} from '../core/shapes/ecs';
import { SettingNameValues } from '../core/shapes/ecs';
import { committed, type Caller as RequestContext, type ControlContext } from './context';
import { paginate } from './pagination';

/** ECS's answer to turning a long-ARN setting off (they are always on since 2021). */
const LONG_ARN_READ_ONLY = 'You can no longer disable Long Arn settings.';

/** Built-in defaults and the values each setting accepts. */
const RULES: Record<SettingName, { default: string; values: string[]; readOnly?: string }> = {
  serviceLongArnFormat: { default: 'enabled', values: ['enabled'], readOnly: LONG_ARN_READ_ONLY },
  taskLongArnFormat: { default: 'enabled', values: ['enabled'], readOnly: LONG_ARN_READ_ONLY },
  containerInstanceLongArnFormat: { default: 'enabled', values: ['enabled'], readOnly: LONG_ARN_READ_ONLY },
  awsvpcTrunking: { default: 'disabled', values: ['enabled', 'disabled'] },
  containerInsights: { default: 'disabled', values: ['enabled', 'disabled', 'enhanced'] },
  fargateFIPSMode: { default: 'disabled', values: ['enabled', 'disabled'] },
  tagResourceAuthorization: { default: 'on', values: ['on', 'off'] },
  fargateTaskRetirementWaitPeriod: { default: '7', values: ['0', '7', '14'] },
  guardDutyActivate: { default: 'off', values: [], readOnly: 'guardDutyActivate is managed by AWS and cannot be changed.' },
  defaultLogDriverMode: { default: 'blocking', values: ['blocking', 'non-blocking'] },
  fargateEventWindows: { default: 'disabled', values: ['enabled', 'disabled'] },
};

function validate(name: SettingName, value: string): void {
  const rule = RULES[name];
  if (rule.readOnly && !rule.values.includes(value)) throw invalidParameter(rule.readOnly);
  if (!rule.values.includes(value)) {
    throw invalidParameter(`The value '${value}' is not valid for setting ${name}. Valid values: ${rule.values.join(', ')}.`);
  }
}

function accountRoot(ctx: ControlContext): string {
  return iamArn(ctx.partition, 'root');
}

function toWire(r: AccountSettingRecord, principalArn: string): Setting {
  return { name: r.name, value: r.value, principalArn, type: r.name === 'guardDutyActivate' ? 'aws_managed' : 'user' };
}

/**
 * The principal a call names (`principalArn`), or the caller. A named one must be an IAM user or
 * role of this account, or its root user: the only principals ECS keeps settings for.
 */
function principalOf(ctx: ControlContext, named: string | undefined, req: RequestContext): string {
  if (named === undefined) return req.principalArn;
  const { region, accountId } = ctx.partition;
  const m = /^arn:([a-z-]+):iam::(\d{12}):(root|(?:user|role)\/[\w+=,.@/-]{1,512})$/.exec(named);
  if (!m || m[1] !== partitionOf(region) || m[2] !== accountId) {
    throw invalidParameter(`principalArn '${named}' is not the ARN of an IAM user or role of account ${accountId}, or of its root user.`);
  }
  return named;
}

async function put(ctx: ControlContext, principal: string, name: SettingName, value: string, shownPrincipal: string): Promise<Setting> {
  validate(name, value);
  const record: AccountSettingRecord = { name, value, principalArn: principal };
  const key = keys.accountSetting(principal, name);
  const rev = await ctx.store.txn([{ op: 'put', key, value: record }]);
  await committed(ctx, rev);
  return toWire(record, shownPrincipal);
}

export async function putAccountSetting(ctx: ControlContext, input: PutAccountSettingRequest, req: RequestContext): Promise<PutAccountSettingResponse> {
  const principal = principalOf(ctx, input.principalArn, req);
  return { setting: await put(ctx, principal, input.name, input.value, principal) };
}

export async function putAccountSettingDefault(ctx: ControlContext, input: PutAccountSettingDefaultRequest): Promise<PutAccountSettingDefaultResponse> {
  return { setting: await put(ctx, accountRoot(ctx), input.name, input.value, accountRoot(ctx)) };
}

export async function deleteAccountSetting(ctx: ControlContext, input: DeleteAccountSettingRequest, req: RequestContext): Promise<DeleteAccountSettingResponse> {
  if (!SettingNameValues.includes(input.name)) throw invalidParameter(`Unknown setting name '${input.name}'.`);
  const principal = principalOf(ctx, input.principalArn, req);
  const key = keys.accountSetting(principal, input.name);
  const cur = await ctx.store.get<AccountSettingRecord>(key);
  if (!cur) throw invalidParameter(`No setting ${input.name} is set for ${principal}.`);
  const rev = await ctx.store.delete(key, cur.modRevision);
  await committed(ctx, rev);
  return { setting: toWire(cur.value, principal) };
}

export function effectiveSetting(ctx: ControlContext, name: SettingName, principal: string): Setting {
  const own = ctx.state.settings.get(encodeURIComponent(principal), name)?.value;
  if (own) return toWire(own, principal);
  const dflt = ctx.state.settings.get(encodeURIComponent(accountRoot(ctx)), name)?.value;
  if (dflt) return toWire(dflt, principal);
  return { name, value: RULES[name].default, principalArn: principal, type: name === 'guardDutyActivate' ? 'aws_managed' : 'user' };
}

export async function listAccountSettings(ctx: ControlContext, input: ListAccountSettingsRequest, req: RequestContext): Promise<ListAccountSettingsResponse> {
  if (input.value !== undefined && input.name === undefined) {
    throw invalidParameter('The value parameter can only be used together with the name parameter.');
  }
  const principal = principalOf(ctx, input.principalArn, req);
  let settings: Setting[];
  if (input.effectiveSettings) {
    settings = SettingNameValues.map((n) => effectiveSetting(ctx, n, principal));
  } else {
    settings = [];
    for (const e of ctx.state.settings.children(encodeURIComponent(principal)).values()) settings.push(toWire(e.value, principal));
  }
  if (input.name) settings = settings.filter((s) => s.name === input.name);
  if (input.value !== undefined) settings = settings.filter((s) => s.value === input.value);
  const { page, nextToken } = paginate(settings, (s) => s.name!, input, { default: 10, max: 10, operation: 'ListAccountSettings' });
  return { settings: page, nextToken };
}
