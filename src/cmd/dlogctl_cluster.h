/*
 * dlogctl's cluster command (dlogctl_cluster.c): node calls to the nodes of
 * the cluster URI ("cluster://H:P,H:P"). argv[0] is "cluster". Returns the
 * exit status (0, 1 runtime error, 2 usage error).
 */
#ifndef DLOG_CMD_DLOGCTL_CLUSTER_H
#define DLOG_CMD_DLOGCTL_CLUSTER_H

int dlogctl_cluster(const char *uri, int argc, char **argv);

/* dlogctl cluster groups (dlogctl_groups.c): addrs "H:P,H:P"; argv[0] is
 * "groups". The exit status, as above. */
int dlogctl_cluster_groups(const char *addrs, int argc, char **argv);

#endif
