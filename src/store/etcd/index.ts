export { EtcdStore, type EtcdStoreOptions } from './etcd-store';
export { EtcdLeadership, LEADER_KEY, type Leadership, type LeadershipOptions } from './etcd-leadership';
export { startEtcdCluster, type EtcdCluster } from './etcd-cluster';
