// store/memory/: a Map-based Store for fast unit tests of the layers above; passes the same
// contract suite as sqlite. Never used by `wharf server`. Imports the store contract only.
export { MemoryStore, type MemoryStoreOptions } from './memory-store';
