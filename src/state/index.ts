// state/: the in-memory cache of every stored object and its indexes, rebuilt from the store at
// start and kept current by watch. Imports core, store, lib.
export * from './state';
