export { EtcdStore, type EtcdStoreOptions } from './etcd-store';
export { EtcdLeadership, LEADER_KEY, type Leadership, type LeadershipOptions } from './etcd-leadership';
export { answers as etcdMemberAnswers, ensureEtcdCluster, etcdMemberPid, isEtcdMemberProcess, restartEtcdMember, startEtcdCluster, type EtcdCluster, type PersistentEtcdMember } from './etcd-cluster';
