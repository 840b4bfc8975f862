/*
 * etcd_proc.h: real etcd members for the tests (the store contract suite and the cluster
 * suite): one to three members, member i on 127.0.0.(i+1), free ports, each with its own
 * data directory under a temporary directory the caller gives.
 *
 * The etcd binary is $ETCD_BIN, else /usr/bin/etcd; etcd_available() says whether it is
 * there (a test without it reports a skip, never a pass).
 *
 * Not thread-safe: call from the test's main thread.
 */
#ifndef SECRETD_TESTS_ETCD_PROC_H
#define SECRETD_TESTS_ETCD_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ETCD_PROC_MAX 3

struct etcd_member {
	pid_t pid;
	char host[16]; /* 127.0.0.N */
	int client_port;
	int peer_port;
	char data_dir[300];
	char client_url[64]; /* http://127.0.0.N:P */
	char log_path[300];
};

struct etcd_proc {
	size_t n;
	char dir[256];
	char token[64];
	struct etcd_member m[ETCD_PROC_MAX];
	char endpoints[256]; /* comma-separated client URLs */
};

/* Whether an etcd binary can be run. */
bool etcd_available(void);

/* Start n members (1..3) under dir (borrowed, must exist) and wait (up to 30 s) until
 * every one answers /health. false on failure (whatever started is killed). */
bool etcd_start(struct etcd_proc *ep, const char *dir, size_t n);

/* Start member i again (after a kill), as a member of the existing cluster. */
bool etcd_restart_member(struct etcd_proc *ep, size_t i);

/* Whether member i answers /health with {"health":"true"} within timeout_ms. */
bool etcd_member_healthy(const struct etcd_proc *ep, size_t i, int timeout_ms);

/* SIGKILL member i and reap it. */
void etcd_kill_member(struct etcd_proc *ep, size_t i);

/* Send sig (SIGSTOP, SIGCONT) to member i. */
void etcd_signal_member(struct etcd_proc *ep, size_t i, int sig);

/* Kill every member that runs. */
void etcd_stop(struct etcd_proc *ep);

/* Run `etcdctl --endpoints <ep> args...` and capture stdout into out[outlen]; returns the
 * exit status or -1. */
int etcd_ctl(const struct etcd_proc *ep, const char *const *args, char *out, size_t outlen);

#endif
