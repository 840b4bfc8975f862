/*
 * bench.c: secretd-bench, the benchmark behind README "Performance" (run it through
 * tools/bench, which builds it).
 *
 * One run starts the echo server (echo.c) and a real secretd, each on its own ipc:// socket
 * and tcp://127.0.0.1 port in a private temporary directory, then for every operation,
 * transport and concurrency drives first the echo server and then secretd with the same
 * closed-loop load (load.c) and reports requests/s, latency percentiles and secretd's ratio
 * to the echo server (report.c). --scale measures the scale figures instead (scale.c).
 *
 * What it does not do: build anything, or tolerate an error. A failed request, a wrong
 * value, a server that dies or does not stop cleanly: each stops the run with a message and
 * exit status 1; errors are never counted as throughput.
 *
 * Thread safety: main thread only; the load generator's threads live inside load_run.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "proc.h"

#define DEFAULT_DURATION_S 2.0
#define DEFAULT_WARMUP_S 0.1
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_ROUNDS 4

static const char usage_text[] =
    "Usage: secretd-bench [OPTION]...   (normally run as tools/bench [OPTION]...)\n"
    "Benchmark secretd against a raw nng REP echo server with the same worker pattern.\n"
    "Both servers run on ipc:// and tcp://127.0.0.1 in a private temporary directory;\n"
    "each requester of the closed-loop load uses its own nng context. Every reply is\n"
    "checked; any error stops the run with exit status 1.\n"
    "\n"
    "Operations: get (Get of a 1 KiB secret), get-text (the same as a text frame), list\n"
    "(List of 100 secrets, redacted), create-temp and create-persistent (Create then Drop;\n"
    "each request is counted), resolve (Resolve among 1,000 secrets).\n"
    "\n"
    "Options:\n"
    "  --duration S        measured seconds per server per cell (default 2)\n"
    "  --rounds N          split each cell into N alternating rounds echo, secretd, echo,\n"
    "                      ... of S/N seconds each, so both see the same background load\n"
    "                      (default 4)\n"
    "  --warmup S          unmeasured seconds before each round (default 0.1)\n"
    "  --ops LIST          comma-separated operations (default: all)\n"
    "  --concurrency LIST  comma-separated requester counts (default 1,8,64)\n"
    "  --transport LIST    ipc, tcp or ipc,tcp (default ipc,tcp)\n"
    "  --workers N         worker threads of both servers (default: theirs, 4 per core)\n"
    "  --count N           run N iterations per cell instead of a fixed time (profiling)\n"
    "  --json              print the results as JSON instead of a table\n"
    "  --scale             measure the scale figures instead: start-up with 100,000\n"
    "                      persistent secrets, memory per temporary secret at 1,000,000,\n"
    "                      List and Resolve at 100 ... 100,000 secrets. Takes several\n"
    "                      minutes (about 1.5 on 2 cores).\n"
    "  --secretd PATH      the secretd binary (default: ../../server/secretd from here)\n"
    "  --echo PATH         the echo server (default: secretd-bench-echo next to this)\n"
    "  --wrap CMD          prefix both server command lines with CMD (split at spaces),\n"
    "                      e.g. 'valgrind --tool=callgrind --callgrind-out-file=cg.%%p'\n"
    "  --timeout MS        a request slower than this is an error (default 30000)\n"
    "  --keep              keep the temporary directory (sockets, logs, data)\n"
    "  -h, --help          show this help\n"
    "Exit status: 0 when every request succeeded, 1 on any error, 2 on a usage error.\n";

struct options {
	double duration_s;
	double warmup_s;
	uint64_t count;
	unsigned rounds;
	bool ops[N_TABLE_OPS];
	unsigned conc[BENCH_MAX_CONC];
	size_t n_conc;
	bool transports[N_TRANSPORTS];
	bool json;
	bool scale;
	char *wrap_copy;
};

static int
parse_double(const char *s, double min, double *out)
{
	char *end = NULL;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= min))
		return -1;
	*out = v;
	return 0;
}

static int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end = NULL;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Split a comma-separated list in place and hand each item to fn. */
static int
each_item(char *list, int (*fn)(struct options *, const char *), struct options *o)
{
	char *save = NULL;
	int n = 0;

	for (char *item = strtok_r(list, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		if (fn(o, item) != 0)
			return -1;
		n++;
	}
	return n > 0 ? 0 : -1;
}

static int
add_op(struct options *o, const char *s)
{
	enum bench_op_kind k;

	if (bench_op_parse(s, &k) != 0) {
		(void)fprintf(stderr, "secretd-bench: unknown operation '%s'\n", s);
		return -1;
	}
	o->ops[k] = true;
	return 0;
}

static int
add_conc(struct options *o, const char *s)
{
	uint64_t v;

	if (parse_u64(s, 1, 1024, &v) != 0 || o->n_conc == BENCH_MAX_CONC) {
		(void)fprintf(stderr, "secretd-bench: bad concurrency '%s' (1..1024, at most %d)\n",
		    s, BENCH_MAX_CONC);
		return -1;
	}
	o->conc[o->n_conc++] = (unsigned)v;
	return 0;
}

static int
add_transport(struct options *o, const char *s)
{
	if (strcmp(s, "ipc") == 0)
		o->transports[TR_IPC] = true;
	else if (strcmp(s, "tcp") == 0)
		o->transports[TR_TCP] = true;
	else {
		(void)fprintf(stderr, "secretd-bench: unknown transport '%s'\n", s);
		return -1;
	}
	return 0;
}

/* Split --wrap at spaces into env->wrap (pointers into o->wrap_copy). */
static int
set_wrap(struct bench_env *env, struct options *o, const char *s)
{
	char *save = NULL;
	size_t n = 0;

	free(o->wrap_copy);
	free(env->wrap);
	o->wrap_copy = strdup(s);
	env->wrap = calloc(strlen(s) / 2 + 2, sizeof(*env->wrap));
	if (o->wrap_copy == NULL || env->wrap == NULL)
		return -1;
	for (char *w = strtok_r(o->wrap_copy, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save))
		env->wrap[n++] = w;
	env->n_wrap = n;
	return 0;
}

enum {
	OPT_DURATION = 256,
	OPT_WARMUP,
	OPT_OPS,
	OPT_CONC,
	OPT_TRANSPORT,
	OPT_WORKERS,
	OPT_COUNT,
	OPT_ROUNDS,
	OPT_JSON,
	OPT_SCALE,
	OPT_SECRETD,
	OPT_ECHO,
	OPT_WRAP,
	OPT_TIMEOUT,
	OPT_KEEP,
};

/* What was not given: every table operation, concurrency 1, 8 and 64, ipc and tcp. */
static void
options_complete(struct options *o, bool any_op, bool any_transport)
{
	for (int k = 0; !any_op && k < N_TABLE_OPS; k++)
		o->ops[k] = true;
	if (o->n_conc == 0) {
		o->conc[0] = 1;
		o->conc[1] = 8;
		o->conc[2] = 64;
		o->n_conc = 3;
	}
	if (!any_transport)
		o->transports[TR_IPC] = o->transports[TR_TCP] = true;
}

/* 0 to run, 1 after --help, 2 on a usage error. One case per option: the length is the
 * option table's. */
static int
parse_options(int argc, char **argv, struct options *o, struct bench_env *env)
{
	static const struct option longopts[] = {
	    {"duration", required_argument, NULL, OPT_DURATION},
	    {"warmup", required_argument, NULL, OPT_WARMUP},
	    {"ops", required_argument, NULL, OPT_OPS},
	    {"concurrency", required_argument, NULL, OPT_CONC},
	    {"transport", required_argument, NULL, OPT_TRANSPORT},
	    {"workers", required_argument, NULL, OPT_WORKERS},
	    {"count", required_argument, NULL, OPT_COUNT},
	    {"rounds", required_argument, NULL, OPT_ROUNDS},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"scale", no_argument, NULL, OPT_SCALE},
	    {"secretd", required_argument, NULL, OPT_SECRETD},
	    {"echo", required_argument, NULL, OPT_ECHO},
	    {"wrap", required_argument, NULL, OPT_WRAP},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"keep", no_argument, NULL, OPT_KEEP},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool any_op = false;
	bool any_transport = false;
	uint64_t v;
	int c;

	o->duration_s = DEFAULT_DURATION_S;
	o->warmup_s = DEFAULT_WARMUP_S;
	o->rounds = DEFAULT_ROUNDS;
	env->timeout_ms = DEFAULT_TIMEOUT_MS;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case OPT_DURATION:
			bad = parse_double(optarg, 0.05, &o->duration_s);
			break;
		case OPT_WARMUP:
			bad = parse_double(optarg, 0, &o->warmup_s);
			break;
		case OPT_OPS:
			bad = each_item(optarg, add_op, o);
			any_op = true;
			break;
		case OPT_CONC:
			bad = each_item(optarg, add_conc, o);
			break;
		case OPT_TRANSPORT:
			bad = each_item(optarg, add_transport, o);
			any_transport = true;
			break;
		case OPT_WORKERS:
			bad = parse_u64(optarg, 1, 4096, &v);
			env->workers = optarg;
			break;
		case OPT_COUNT:
			bad = parse_u64(optarg, 1, UINT64_C(1) << 40, &o->count);
			break;
		case OPT_ROUNDS:
			bad = parse_u64(optarg, 1, 100, &v);
			o->rounds = (unsigned)v;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_SCALE:
			o->scale = true;
			break;
		case OPT_SECRETD:
			env->secretd_path = optarg;
			break;
		case OPT_ECHO:
			env->echo_path = optarg;
			break;
		case OPT_WRAP:
			bad = set_wrap(env, o, optarg);
			break;
		case OPT_TIMEOUT:
			bad = parse_u64(optarg, 1, 3600000, &v);
			env->timeout_ms = (int)v;
			break;
		case OPT_KEEP:
			env->keep = true;
			break;
		case 'h':
			(void)fputs(usage_text, stdout);
			return 1;
		default:
			bad = -1;
			break;
		}
		if (bad != 0) {
			if (c != '?')
				(void)fprintf(stderr, "secretd-bench: bad value for --%s: %s\n",
				    longopts[c - OPT_DURATION].name, optarg);
			(void)fputs(usage_text, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		(void)fputs(usage_text, stderr);
		return 2;
	}
	options_complete(o, any_op, any_transport);
	return 0;
}

/* The command line, as the user typed it when tools/bench passes it on. */
static char *
command_line(int argc, char **argv)
{
	const char *given = getenv("SECRETD_BENCH_COMMAND");
	size_t len = 1;
	char *s;

	if (given != NULL && given[0] != '\0')
		return strdup(given);
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	s = calloc(1, len);
	if (s == NULL)
		return NULL;
	for (int i = 0; i < argc; i++) {
		if (i > 0)
			(void)strcat(s, " ");
		(void)strcat(s, argv[i]);
	}
	return s;
}

static int
set_default_paths(struct bench_env *env, char *echo_buf, char *secretd_buf, size_t len)
{
	char dir[PATH_MAX];

	if (env->echo_path != NULL && env->secretd_path != NULL)
		return 0;
	if (proc_self_dir(dir, sizeof(dir)) != 0)
		return -1;
	if (env->echo_path == NULL) {
		(void)snprintf(echo_buf, len, "%s/secretd-bench-echo", dir);
		env->echo_path = echo_buf;
	}
	if (env->secretd_path == NULL) {
		(void)snprintf(secretd_buf, len, "%s/../../server/secretd", dir);
		env->secretd_path = secretd_buf;
	}
	return 0;
}

static int
prepare_env(struct bench_env *env)
{
	if (proc_tmpdir(env->dir, sizeof(env->dir)) != 0) {
		(void)fprintf(stderr, "secretd-bench: cannot create a temporary directory: %s\n",
		    strerror(errno));
		return -1;
	}
	(void)snprintf(env->tokens_file, sizeof(env->tokens_file), "%s/tokens", env->dir);
	if (proc_random_token(env->token, sizeof(env->token)) != 0 ||
	    proc_write_tokens(env->tokens_file, "bench", env->token) != 0) {
		(void)fprintf(stderr, "secretd-bench: cannot write %s: %s\n", env->tokens_file,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static void
cell_failed(struct bench_server *s, enum bench_op_kind kind, enum bench_transport t, unsigned conc,
    const char *err)
{
	(void)fprintf(stderr, " FAILED\nsecretd-bench: %s, %s over %s at concurrency %u: %s\n",
	    s->name, bench_op_label(kind), bench_transport_name(t), conc, err);
	(void)bench_server_check_alive(s);
}

/*
 * One cell: verify one exchange with each server (with protobuf-c too), then alternate
 * rounds echo, secretd, echo, secretd, ... so that both see the same background load on a
 * shared machine, and summarise each server's rounds together.
 */
static int
run_cell(const struct options *o, struct bench_env *env, struct bench_server *servers[2],
    struct bench_cell *c)
{
	struct load_samples acc[2] = {{NULL, 0, 0, 0}, {NULL, 0, 0, 0}};
	struct bench_op op[2];
	struct load_spec spec = {
	    .concurrency = c->concurrency,
	    .warmup_s = o->count > 0 ? 0 : o->warmup_s,
	    .duration_s = o->duration_s / o->rounds,
	    .count = o->count,
	    .timeout_ms = env->timeout_ms,
	};
	const char *token = c->transport == TR_TCP ? env->token : NULL;
	char err[512];
	int rc = -1;

	(void)fprintf(stderr, "  %-24s %s c=%-3u ...", bench_op_label(c->op),
	    bench_transport_name(c->transport), c->concurrency);
	for (int k = 0; k < 2; k++) {
		bench_op_init(&op[k], c->op, k == SERVER_ECHO, token);
		if (bench_op_verify(&op[k], servers[k]->sock[c->transport], env->timeout_ms, err,
		        sizeof(err)) != 0) {
			cell_failed(servers[k], c->op, c->transport, c->concurrency, err);
			goto done;
		}
	}
	for (unsigned r = 0; r < (o->count > 0 ? 1 : o->rounds); r++) {
		for (int k = 0; k < 2; k++) {
			spec.op = &op[k].base;
			if (load_run_into(servers[k]->sock[c->transport], &spec, &acc[k], err,
			        sizeof(err)) != 0) {
				cell_failed(servers[k], c->op, c->transport, c->concurrency, err);
				goto done;
			}
			if (bench_server_check_alive(servers[k]) != 0)
				goto done;
		}
	}
	for (int k = 0; k < 2; k++) {
		if (load_summarise(&acc[k], &c->r[k], err, sizeof(err)) != 0) {
			cell_failed(servers[k], c->op, c->transport, c->concurrency, err);
			goto done;
		}
		c->have[k] = true;
	}
	(void)fprintf(stderr, " secretd %8.0f req/s, echo %8.0f req/s\n", c->r[SERVER_SECRETD].rps,
	    c->r[SERVER_ECHO].rps);
	rc = 0;
done:
	load_samples_free(&acc[0]);
	load_samples_free(&acc[1]);
	return rc;
}

static int
run_matrix(const struct options *o, struct bench_env *env, struct bench_report *rep)
{
	static const bool all_transports[N_TRANSPORTS] = {true, true};
	struct bench_server echo;
	struct bench_server sd;
	struct bench_server *servers[2] = {&echo, &sd}; /* by enum bench_server_kind */
	size_t fillers = 0;
	char err[512];
	int rc = -1;

	memset(&echo, 0, sizeof(echo));
	memset(&sd, 0, sizeof(sd));
	rep->cells = calloc(N_TABLE_OPS * N_TRANSPORTS * BENCH_MAX_CONC, sizeof(*rep->cells));
	if (rep->cells == NULL)
		return -1;
	(void)fprintf(stderr, "secretd-bench: starting servers in %s\n", env->dir);
	/* Both listen on both transports; ipc also serves the set-up requests. */
	if (bench_server_start(env, &echo, SERVER_ECHO, "echo", all_transports, NULL) != 0 ||
	    bench_server_start(env, &sd, SERVER_SECRETD, "secretd", all_transports, NULL) != 0)
		goto done;
	if (bench_seed(sd.sock[TR_IPC], env->timeout_ms, err, sizeof(err)) != 0) {
		(void)fprintf(stderr, "secretd-bench: %s\n", err);
		goto done;
	}
	for (int k = 0; k < N_TABLE_OPS; k++) {
		if (!o->ops[k])
			continue;
		if (bench_populate(sd.sock[TR_IPC], &fillers, bench_op_population(k),
		        env->timeout_ms, err, sizeof(err)) != 0) {
			(void)fprintf(stderr, "secretd-bench: filling the store: %s\n", err);
			goto done;
		}
		for (int t = 0; t < N_TRANSPORTS; t++) {
			if (!o->transports[t])
				continue;
			for (size_t i = 0; i < o->n_conc; i++) {
				struct bench_cell *c = &rep->cells[rep->n_cells++];

				c->op = (enum bench_op_kind)k;
				c->transport = (enum bench_transport)t;
				c->concurrency = o->conc[i];
				if (run_cell(o, env, servers, c) != 0)
					goto done;
			}
		}
	}
	rc = 0;
done:
	/* A server that does not stop cleanly fails the run too. */
	if (rc == 0) {
		if (bench_server_stop(&sd, NULL) != 0)
			rc = -1;
		if (bench_server_stop(&echo, NULL) != 0)
			rc = -1;
	}
	bench_server_kill(&sd);
	bench_server_kill(&echo);
	return rc;
}

int
main(int argc, char **argv)
{
	struct options o;
	struct bench_env env;
	struct bench_report rep;
	char echo_buf[PATH_MAX + 32];
	char secretd_buf[PATH_MAX + 32];
	char *command = NULL;
	int rc = 1;
	int prc;

	memset(&o, 0, sizeof(o));
	memset(&env, 0, sizeof(env));
	memset(&rep, 0, sizeof(rep));
	/* Before parsing: the list options are split in place. */
	command = command_line(argc, argv);
	if (command == NULL)
		goto out;
	prc = parse_options(argc, argv, &o, &env);
	if (prc != 0) {
		rc = prc == 1 ? 0 : 2;
		goto out;
	}
	if (set_default_paths(&env, echo_buf, secretd_buf, sizeof(echo_buf)) != 0) {
		(void)fprintf(stderr, "secretd-bench: cannot find my own directory\n");
		goto out;
	}
	if (access(env.secretd_path, X_OK) != 0 || access(env.echo_path, X_OK) != 0) {
		(void)fprintf(stderr, "secretd-bench: %s or %s is not executable: build first\n",
		    env.secretd_path, env.echo_path);
		goto out;
	}
	if (prepare_env(&env) != 0)
		goto out;
	rep.command = command;
	rep.workers = env.workers;
	rep.duration_s = o.count > 0 ? 0 : o.duration_s;
	rep.warmup_s = o.count > 0 ? 0 : o.warmup_s;
	rep.rounds = o.count > 0 ? 1 : o.rounds;
	bench_report_machine(&rep);
	if (o.scale) {
		rc = bench_scale(&env, &rep, o.json, stdout) == 0 ? 0 : 1;
		goto out;
	}
	if (run_matrix(&o, &env, &rep) != 0) {
		(void)fprintf(stderr, "secretd-bench: FAILED (files kept in %s)\n", env.dir);
		env.keep = true;
		goto out;
	}
	if (o.json)
		bench_report_json(&rep, stdout);
	else
		bench_report_table(&rep, stdout);
	rc = 0;
out:
	if (env.dir[0] != '\0' && !env.keep)
		proc_rmtree(env.dir);
	free(rep.cells);
	free(command);
	free(env.wrap);
	free(o.wrap_copy);
	return rc;
}
