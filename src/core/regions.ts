/**
 * AWS region names and the ARN partition each belongs to. One Wharf answers every region (the
 * region in a request's SigV4 credential scope picks the region's state, as AWS partitions it);
 * this is the list it accepts, so that a typo such as `us-east1` is refused with the list
 * instead of silently starting an empty region.
 *
 * The lists follow the SDKs' endpoint data (botocore's endpoints.json, partitions aws, aws-cn and
 * aws-us-gov). The isolated partitions (aws-iso*) are left out: nobody points a public SDK at them.
 */

const BY_PARTITION = {
  aws: [
    'af-south-1', 'ap-east-1', 'ap-east-2', 'ap-northeast-1', 'ap-northeast-2', 'ap-northeast-3', 'ap-south-1',
    'ap-south-2', 'ap-southeast-1', 'ap-southeast-2', 'ap-southeast-3', 'ap-southeast-4', 'ap-southeast-5',
    'ap-southeast-6', 'ap-southeast-7', 'ca-central-1', 'ca-west-1', 'eu-central-1', 'eu-central-2', 'eu-north-1',
    'eu-south-1', 'eu-south-2', 'eu-west-1', 'eu-west-2', 'eu-west-3', 'il-central-1', 'me-central-1', 'me-south-1',
    'mx-central-1', 'sa-east-1', 'us-east-1', 'us-east-2', 'us-west-1', 'us-west-2',
  ],
  'aws-cn': ['cn-north-1', 'cn-northwest-1'],
  'aws-us-gov': ['us-gov-east-1', 'us-gov-west-1'],
} as const;

export type AwsPartition = keyof typeof BY_PARTITION;

const PARTITION_OF = new Map<string, AwsPartition>(
  (Object.keys(BY_PARTITION) as AwsPartition[]).flatMap((p) => BY_PARTITION[p].map((r) => [r, p] as [string, AwsPartition])),
);

/** Every region name Wharf knows, sorted. */
export const AWS_REGIONS: readonly string[] = [...PARTITION_OF.keys()].sort();

export function isRegionName(s: string): boolean {
  return PARTITION_OF.has(s);
}

/** The ARN partition of a region (`aws` for names Wharf does not know). */
export function partitionOf(region: string): AwsPartition {
  return PARTITION_OF.get(region) ?? 'aws';
}

/**
 * Parses `--regions a,b`: the regions a server answers. Throws with the offending names and the
 * known ones when a name is not a region.
 */
export function parseRegionList(text: string): string[] {
  const names = [...new Set(text.split(',').map((s) => s.trim()).filter((s) => s !== ''))];
  if (names.length === 0) throw new Error('--regions wants at least one region name');
  const bad = names.filter((n) => !isRegionName(n));
  if (bad.length > 0) throw new Error(`not AWS region names: ${bad.join(', ')} (known: ${AWS_REGIONS.join(', ')})`);
  return names;
}

/**
 * Which regions a server answers: every known one, or the `--regions` list. `refusal(region)`
 * says why a request's region is refused (undefined when it is served).
 */
export class RegionPolicy {
  private readonly allowed: ReadonlySet<string> | undefined;

  constructor(readonly defaultRegion: string, allowed?: readonly string[]) {
    if (!isRegionName(defaultRegion)) throw new Error(`--region: '${defaultRegion}' is not an AWS region name (known: ${AWS_REGIONS.join(', ')})`);
    if (allowed && !allowed.includes(defaultRegion)) {
      throw new Error(`--region ${defaultRegion} is not among --regions ${allowed.join(',')}`);
    }
    this.allowed = allowed ? new Set(allowed) : undefined;
  }

  /** The regions served, for messages. */
  describe(): string {
    return this.allowed ? [...this.allowed].sort().join(', ') : `every AWS region (${AWS_REGIONS.join(', ')})`;
  }

  refusal(region: string): string | undefined {
    if (this.allowed ? this.allowed.has(region) : isRegionName(region)) return undefined;
    const what = isRegionName(region) ? `Region '${region}' is not served by this Wharf` : `'${region}' is not an AWS region`;
    return `Credential should be scoped to a valid region. ${what}; it answers: ${this.describe()}.`;
  }
}
