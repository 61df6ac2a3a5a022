import type { ErrorCode } from '../core/errors';

/**
 * The HTTP status of every error code. A `Record` over the whole catalogue, so adding a code to
 * core/errors.ts without a status here fails to compile. Every client fault is 400, as in the
 * AWS JSON protocol; only ServerException is 500 (SDKs retry it).
 */
export const errorStatus: Record<ErrorCode, number> = {
  ServerException: 500,
  ClientException: 400,
  InvalidParameterException: 400,
  AccessDeniedException: 400,
  ClusterNotFoundException: 400,
  ClusterContainsContainerInstancesException: 400,
  ClusterContainsServicesException: 400,
  ClusterContainsTasksException: 400,
  ClusterContainsCapacityProviderException: 400,
  ServiceNotFoundException: 400,
  ServiceNotActiveException: 400,
  UnsupportedFeatureException: 400,
  PlatformUnknownException: 400,
  PlatformTaskDefinitionIncompatibilityException: 400,
  LimitExceededException: 400,
  ResourceInUseException: 400,
  ResourceNotFoundException: 400,
  UpdateInProgressException: 400,
  TargetNotFoundException: 400,
  AttributeLimitExceededException: 400,
  ConflictException: 400,
  NamespaceNotFoundException: 400,
  ServiceDeploymentNotFoundException: 400,
  TaskSetNotFoundException: 400,
  NoUpdateAvailableException: 400,
  MissingVersionException: 400,
  TargetNotConnectedException: 400,
  BlockedException: 400,
  ResourceExistsException: 400,
  UnknownOperationException: 400,
  SerializationException: 400,
  MissingAuthenticationTokenException: 403,
  UnrecognizedClientException: 400,
  InvalidSignatureException: 403,
  IncompleteSignatureException: 400,
  RequestEntityTooLargeException: 413,
  ThrottlingException: 400,
};
