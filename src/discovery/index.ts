/**
 * discovery/: service discovery's data plane. A DNS server (UDP and TCP) that answers A, AAAA and
 * SRV questions for the private DNS namespaces of Cloud Map (control/cloudmap-*.ts) with their
 * healthy instances, and names added by other parts (load balancers), and forwards every other
 * question to the host's resolvers. The answers are built by a pure function of a registry
 * snapshot and the question (dns-answer.ts), so they are tested without sockets.
 *
 * May import control/, state/, store/, api/, core/, lib/ (the snapshot is read from the cache).
 */
export { answerQuestion, type DnsAnswer } from './dns-answer';
export { DnsServer, type DnsServerOptions, type DnsListenAddress } from './dns-server';
export { registrySnapshot, type DiscoverySnapshot, type HostNameSource, type DnsHostName } from './registry-snapshot';
