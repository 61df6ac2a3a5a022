/**
 * The network a region's awsvpc tasks live in, as a Fargate user sees it: one default VPC per
 * region, one default subnet per availability zone (`<region>a`, `b`, `c`), and security groups.
 * Records are EC2's wire shapes (the members of the EC2 model: `SubnetId`, `CidrBlock`, ...), so
 * the EC2 API answers them as stored; Wharf's bookkeeping never goes in them.
 *
 * Each subnet is a Docker bridge network on every host with the subnet's range, so a task's
 * address is inside its subnet. AWS gives every region's default VPC 172.31.0.0/16; one Docker
 * Engine serves all regions, and Docker's own default pools include 172.17-172.31/16, so Wharf
 * gives each region its own /16 from a configurable base instead (`10.100.0.0/16` for the first
 * region in AWS_REGIONS order, and so on) and lays the subnets out as AWS lays out default
 * subnets: consecutive /20s from the start of the VPC range.
 */
import { AWS_REGIONS } from './regions';

/** The availability zones of a region Wharf offers (a subnet each). */
export const ZONE_LETTERS = ['a', 'b', 'c'] as const;

export function regionZones(region: string): string[] {
  return ZONE_LETTERS.map((l) => `${region}${l}`);
}

/** The first two octets of the /16 the first region gets; the i-th region gets base+i. */
export const DEFAULT_VPC_BASE = '10.100';

/** The default VPC range of a region: `<a>.<b + index of the region>.0.0/16`. */
export function defaultVpcCidr(region: string, base = DEFAULT_VPC_BASE): string {
  const m = /^(\d{1,3})\.(\d{1,3})$/.exec(base);
  if (!m) throw new Error(`the VPC base must be two octets (e.g. 10.100), not '${base}'`);
  const i = Math.max(0, AWS_REGIONS.indexOf(region));
  const second = Number(m[2]) + i;
  if (Number(m[1]) > 255 || second > 255) throw new Error(`the VPC base ${base} leaves no /16 for region ${region} (index ${i})`);
  return `${m[1]}.${second}.0.0/16`;
}

export function ipToInt(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** An IPv4 CIDR as numbers, or undefined when it is not one (host bits must be zero). */
export function parseCidr(cidr: string): { base: number; bits: number } | undefined {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  if (!m) return undefined;
  const base = ipToInt(m[1]!);
  const bits = Number(m[2]);
  if (base === undefined || bits > 32) return undefined;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  if (((base & mask) >>> 0) !== base) return undefined;
  return { base, bits };
}

export function cidrContains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const n = ipToInt(ip);
  if (!c || n === undefined) return false;
  const mask = c.bits === 0 ? 0 : (0xffffffff << (32 - c.bits)) >>> 0;
  return ((n & mask) >>> 0) === c.base;
}

/** The i-th /20 of a /16 (AWS's default subnets: 172.31.0.0/20, 172.31.16.0/20, ...). */
export function defaultSubnetCidr(vpcCidr: string, i: number): string {
  const c = parseCidr(vpcCidr);
  if (!c || c.bits > 20) throw new Error(`VPC range ${vpcCidr} cannot hold /20 subnets`);
  return `${intToIp(c.base + i * 4096)}/20`;
}

/** The subnet's router address (AWS: the network address + 1); the Docker bridge's gateway. */
export function subnetGateway(cidr: string): string {
  const c = parseCidr(cidr);
  if (!c) throw new Error(`not a CIDR: ${cidr}`);
  return intToIp(c.base + 1);
}

/** Addresses a task can get: AWS keeps five per subnet (network, router, DNS, future, broadcast). */
export function availableAddresses(cidr: string): number {
  const c = parseCidr(cidr);
  return c ? 2 ** (32 - c.bits) - 5 : 0;
}

/** An EC2 permission as the model shapes it (IpPermission), the part Wharf enforces. */
export interface IpPermission {
  IpProtocol: string;
  FromPort?: number;
  ToPort?: number;
  IpRanges?: { CidrIp: string; Description?: string }[];
  UserIdGroupPairs?: { GroupId: string; UserId?: string; Description?: string }[];
  Ipv6Ranges?: unknown[];
  PrefixListIds?: unknown[];
}

export interface VpcRecord {
  VpcId: string;
  CidrBlock: string;
  State: 'available';
  DhcpOptionsId: string;
  InstanceTenancy: 'default';
  IsDefault: boolean;
  OwnerId: string;
  CidrBlockAssociationSet: { AssociationId: string; CidrBlock: string; CidrBlockState: { State: 'associated' } }[];
  Tags: { Key: string; Value: string }[];
}

export interface SubnetRecord {
  SubnetId: string;
  SubnetArn: string;
  VpcId: string;
  CidrBlock: string;
  AvailabilityZone: string;
  AvailabilityZoneId: string;
  AvailableIpAddressCount: number;
  DefaultForAz: boolean;
  MapPublicIpOnLaunch: boolean;
  State: 'available';
  OwnerId: string;
  AssignIpv6AddressOnCreation: boolean;
  Ipv6CidrBlockAssociationSet: unknown[];
  Tags: { Key: string; Value: string }[];
}

export interface SecurityGroupRecord {
  GroupId: string;
  GroupName: string;
  Description: string;
  VpcId: string;
  OwnerId: string;
  SecurityGroupArn: string;
  IpPermissions: IpPermission[];
  IpPermissionsEgress: IpPermission[];
  Tags: { Key: string; Value: string }[];
}

/** The short zone id AWS shows beside a zone name (`euw1-az2` for eu-west-1b). */
export function zoneId(zone: string): string {
  const m = /^([a-z]+)-([a-z]+)-(\d+)([a-z])$/.exec(zone);
  if (!m) return zone;
  const dir = m[2]!.replace(/(north|south)(east|west)/, (_s, a: string, b: string) => a[0]! + b[0]!).replace(/^(north|south|east|west|central)$/, (s) => s[0]!);
  return `${m[1]}${dir}${m[3]}-az${m[4]!.charCodeAt(0) - 96}`;
}
