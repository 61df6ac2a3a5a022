/**
 * Task definitions through unmodified clients: RegisterTaskDefinition, DescribeTaskDefinition
 * (family, family:revision, ARN; TAGS), ListTaskDefinitions (familyPrefix, status, sort,
 * pagination), ListTaskDefinitionFamilies, DeregisterTaskDefinition, DeleteTaskDefinitions, and
 * revision numbering (from 1 per family, growing, never reused).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DeleteTaskDefinitionsCommand,
  DeregisterTaskDefinitionCommand,
  DescribeTaskDefinitionCommand,
  ListTaskDefinitionFamiliesCommand,
  ListTaskDefinitionsCommand,
  RegisterTaskDefinitionCommand,
  paginateListTaskDefinitions,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import { ACCOUNT_ID, REGION, awsCli, boto3, ecsCall, sdkError, simpleTaskDefinition, startTestServer, type TestServer } from './helpers/wharf-server';

let srv: TestServer;
let ecs: ECSClient;
const tdArn = (family: string, rev: number) => `arn:aws:ecs:${REGION}:${ACCOUNT_ID}:task-definition/${family}:${rev}`;
const register = (family: string, extra: Record<string, unknown> = {}) =>
  ecs.send(new RegisterTaskDefinitionCommand(simpleTaskDefinition(family, extra))).then((r) => r.taskDefinition!);

before(async () => {
  srv = await startTestServer();
  ecs = srv.ecs();
});
after(() => srv.close());

describe('RegisterTaskDefinition and DescribeTaskDefinition', () => {
  test('register with the AWS CLI, describe by family, family:revision and ARN (boto3), tags with include', async () => {
    const r = await awsCli(srv, [
      'register-task-definition', '--family', 'web',
      '--container-definitions', JSON.stringify([{ name: 'nginx', image: 'nginx:1.27', memory: 128, cpu: 64, portMappings: [{ containerPort: 80, hostPort: 8080 }] }]),
      '--tags', 'key=owner,value=team-a',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const td = r.json.taskDefinition;
    assert.equal(td.revision, 1, 'a family starts at revision 1');
    assert.equal(td.taskDefinitionArn, tdArn('web', 1));
    assert.equal(td.status, 'ACTIVE');
    assert.equal(td.containerDefinitions[0].memory, 128);
    assert.deepEqual(r.json.tags, [{ key: 'owner', value: 'team-a' }]);

    const byAll = await boto3(srv, `
res = {}
for ref in ["web", "web:1", ${JSON.stringify(tdArn('web', 1))}]:
    res[ref] = ecs.describe_task_definition(taskDefinition=ref)["taskDefinition"]["taskDefinitionArn"]
tagged = ecs.describe_task_definition(taskDefinition="web", include=["TAGS"])
plain = ecs.describe_task_definition(taskDefinition="web")
out({"refs": res, "tags": tagged.get("tags"), "plainHasTags": "tags" in plain})`);
    for (const ref of Object.keys(byAll.refs)) assert.equal(byAll.refs[ref], tdArn('web', 1), `describe ${ref}`);
    assert.deepEqual(byAll.tags, [{ key: 'owner', value: 'team-a' }]);
    assert.equal(byAll.plainHasTags, false, 'tags only with include TAGS');

    const missing = await sdkError(ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: 'web:99' })));
    assert.equal(missing.name, 'ClientException');
    assert.equal(missing.$metadata?.httpStatusCode, 400);
  });

  test('task-level cpu/memory are strings on the wire, container-level ones integers', async () => {
    await register('fargate-app', { requiresCompatibilities: ['FARGATE'], networkMode: 'awsvpc', cpu: '256', memory: '512' });
    const raw = await ecsCall(srv, 'DescribeTaskDefinition', { taskDefinition: 'fargate-app' });
    assert.equal(raw.status, 200);
    assert.equal(raw.json.taskDefinition.cpu, '256');
    assert.equal(raw.json.taskDefinition.memory, '512');
    assert.equal(raw.json.taskDefinition.containerDefinitions[0].memory, 64);
    assert.equal(typeof raw.json.taskDefinition.registeredAt, 'number', 'timestamps are epoch seconds');
  });

  test('the API is as strict as ECS: a number written as a string is refused', async () => {
    const raw = await ecsCall(srv, 'RegisterTaskDefinition', {
      family: 'strict',
      containerDefinitions: [{ name: 'a', image: 'busybox', memory: '100' }],
    });
    assert.equal(raw.status, 400);
    assert.equal(raw.json.__type, 'SerializationException');
    const fams = await ecs.send(new ListTaskDefinitionFamiliesCommand({ familyPrefix: 'strict' }));
    assert.deepEqual(fams.families, [], 'nothing registered');
    const invalid = await sdkError(ecs.send(new RegisterTaskDefinitionCommand({ family: 'bad family!', containerDefinitions: [{ name: 'a', image: 'b', memory: 10 }] })));
    assert.match(invalid.name, /ClientException|InvalidParameterException/);
  });
});

describe('revisions', () => {
  test('grow per family, resolve family to the latest ACTIVE one, and are never reused', async () => {
    const revs = [];
    for (let i = 0; i < 4; i++) revs.push((await register('rev')).revision);
    assert.deepEqual(revs, [1, 2, 3, 4]);
    assert.equal((await register('other')).revision, 1, 'numbering is per family');

    // Deregister the newest: the family now resolves to 3.
    const dereg = await ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: 'rev:4' }));
    assert.equal(dereg.taskDefinition!.status, 'INACTIVE');
    assert.ok(dereg.taskDefinition!.deregisteredAt instanceof Date);
    const latest = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: 'rev' }));
    assert.equal(latest.taskDefinition!.revision, 3);
    // An INACTIVE revision is still describable by number.
    const four = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: 'rev:4' }));
    assert.equal(four.taskDefinition!.status, 'INACTIVE');

    const del = await ecs.send(new DeleteTaskDefinitionsCommand({ taskDefinitions: ['rev:4'] }));
    assert.equal(del.taskDefinitions![0]!.status, 'DELETE_IN_PROGRESS');
    assert.equal((await register('rev')).revision, 5, 'a deleted number is not handed out again');

    const famOnly = await sdkError(ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: 'rev' })));
    assert.equal(famOnly.name, 'ClientException', 'deregister needs an explicit revision');
  });
});

describe('ListTaskDefinitions', () => {
  before(async () => {
    for (let i = 0; i < 65; i++) {
      await register('list-a');
      await register('list-b');
    }
    await register('list-a-longer');
    await ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: 'list-b:2' }));
  });

  test('familyPrefix is an exact family, status defaults to ACTIVE, sort orders revisions numerically', async () => {
    const asc = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: 'list-a' }));
    assert.equal(asc.taskDefinitionArns!.length, 65, 'list-a-longer is another family');
    assert.deepEqual(asc.taskDefinitionArns!.slice(0, 3), [tdArn('list-a', 1), tdArn('list-a', 2), tdArn('list-a', 3)]);
    assert.equal(asc.taskDefinitionArns![9], tdArn('list-a', 10), 'numeric, not lexicographic, order');
    const desc = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: 'list-a', sort: 'DESC' }));
    assert.deepEqual(desc.taskDefinitionArns, [...asc.taskDefinitionArns!].reverse());

    const activeB = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: 'list-b' }));
    assert.equal(activeB.taskDefinitionArns!.length, 64);
    assert.ok(!activeB.taskDefinitionArns!.includes(tdArn('list-b', 2)));
    const inactiveB = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: 'list-b', status: 'INACTIVE' }));
    assert.deepEqual(inactiveB.taskDefinitionArns, [tdArn('list-b', 2)]);
  });

  test('pages of 100 by default; the CLI and boto3 paginate across pages, in order, without repeats', async () => {
    const first = await ecs.send(new ListTaskDefinitionsCommand({}));
    assert.equal(first.taskDefinitionArns!.length, 100);
    assert.ok(first.nextToken);

    const expected: string[] = [];
    for await (const p of paginateListTaskDefinitions({ client: ecs, pageSize: 100 }, {})) expected.push(...p.taskDefinitionArns!);
    assert.ok(expected.length > 130);

    const cli = await awsCli(srv, ['list-task-definitions', '--page-size', '17']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(cli.json.taskDefinitionArns, expected, 'CLI auto-pagination, page size 17');

    const cliDesc = await awsCli(srv, ['list-task-definitions', '--family-prefix', 'list-b', '--sort', 'DESC', '--page-size', '10']);
    assert.equal(cliDesc.json.taskDefinitionArns.length, 64);
    assert.equal(cliDesc.json.taskDefinitionArns[0], tdArn('list-b', 65));
    assert.equal(cliDesc.json.taskDefinitionArns[63], tdArn('list-b', 1));

    const part = await awsCli(srv, ['list-task-definitions', '--max-items', '30', '--page-size', '20']);
    assert.deepEqual(part.json.taskDefinitionArns, expected.slice(0, 30));
    const rest = await awsCli(srv, ['list-task-definitions', '--starting-token', part.json.NextToken, '--max-items', '30']);
    assert.deepEqual(rest.json.taskDefinitionArns, expected.slice(30, 60), '--starting-token resumes exactly');

    const b = await boto3(srv, `
arns = []
for page in ecs.get_paginator("list_task_definitions").paginate(PaginationConfig={"PageSize": 13}):
    arns.extend(page["taskDefinitionArns"])
out(arns)`);
    assert.deepEqual(b, expected);

    const bad = await sdkError(ecs.send(new ListTaskDefinitionsCommand({ nextToken: 'not-a-token' })));
    assert.equal(bad.name, 'InvalidParameterException');
  });
});

describe('ListTaskDefinitionFamilies and DeleteTaskDefinitions', () => {
  test('families filter by real prefix and by status; deleted revisions leave listings', async () => {
    await register('fam-one');
    await register('fam-two');
    await register('fam-two');
    await ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: 'fam-one:1' }));

    const all = await awsCli(srv, ['list-task-definition-families', '--family-prefix', 'fam-']);
    assert.deepEqual(all.json.families, ['fam-one', 'fam-two'], 'default status lists ACTIVE and INACTIVE families');
    const active = await ecs.send(new ListTaskDefinitionFamiliesCommand({ familyPrefix: 'fam-', status: 'ACTIVE' }));
    assert.deepEqual(active.families, ['fam-two']);
    const inactive = await ecs.send(new ListTaskDefinitionFamiliesCommand({ familyPrefix: 'fam-', status: 'INACTIVE' }));
    assert.deepEqual(inactive.families, ['fam-one']);

    const del = await ecs.send(new DeleteTaskDefinitionsCommand({ taskDefinitions: ['fam-one:1', 'fam-two:1', 'fam-two:77'] }));
    assert.deepEqual(del.taskDefinitions!.map((t) => [t.taskDefinitionArn, t.status]), [[tdArn('fam-one', 1), 'DELETE_IN_PROGRESS']]);
    assert.ok(del.taskDefinitions![0]!.deleteRequestedAt instanceof Date);
    assert.deepEqual(del.failures!.map((f) => f.arn), [tdArn('fam-two', 1), tdArn('fam-two', 77)], 'ACTIVE and unknown revisions fail, the rest go on');

    const afterDelete = await ecs.send(new ListTaskDefinitionFamiliesCommand({ familyPrefix: 'fam-' }));
    assert.deepEqual(afterDelete.families, ['fam-two']);
    const inProgress = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: 'fam-one', status: 'DELETE_IN_PROGRESS' }));
    assert.deepEqual(inProgress.taskDefinitionArns, [tdArn('fam-one', 1)]);
    const inactiveNow = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: 'fam-one', status: 'INACTIVE' }));
    assert.deepEqual(inactiveNow.taskDefinitionArns, []);

    const tooMany = await sdkError(ecs.send(new DeleteTaskDefinitionsCommand({ taskDefinitions: Array.from({ length: 11 }, (_, i) => `fam-two:${i + 1}`) })));
    assert.equal(tooMany.name, 'InvalidParameterException');
  });
});
