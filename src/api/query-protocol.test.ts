/**
 * The query protocols as the AWS SDKs speak them: the form bodies below are what botocore sends
 * for these calls (EC2 flat lists, ELBv2 `.member.N` lists), and the answers are read back the
 * way the SDKs' XML parsers read them (element names from the model).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from './model';
import { MalformedQuery, decodeQueryRequest, encodeQueryError, encodeQueryResponse, parseForm } from './query-protocol';

const ec2 = loadModel('ec2');
const elbv2 = loadModel('elbv2');

test('ec2: flat lists, capitalised locationNames and nested structures decode to the model shape', () => {
  const body =
    'Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-1' +
    '&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=8080&IpPermissions.1.ToPort=8080' +
    '&IpPermissions.1.Groups.1.GroupId=sg-2&IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0%2F8&IpPermissions.1.IpRanges.2.CidrIp=127.0.0.1%2F32' +
    '&IpPermissions.2.IpProtocol=-1';
  const { action, input } = decodeQueryRequest(ec2, parseForm(body));
  assert.equal(action, 'AuthorizeSecurityGroupIngress');
  assert.deepEqual(input, {
    GroupId: 'sg-1',
    IpPermissions: [
      { IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, UserIdGroupPairs: [{ GroupId: 'sg-2' }], IpRanges: [{ CidrIp: '10.0.0.0/8' }, { CidrIp: '127.0.0.1/32' }] },
      { IpProtocol: '-1' },
    ],
  });
});

test('ec2: filters use their locationNames (Filter.N.Name, Filter.N.Value.M)', () => {
  const { input } = decodeQueryRequest(ec2, parseForm('Action=DescribeSubnets&Version=2016-11-15&SubnetId.1=subnet-a&Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-1&Filter.1.Value.2=vpc-2'));
  assert.deepEqual(input, { SubnetIds: ['subnet-a'], Filters: [{ Name: 'vpc-id', Values: ['vpc-1', 'vpc-2'] }] });
});

test('a required member left out, or a number that is not one, is a MalformedQuery naming it', () => {
  assert.throws(() => decodeQueryRequest(ec2, parseForm('Action=CreateSecurityGroup&GroupName=web')), (e: unknown) => e instanceof MalformedQuery && e.missing === 'Description');
  assert.throws(() => decodeQueryRequest(ec2, parseForm('Action=AuthorizeSecurityGroupIngress&IpPermissions.1.FromPort=eighty')), /Invalid value 'eighty' for IpPermissions\.1\.FromPort/);
});

test('ec2: an answer has requestId first, members in model order by locationName, lists of <item>', () => {
  const xml = encodeQueryResponse(ec2, 'DescribeSubnets', { Subnets: [{ SubnetId: 'subnet-1', CidrBlock: '10.0.0.0/20', DefaultForAz: true, AvailableIpAddressCount: 4091 }] }, 'req-1');
  assert.equal(
    xml,
    '<?xml version="1.0" encoding="UTF-8"?>\n<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-1</requestId>' +
      '<subnetSet><item><subnetId>subnet-1</subnetId><cidrBlock>10.0.0.0/20</cidrBlock><availableIpAddressCount>4091</availableIpAddressCount><defaultForAz>true</defaultForAz></item></subnetSet></DescribeSubnetsResponse>',
  );
});

test('ec2: errors are <Response><Errors><Error> with RequestID, text escaped', () => {
  assert.equal(
    encodeQueryError(ec2, { code: 'InvalidGroup.NotFound', message: "The security group 'sg-<x>' does not exist" }, 'r'),
    '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>InvalidGroup.NotFound</Code><Message>The security group &apos;sg-&lt;x&gt;&apos; does not exist</Message></Error></Errors><RequestID>r</RequestID></Response>',
  );
});

test('query (ELBv2): lists are Name.member.N, answers wrap a Result and ResponseMetadata', () => {
  const { action, input } = decodeQueryRequest(elbv2, parseForm('Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=a&Names.member.2=b&PageSize=5'));
  assert.equal(action, 'DescribeLoadBalancers');
  assert.deepEqual(input, { Names: ['a', 'b'], PageSize: 5 });
  const xml = encodeQueryResponse(elbv2, 'DescribeLoadBalancers', { LoadBalancers: [{ LoadBalancerName: 'a', AvailabilityZones: [{ ZoneName: 'eu-west-1a', SubnetId: 'subnet-1' }] }] }, 'req-2');
  assert.equal(
    xml,
    '<?xml version="1.0" encoding="UTF-8"?>\n<DescribeLoadBalancersResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DescribeLoadBalancersResult>' +
      '<LoadBalancers><member><LoadBalancerName>a</LoadBalancerName><AvailabilityZones><member><ZoneName>eu-west-1a</ZoneName><SubnetId>subnet-1</SubnetId></member></AvailabilityZones></member></LoadBalancers>' +
      '</DescribeLoadBalancersResult><ResponseMetadata><RequestId>req-2</RequestId></ResponseMetadata></DescribeLoadBalancersResponse>',
  );
});

test('query (ELBv2): lists of structures decode member by member; an empty list is the bare name', () => {
  const { input } = decodeQueryRequest(elbv2, parseForm('Action=AddTags&ResourceArns.member.1=arn:x&Tags.member.1.Key=k&Tags.member.1.Value=v'));
  assert.deepEqual(input, { ResourceArns: ['arn:x'], Tags: [{ Key: 'k', Value: 'v' }] });
  const empty = decodeQueryRequest(elbv2, parseForm('Action=DescribeLoadBalancers&Names='));
  assert.deepEqual(empty.input, { Names: [] });
});

test('query (ELBv2): errors are <ErrorResponse> with Type Sender and RequestId', () => {
  assert.equal(
    encodeQueryError(elbv2, { code: 'LoadBalancerNotFound', message: 'One or more load balancers not found' }, 'r2'),
    '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error><Type>Sender</Type><Code>LoadBalancerNotFound</Code><Message>One or more load balancers not found</Message></Error><RequestId>r2</RequestId></ErrorResponse>',
  );
});
