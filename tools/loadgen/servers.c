/*
 * servers.c: starting, probing and stopping the servers under test (secretd and the echo
 * server), each on its own ipc:// socket in the benchmark's directory and its own
 * tcp://127.0.0.1 port, with one REQ socket per transport dialed to it.
 *
 * A server is ready when it answers a probe (a Get of a name that does not exist: NOT_FOUND
 * from secretd, OK from the echo server); the time from spawn to that answer is its start-up
 * time. A server that exits, or stops with a non-zero status, is an error with its log.
 *
 * Thread safety: main thread only.
 */
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "proc.h"
#include "wire.h"

#define PROBE_NAME "bench_probe_absent"
#define READY_TIMEOUT_S 120.0
#define MAX_ARGS 64

/* gRPC codes the probe accepts: OK (echo) and NOT_FOUND (secretd). */
enum { STATUS_OK = 0, STATUS_NOT_FOUND = 5 };

const char *
bench_transport_name(enum bench_transport t)
{
	return t == TR_IPC ? "ipc" : "tcp";
}

static int
open_socket(struct bench_server *s, enum bench_transport t, char *err, size_t errlen)
{
	int rv;

	if ((rv = nng_req0_open(&s->sock[t])) != 0)
		goto fail;
	s->sock_open[t] = true;
	/* Listings at the scale figures are megabytes: no receive limit. Resends would
	 * double-count mutating requests, so they are pushed out of reach; reconnects are
	 * fast so that start-up is timed to within a few milliseconds. */
	if ((rv = nng_socket_set_size(s->sock[t], NNG_OPT_RECVMAXSZ, 0)) != 0 ||
	    (rv = nng_socket_set_ms(s->sock[t], NNG_OPT_REQ_RESENDTIME, 3600 * 1000)) != 0 ||
	    (rv = nng_socket_set_ms(s->sock[t], NNG_OPT_RECONNMINT, 1)) != 0 ||
	    (rv = nng_socket_set_ms(s->sock[t], NNG_OPT_RECONNMAXT, 5)) != 0)
		goto fail;
	if ((rv = nng_dial(s->sock[t], s->url[t], NULL, NNG_FLAG_NONBLOCK)) != 0)
		goto fail;
	return 0;
fail:
	(void)snprintf(err, errlen, "%s: cannot dial %s: %s", s->name, s->url[t], nng_strerror(rv));
	return -1;
}

/* One probe: 1 when answered as expected, 0 when not answered yet, -1 on a wrong answer. */
static int
probe(
    struct bench_env *env, struct bench_server *s, enum bench_transport t, char *err, size_t errlen)
{
	Secretd__V1__SecretGet get = SECRETD__V1__SECRET_GET__INIT;
	struct wire_buf scratch = {NULL, 0};
	struct wire_reply r;
	nng_msg *msg = NULL;
	nng_msg *reply = NULL;
	int rc = -1;
	int rv;

	get.name = (char *)PROBE_NAME;
	rv = wire_request("Get", &get.base, t == TR_TCP ? env->token : NULL, 0, 0, &scratch, &msg);
	wire_buf_free(&scratch);
	if (rv != 0) {
		(void)snprintf(err, errlen, "cannot build a probe: %s", nng_strerror(rv));
		return -1;
	}
	rv = load_call(s->sock[t], msg, 100, &reply);
	if (rv == NNG_ETIMEDOUT)
		return 0;
	if (rv != 0) {
		(void)snprintf(err, errlen, "%s over %s: probe failed: %s", s->name,
		    bench_transport_name(t), nng_strerror(rv));
		return -1;
	}
	if (!wire_reply_read(nng_msg_body(reply), nng_msg_len(reply), &r)) {
		(void)snprintf(err, errlen, "%s over %s: the probe's reply is not a reply frame",
		    s->name, bench_transport_name(t));
	} else if (r.status != (s->kind == SERVER_ECHO ? STATUS_OK : STATUS_NOT_FOUND)) {
		(void)snprintf(err, errlen, "%s over %s: probe answered status %u (%.*s): %.*s",
		    s->name, bench_transport_name(t), r.status, (int)r.reason.len,
		    (const char *)r.reason.data, (int)r.message.len, (const char *)r.message.data);
	} else {
		rc = 1;
	}
	nng_msg_free(reply);
	return rc;
}

static void
fail_with_log(struct bench_server *s, const char *err)
{
	(void)fprintf(stderr, "secretd-bench: %s\n", err);
	proc_log_tail(s->log_path, stderr, 20);
}

int
bench_server_check_alive(struct bench_server *s)
{
	int status = 0;
	char buf[96];
	char err[256];

	if (!s->running || !proc_exited(s->pid, &status))
		return 0;
	s->running = false;
	(void)snprintf(err, sizeof(err), "%s (pid %ld) died: %s", s->name, (long)s->pid,
	    proc_status_str(status, buf, sizeof(buf)));
	fail_with_log(s, err);
	return -1;
}

/* Build argv for the server into args (pointers into env, s and the static strings). */
static size_t
build_argv(
    struct bench_env *env, struct bench_server *s, const char *const *extra, const char **args)
{
	size_t n = 0;

	for (size_t i = 0; i < env->n_wrap && n < MAX_ARGS - 24; i++)
		args[n++] = env->wrap[i];
	args[n++] = s->kind == SERVER_ECHO ? env->echo_path : env->secretd_path;
	for (int t = 0; t < N_TRANSPORTS; t++) {
		if (!s->listening[t])
			continue;
		args[n++] = "--listen";
		args[n++] = s->url[t];
	}
	if (env->workers != NULL) {
		args[n++] = "--workers";
		args[n++] = env->workers;
	}
	if (s->kind == SERVER_SECRETD) {
		args[n++] = "--data-dir";
		args[n++] = s->data_dir;
		args[n++] = "--tokens-file";
		args[n++] = env->tokens_file;
		args[n++] = "--log-level";
		args[n++] = "warn";
		if (s->listening[TR_TCP])
			args[n++] = "--insecure";
		for (size_t i = 0; extra != NULL && extra[i] != NULL && n < MAX_ARGS - 1; i++)
			args[n++] = extra[i];
	}
	args[n] = NULL;
	return n;
}

static double
since_s(const struct timespec *t0)
{
	struct timespec t1;

	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int
bench_server_start(struct bench_env *env, struct bench_server *s, enum bench_server_kind kind,
    const char *tag, const bool transports[N_TRANSPORTS], const char *const *extra_args)
{
	const char *args[MAX_ARGS];
	struct timespec t0;
	char err[512];
	bool first_ready = false;

	/* A restart keeps the data directory and the URLs. */
	if (!s->running && s->pid == 0) {
		memset(s, 0, sizeof(*s));
		s->kind = kind;
		s->name = kind == SERVER_ECHO ? "echo" : "secretd";
		(void)snprintf(s->tag, sizeof(s->tag), "%s", tag);
		(void)snprintf(s->data_dir, sizeof(s->data_dir), "%s/%s-data", env->dir, tag);
		for (int t = 0; t < N_TRANSPORTS; t++) {
			s->listening[t] = transports[t];
			if (!transports[t])
				continue;
			if (t == TR_IPC) {
				(void)snprintf(s->url[t], sizeof(s->url[t]), "ipc://%s/%s.sock",
				    env->dir, tag);
			} else {
				int port = proc_free_port();

				if (port < 0) {
					(void)fprintf(stderr, "secretd-bench: no free TCP port\n");
					return -1;
				}
				(void)snprintf(
				    s->url[t], sizeof(s->url[t]), "tcp://127.0.0.1:%d", port);
			}
		}
	}
	(void)snprintf(s->log_path, sizeof(s->log_path), "%s/%s.log", env->dir, s->tag);
	(void)build_argv(env, s, extra_args, args);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	if (proc_spawn((char *const *)(void *)args, s->log_path, &s->pid) != 0) {
		(void)fprintf(
		    stderr, "secretd-bench: cannot start %s: %s\n", args[0], strerror(errno));
		return -1;
	}
	s->running = true;
	for (int t = 0; t < N_TRANSPORTS; t++) {
		if (!s->listening[t])
			continue;
		if (open_socket(s, (enum bench_transport)t, err, sizeof(err)) != 0) {
			(void)fprintf(stderr, "secretd-bench: %s\n", err);
			return -1;
		}
	}
	for (int t = 0; t < N_TRANSPORTS; t++) {
		int rv = 0;

		if (!s->listening[t])
			continue;
		while (rv == 0) {
			if (bench_server_check_alive(s) != 0)
				return -1;
			if (since_s(&t0) > READY_TIMEOUT_S) {
				(void)snprintf(err, sizeof(err),
				    "%s did not answer over %s within %.0f s", s->name,
				    bench_transport_name((enum bench_transport)t), READY_TIMEOUT_S);
				fail_with_log(s, err);
				return -1;
			}
			rv = probe(env, s, (enum bench_transport)t, err, sizeof(err));
		}
		if (rv < 0) {
			fail_with_log(s, err);
			return -1;
		}
		if (!first_ready) {
			s->ready_s = since_s(&t0);
			first_ready = true;
		}
	}
	return 0;
}

static void
close_sockets(struct bench_server *s)
{
	for (int t = 0; t < N_TRANSPORTS; t++) {
		if (s->sock_open[t])
			(void)nng_close(s->sock[t]);
		s->sock_open[t] = false;
	}
}

int
bench_server_stop(struct bench_server *s, double *stop_sp)
{
	struct timespec t0;
	int status = 0;
	char buf[96];
	char err[256];
	/* Under valgrind a clean shutdown takes a while. */
	double timeout_s = 120.0;

	close_sockets(s);
	if (!s->running)
		return 0;
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	s->running = false;
	if (proc_stop(s->pid, timeout_s, &status) != 0) {
		(void)snprintf(err, sizeof(err), "%s (pid %ld) did not stop cleanly on SIGTERM: %s",
		    s->name, (long)s->pid, proc_status_str(status, buf, sizeof(buf)));
		fail_with_log(s, err);
		return -1;
	}
	if (stop_sp != NULL)
		*stop_sp = since_s(&t0);
	return 0;
}

void
bench_server_kill(struct bench_server *s)
{
	int status = 0;

	close_sockets(s);
	if (s->running)
		(void)proc_stop(s->pid, 10.0, &status);
	s->running = false;
}
