// core/: the ECS domain, pure (no I/O, no node: imports): ARNs, resource shapes, errors,
// task-definition rules, status enums and their order, the cluster query language.
// Imports lib only.
export * from './errors';
export * from './arn';
export * from './regions';
export * from './fargate-pool';
