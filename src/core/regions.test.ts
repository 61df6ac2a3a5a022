import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { arn } from './arn';
import { AWS_REGIONS, RegionPolicy, parseRegionList, partitionOf } from './regions';

describe('regions', () => {
  test('every AWS region is served by default; a name that is not a region is refused with the list', () => {
    const p = new RegionPolicy('us-east-1');
    for (const r of ['us-east-1', 'eu-west-1', 'ap-southeast-7', 'cn-north-1', 'us-gov-west-1']) assert.equal(p.refusal(r), undefined, r);
    const why = p.refusal('us-east1');
    assert.match(why ?? '', /^Credential should be scoped to a valid region\. 'us-east1' is not an AWS region; it answers: every AWS region \(af-south-1, /);
  });

  test('--regions serves only its regions and names them when refusing', () => {
    const p = new RegionPolicy('eu-west-1', parseRegionList('eu-west-1, eu-central-1,eu-west-1'));
    assert.equal(p.refusal('eu-central-1'), undefined);
    assert.equal(p.refusal('us-east-1'), "Credential should be scoped to a valid region. Region 'us-east-1' is not served by this Wharf; it answers: eu-central-1, eu-west-1.");
    assert.throws(() => new RegionPolicy('us-east-1', ['eu-west-1']), /--region us-east-1 is not among --regions eu-west-1/);
    assert.throws(() => new RegionPolicy('moon-1'), /'moon-1' is not an AWS region name/);
    assert.throws(() => parseRegionList('eu-west-1,nope'), /not AWS region names: nope/);
    assert.throws(() => parseRegionList(' , '), /at least one region/);
  });

  test('ARNs carry the partition of their region', () => {
    assert.equal(partitionOf('cn-northwest-1'), 'aws-cn');
    assert.equal(partitionOf('us-gov-east-1'), 'aws-us-gov');
    assert.equal(arn({ region: 'cn-north-1', accountId: '000000000000' }, 'cluster', 'c'), 'arn:aws-cn:ecs:cn-north-1:000000000000:cluster/c');
    assert.equal(arn({ region: 'eu-west-1', accountId: '000000000000' }, 'cluster', 'c'), 'arn:aws:ecs:eu-west-1:000000000000:cluster/c');
    assert.ok(AWS_REGIONS.includes('mx-central-1'));
  });
});
