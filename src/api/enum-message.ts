/**
 * How ECS words a value outside an enum: the member's name in lower-case words, then the allowed
 * values in brackets, e.g. `launch type should be one of [EC2,FARGATE,EXTERNAL,MANAGED_INSTANCES]`.
 */

/** `path` is where the value sits in the request (`launchType`, `containerDefinitions[0].logConfiguration.logDriver`). */
export function enumMessage(path: string, values: readonly string[]): string {
  const member = path.split('.').pop()!.replace(/\[\d+\]$/, '');
  const words = member.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2').toLowerCase();
  return `${words} should be one of [${values.join(',')}]`;
}
