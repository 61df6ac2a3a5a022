/**
 * The one catalogue of errors Wharf answers with. Domain and API code throw `WharfError`s with a
 * code from this list; only server/ turns them into a wire response, through a status table the
 * compiler checks against this list. Anything else thrown becomes a logged ServerException.
 */
export const errorCodes = [
  // ECS (names as in the ECS model)
  'ServerException',
  // AWS's common 503 (SDKs retry it): the store cannot be reached (etcd without quorum).
  'ServiceUnavailableException',
  'ClientException',
  'InvalidParameterException',
  'AccessDeniedException',
  'ClusterNotFoundException',
  'ClusterContainsContainerInstancesException',
  'ClusterContainsServicesException',
  'ClusterContainsTasksException',
  'ClusterContainsCapacityProviderException',
  'ServiceNotFoundException',
  'ServiceNotActiveException',
  'UnsupportedFeatureException',
  'PlatformUnknownException',
  'PlatformTaskDefinitionIncompatibilityException',
  'LimitExceededException',
  'ResourceInUseException',
  'ResourceNotFoundException',
  'UpdateInProgressException',
  'TargetNotFoundException',
  'AttributeLimitExceededException',
  'ConflictException',
  'NamespaceNotFoundException',
  'ServiceDeploymentNotFoundException',
  'TaskSetNotFoundException',
  'NoUpdateAvailableException',
  'MissingVersionException',
  'TargetNotConnectedException',
  'BlockedException',
  // Secrets Manager (the subset Wharf serves for repositoryCredentials)
  'ResourceExistsException',
  'InvalidRequestException',
  'DecryptionFailure',
  // CloudWatch Logs (control/logs*.ts; ResourceNotFoundException and InvalidParameterException are shared)
  'ResourceAlreadyExistsException',
  'TooManyTagsException',
  // Cloud Map (the subset ECS services' serviceRegistries need; control/cloudmap-*.ts)
  'NamespaceNotFound',
  'ServiceNotFound',
  'InstanceNotFound',
  'NamespaceAlreadyExists',
  'ServiceAlreadyExists',
  'ResourceInUse',
  'InvalidInput',
  'OperationNotFound',
  'CustomHealthNotFound',
  // EC2 (the VPC and security group subset: control/vpc.ts, control/security-groups.ts)
  'InvalidGroup.NotFound',
  'InvalidGroup.Duplicate',
  'InvalidGroupId.Malformed',
  'InvalidPermission.Duplicate',
  'InvalidPermission.NotFound',
  'InvalidSubnetID.NotFound',
  'InvalidVpcID.NotFound',
  'InvalidParameterValue',
  'MissingParameter',
  'InvalidAction',
  'CannotDelete',
  'DependencyViolation',
  'DryRunOperation',
  'UnauthorizedOperation',
  // ELBv2 (control/elbv2-*.ts; ResourceInUse is shared with Cloud Map). All 400, as the model says.
  'LoadBalancerNotFound',
  'TargetGroupNotFound',
  'ListenerNotFound',
  'RuleNotFound',
  'DuplicateLoadBalancerName',
  'DuplicateTargetGroupName',
  'DuplicateListener',
  'DuplicateTagKeys',
  'PriorityInUse',
  'InvalidTarget',
  'ValidationError',
  'InvalidConfigurationRequest',
  'IncompatibleProtocols',
  'TargetGroupAssociationLimit',
  'CertificateNotFound',
  'InvalidSubnet',
  'SubnetNotFound',
  'InvalidSecurityGroup',
  'TooManyTags',
  'TooManyLoadBalancers',
  'OperationNotPermitted',
  'InvalidLoadBalancerAction',
  'UnsupportedProtocol',
  // IAM refusals in the query protocols (ELBv2 says AccessDenied; EC2 UnauthorizedOperation)
  'AccessDenied',
  // Transport and authentication (not in the model; the texts real AWS uses)
  'UnknownOperationException',
  'SerializationException',
  'MissingAuthenticationTokenException',
  'UnrecognizedClientException',
  // Session credentials (STS GetSessionToken) past their Expiration, in the JSON APIs' spelling
  // and the query APIs' (STS, ELBv2), and the query APIs' spelling of an unknown key or token.
  'ExpiredTokenException',
  'ExpiredToken',
  'InvalidClientTokenId',
  // EC2's spelling of an unknown key or token, and of expired session credentials.
  'AuthFailure',
  'RequestExpired',
  // The query APIs' (STS, ELBv2, EC2) spelling of a bad, missing or malformed signature.
  'SignatureDoesNotMatch',
  'MissingAuthenticationToken',
  'IncompleteSignature',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'RequestEntityTooLargeException',
  'RequestTimeoutException',
  'ThrottlingException',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export class WharfError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra members sent beside __type and message (e.g. ConflictException's resourceIds). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = code;
  }
}

export const clientError = (message: string) => new WharfError('ClientException', message);
export const invalidParameter = (message: string) => new WharfError('InvalidParameterException', message);
export const clusterNotFound = (message = 'Cluster not found.') => new WharfError('ClusterNotFoundException', message);

export function isWharfError(e: unknown, code?: ErrorCode): e is WharfError {
  return e instanceof WharfError && (code === undefined || e.code === code);
}
