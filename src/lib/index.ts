// lib/: generic building blocks with no ECS words (clock, ids, keyed work queue, backoff,
// logger). It imports nothing from the rest of src/.
export * from './clock';
export * from './ids';
export * from './backoff';
export * from './keyed-queue';
export * from './coalesced-read';
export * from './logger';
export * from './sigv4';
export * from './secret-cipher';
export * from './seeded-random';
export * from './session-token';
export * from './process';
export * from './free-ports';
