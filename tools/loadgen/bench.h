/*
 * bench.h: what the parts of secretd-bench share: the servers under test (servers.c), the
 * operations it measures (ops.c), the table and JSON report (report.c) and the scale
 * figures (scale.c). bench.c holds main and the run matrix.
 *
 * Thread safety: everything here is driven from the main thread; only the ops' build and
 * check functions run on requester threads (see load.h), and they read the op only.
 */
#ifndef LOADGEN_BENCH_H
#define LOADGEN_BENCH_H

#include <limits.h>
#include <nng/nng.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "load.h"

#define BENCH_URL_MAX (PATH_MAX + 64)
#define BENCH_MAX_CONC 8

enum bench_transport { TR_IPC, TR_TCP, N_TRANSPORTS };
enum bench_server_kind { SERVER_ECHO, SERVER_SECRETD };

/* The operations of the main table, in the order they run and print. */
enum bench_op_kind {
	OP_GET,
	OP_GET_TEXT,
	OP_LIST,
	OP_CREATE_TEMP,
	OP_CREATE_PERSIST,
	OP_RESOLVE,
	N_TABLE_OPS,
	/* Internal: filling and emptying stores. */
	OP_FILL = N_TABLE_OPS, /* create temporary fill_<base+k> */
	OP_UNFILL,             /* drop temporary fill_<base+k> */
	OP_PCREATE,            /* create persistent p<k> (start-up figure) */
	OP_MCREATE,            /* create temporary m<k> with a 32-byte value (memory figure) */
	OP_PGET,               /* get persistent p<base> (start-up figure) */
};

/* Everything about one run of the tool: options and the shared temporary directory. */
struct bench_env {
	const char *secretd_path;
	const char *echo_path;
	const char *workers; /* --workers for both servers, or NULL for their default */
	char **wrap;         /* --wrap: argv prefix for server commands (profiling), or NULL */
	size_t n_wrap;
	bool keep;
	char dir[PATH_MAX];
	char tokens_file[PATH_MAX + 16];
	char token[64];
	int timeout_ms;
};

/* One server process under test, with one REQ socket per transport it listens on. */
struct bench_server {
	enum bench_server_kind kind;
	const char *name; /* "echo" or "secretd" */
	char tag[32];     /* distinguishes several servers of one kind (file names) */
	pid_t pid;
	bool running;
	char log_path[PATH_MAX + 64];
	char data_dir[PATH_MAX + 64];
	char url[N_TRANSPORTS][BENCH_URL_MAX];
	bool listening[N_TRANSPORTS];
	nng_socket sock[N_TRANSPORTS];
	bool sock_open[N_TRANSPORTS];
	double ready_s; /* from spawn until it answered */
};

/* An operation with what a cell needs: its kind, whether the peer is the echo server, and
 * the token to present (NULL over ipc). */
struct bench_op {
	struct load_op base; /* first: load.c hands it back */
	enum bench_op_kind kind;
	bool echo;
	const char *token;
	unsigned long base_k;         /* OP_FILL/OP_UNFILL/OP_PGET: first index */
	size_t population;            /* secrets that exist while it runs (List's row count) */
	unsigned long resolve_target; /* OP_RESOLVE: the fill_ index its path selects */
};

/* servers.c */
const char *bench_transport_name(enum bench_transport t);
int bench_server_start(struct bench_env *env, struct bench_server *s, enum bench_server_kind kind,
    const char *tag, const bool transports[N_TRANSPORTS], const char *const *extra_args);
int bench_server_stop(struct bench_server *s, double *stop_sp);
void bench_server_kill(struct bench_server *s);
int bench_server_check_alive(struct bench_server *s);

/* ops.c */
const char *bench_op_name(enum bench_op_kind k);
const char *bench_op_label(enum bench_op_kind k);
int bench_op_parse(const char *name, enum bench_op_kind *kp);
void bench_op_init(struct bench_op *op, enum bench_op_kind kind, bool echo, const char *token);
int bench_op_verify(
    const struct bench_op *op, nng_socket sock, int timeout_ms, char *err, size_t errlen);
int bench_seed(nng_socket sock, int timeout_ms, char *err, size_t errlen);
int bench_populate(
    nng_socket sock, size_t *fillersp, size_t want, int timeout_ms, char *err, size_t errlen);
size_t bench_op_population(enum bench_op_kind k);
unsigned long bench_resolve_target(size_t population);

/* report.c */
struct bench_cell {
	enum bench_op_kind op;
	enum bench_transport transport;
	unsigned concurrency;
	bool have[2]; /* indexed by enum bench_server_kind */
	struct load_result r[2];
};

struct bench_report {
	const char *command;
	char date[64];
	char machine[256];
	long nproc;
	const char *workers;
	double duration_s;
	double warmup_s;
	unsigned rounds;
	struct bench_cell *cells;
	size_t n_cells;
};

void bench_report_machine(struct bench_report *rep);
void bench_report_table(const struct bench_report *rep, FILE *out);
void bench_report_json(const struct bench_report *rep, FILE *out);
void bench_json_str(FILE *out, const char *s);
void bench_json_header(const struct bench_report *rep, FILE *out);

/* scale.c */
int bench_scale(struct bench_env *env, const struct bench_report *rep, bool json, FILE *out);

#endif /* LOADGEN_BENCH_H */
