import { randomBytes, randomFillSync, randomUUID } from 'node:crypto';

/**
 * Random bytes handed out 16 at a time from a buffer refilled 4 KiB at once: a call into the
 * CSPRNG costs far more than the bytes, and ids are made by the hundred thousand.
 */
const pool = Buffer.alloc(4096);
let poolUsed = pool.length;

/** 32 lowercase hex characters: the id format of ECS tasks and container instances. */
export function hexId(): string {
  if (poolUsed + 16 > pool.length) {
    randomFillSync(pool);
    poolUsed = 0;
  }
  poolUsed += 16;
  return pool.toString('hex', poolUsed - 16, poolUsed);
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
