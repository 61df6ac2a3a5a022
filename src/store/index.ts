// store/: the Store contract, its shared contract test suite, and the backends (sqlite/ embedded,
// etcd/ later). Imports core and lib only.
export * from './store';
