import { randomBytes, randomUUID } from 'node:crypto';

/** 32 lowercase hex characters: the id format of ECS tasks and container instances. */
export function hexId(): string {
  return randomBytes(16).toString('hex');
}

export function uuid(): string {
  return randomUUID();
}

/** 19 decimal digits, the numeric part of an ECS deployment id (`ecs-svc/<digits>`). */
export function digitId(len = 19): string {
  const bytes = randomBytes(len);
  let s = String(1 + (bytes[0]! % 9));
  for (let i = 1; i < len; i++) s += String(bytes[i]! % 10);
  return s;
}
