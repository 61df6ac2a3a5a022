// store/sqlite/: the embedded Store backend (better-sqlite3, WAL, one process per data file).
// Also holds the txn rules and the in-process watch fan-out that the memory backend reuses.
// Imports the store contract and lib only.
export { SqliteStore, type SqliteStoreOptions } from './sqlite-store';
