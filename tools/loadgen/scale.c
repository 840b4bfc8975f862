/*
 * scale.c: the scale figures of README "Performance" (secretd-bench --scale).
 *
 *  1. Start-up: a secretd writes 100,000 persistent secrets, created by 64 concurrent
 *     requesters (the fastest way the server allows; each is durable before it is answered),
 *     is stopped, and is restarted three times; start-up is the time from spawn until it
 *     answers over ipc, which includes loading the database.
 *  2. List and Resolve at 100, 1,000, 10,000 and 100,000 temporary secrets, one request at a
 *     time (concurrency 1), to show how their cost grows.
 *  3. Memory: VmRSS of a fresh secretd before and after 1,000,000 temporary secrets (64
 *     concurrent creates, a 32-byte value each), minus the values: bytes per secret.
 *
 * Every server here listens on ipc only (tcp adds nothing to these figures). Thread safety:
 * main thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "proc.h"

#define START_SECRETS 100000UL
#define MEM_SECRETS 1000000UL
#define MEM_VALUE_LEN 32
#define MEM_NAME_LEN 8
#define RESTARTS 3
#define FILL_CONC 64

static const size_t scale_sizes[] = {100, 1000, 10000, 100000};
#define N_SIZES (sizeof(scale_sizes) / sizeof(scale_sizes[0]))

struct scale_figures {
	double pcreate_s;
	double pcreate_rps;
	double stop_s;
	double start_s[RESTARTS];
	double start_max_s;
	struct load_result list[N_SIZES];
	struct load_result resolve[N_SIZES];
	long rss_before_kib;
	long rss_after_kib;
	double mcreate_s;
	double bytes_per_secret; /* beyond the value */
};

static const bool ipc_only[N_TRANSPORTS] = {true, false};

static int
run_count(struct bench_env *env, struct bench_server *s, struct bench_op *op, unsigned conc,
    uint64_t count, struct load_result *res)
{
	struct load_spec spec = {
	    .op = &op->base,
	    .concurrency = conc,
	    .count = count,
	    .timeout_ms = env->timeout_ms,
	};
	char err[512];

	if (load_run(s->sock[TR_IPC], &spec, res, err, sizeof(err)) != 0) {
		(void)fprintf(stderr, "secretd-bench: %s: %s\n", bench_op_label(op->kind), err);
		(void)bench_server_check_alive(s);
		return -1;
	}
	return bench_server_check_alive(s);
}

static int
figure_startup(struct bench_env *env, struct scale_figures *f)
{
	struct bench_server s;
	struct bench_op op;
	struct load_result res;
	int rc = -1;

	memset(&s, 0, sizeof(s));
	(void)fprintf(stderr, "scale: creating %lu persistent secrets (%d concurrent)...\n",
	    START_SECRETS, FILL_CONC);
	if (bench_server_start(env, &s, SERVER_SECRETD, "scale-start", ipc_only, NULL) != 0)
		goto done;
	bench_op_init(&op, OP_PCREATE, false, NULL);
	if (run_count(env, &s, &op, FILL_CONC, START_SECRETS, &res) != 0)
		goto done;
	f->pcreate_s = res.seconds;
	f->pcreate_rps = res.rps;
	(void)fprintf(stderr, "scale: %.1f s (%.0f creates/s); restarting %d times\n", res.seconds,
	    res.rps, RESTARTS);
	if (bench_server_stop(&s, &f->stop_s) != 0)
		goto done;
	for (int i = 0; i < RESTARTS; i++) {
		if (bench_server_start(env, &s, SERVER_SECRETD, "scale-start", ipc_only, NULL) != 0)
			goto done;
		f->start_s[i] = s.ready_s;
		if (s.ready_s > f->start_max_s)
			f->start_max_s = s.ready_s;
		/* The last secret written is there after the restart. */
		bench_op_init(&op, OP_PGET, false, NULL);
		op.base_k = START_SECRETS - 1;
		if (run_count(env, &s, &op, 1, 1, &res) != 0 || bench_server_stop(&s, NULL) != 0)
			goto done;
		(void)fprintf(stderr, "scale: start-up %d: %.3f s\n", i + 1, f->start_s[i]);
	}
	rc = 0;
done:
	bench_server_kill(&s);
	return rc;
}

/* About one second of one-at-a-time requests (at least 5, at most 5000). */
static int
measure_c1(
    struct bench_env *env, struct bench_server *s, struct bench_op *op, struct load_result *res)
{
	uint64_t n;

	if (run_count(env, s, op, 1, 3, res) != 0)
		return -1;
	n = res->mean_us > 0 ? (uint64_t)(1e6 / res->mean_us) : 5000;
	n = n < 5 ? 5 : n > 5000 ? 5000 : n;
	return run_count(env, s, op, 1, n, res);
}

static int
figure_listing(struct bench_env *env, struct scale_figures *f)
{
	struct bench_server s;
	struct bench_op op;
	size_t fillers = 0;
	char err[512];
	int rc = -1;

	memset(&s, 0, sizeof(s));
	if (bench_server_start(env, &s, SERVER_SECRETD, "scale-list", ipc_only, NULL) != 0)
		goto done;
	if (bench_seed(s.sock[TR_IPC], env->timeout_ms, err, sizeof(err)) != 0) {
		(void)fprintf(stderr, "secretd-bench: %s\n", err);
		goto done;
	}
	for (size_t i = 0; i < N_SIZES; i++) {
		(void)fprintf(
		    stderr, "scale: List and Resolve at %zu secrets...\n", scale_sizes[i]);
		if (bench_populate(s.sock[TR_IPC], &fillers, scale_sizes[i], env->timeout_ms, err,
		        sizeof(err)) != 0) {
			(void)fprintf(stderr, "secretd-bench: filling the store: %s\n", err);
			goto done;
		}
		bench_op_init(&op, OP_LIST, false, NULL);
		op.population = scale_sizes[i];
		if (bench_op_verify(&op, s.sock[TR_IPC], env->timeout_ms, err, sizeof(err)) != 0) {
			(void)fprintf(stderr, "secretd-bench: %s\n", err);
			goto done;
		}
		if (measure_c1(env, &s, &op, &f->list[i]) != 0)
			goto done;
		bench_op_init(&op, OP_RESOLVE, false, NULL);
		op.population = scale_sizes[i];
		op.resolve_target = bench_resolve_target(scale_sizes[i]);
		if (bench_op_verify(&op, s.sock[TR_IPC], env->timeout_ms, err, sizeof(err)) != 0) {
			(void)fprintf(stderr, "secretd-bench: %s\n", err);
			goto done;
		}
		if (measure_c1(env, &s, &op, &f->resolve[i]) != 0)
			goto done;
	}
	rc = bench_server_stop(&s, NULL);
done:
	bench_server_kill(&s);
	return rc;
}

static int
figure_memory(struct bench_env *env, struct scale_figures *f)
{
	static const char *const extra[] = {"--max-secrets", "2000000", NULL};
	struct bench_server s;
	struct bench_op op;
	struct load_result res;
	int rc = -1;

	memset(&s, 0, sizeof(s));
	if (bench_server_start(env, &s, SERVER_SECRETD, "scale-mem", ipc_only, extra) != 0)
		goto done;
	/* Warm up every worker and the 64 contexts, so the baseline holds their buffers. */
	bench_op_init(&op, OP_LIST, false, NULL);
	op.population = 0;
	if (run_count(env, &s, &op, FILL_CONC, 64 * 20, &res) != 0)
		goto done;
	f->rss_before_kib = proc_rss_kib(s.pid);
	(void)fprintf(stderr, "scale: creating %lu temporary secrets (%d concurrent)...\n",
	    MEM_SECRETS, FILL_CONC);
	bench_op_init(&op, OP_MCREATE, false, NULL);
	if (run_count(env, &s, &op, FILL_CONC, MEM_SECRETS, &res) != 0)
		goto done;
	f->mcreate_s = res.seconds;
	f->rss_after_kib = proc_rss_kib(s.pid);
	if (f->rss_before_kib < 0 || f->rss_after_kib < 0) {
		(void)fprintf(stderr, "secretd-bench: cannot read VmRSS of pid %ld\n", (long)s.pid);
		goto done;
	}
	f->bytes_per_secret =
	    (double)(f->rss_after_kib - f->rss_before_kib) * 1024.0 / (double)MEM_SECRETS -
	    MEM_VALUE_LEN;
	rc = bench_server_stop(&s, NULL);
done:
	bench_server_kill(&s);
	return rc;
}

static size_t
size_index(size_t n)
{
	for (size_t i = 0; i < N_SIZES; i++)
		if (scale_sizes[i] == n)
			return i;
	return 0;
}

static void
print_text(const struct bench_report *rep, const struct scale_figures *f, FILE *out)
{
	double r1k = f->resolve[size_index(1000)].p50_us;
	double r100k = f->resolve[size_index(100000)].p50_us;
	double rratio = r1k > 0 ? r100k / r1k : 0;
	bool ok;

	(void)fprintf(out, "secretd scale figures, %s\n", rep->date);
	(void)fprintf(out, "machine: %s\ncommand: %s\n\n", rep->machine, rep->command);
	(void)fprintf(out,
	    "start-up with %lu persistent secrets (written by %d concurrent creates in %.1f s, "
	    "%.0f creates/s; clean stop %.3f s):\n",
	    START_SECRETS, FILL_CONC, f->pcreate_s, f->pcreate_rps, f->stop_s);
	for (int i = 0; i < RESTARTS; i++)
		(void)fprintf(
		    out, "  restart %d: %.3f s until it answered\n", i + 1, f->start_s[i]);
	(void)fprintf(out,
	    "\nmemory at %lu temporary secrets (name %d bytes, one 32-byte api_key, default "
	    "scope; created in %.1f s):\n"
	    "  VmRSS %ld KiB before, %ld KiB after: %.1f bytes per secret beyond the value\n",
	    MEM_SECRETS, MEM_NAME_LEN, f->mcreate_s, f->rss_before_kib, f->rss_after_kib,
	    f->bytes_per_secret);
	(void)fprintf(out, "\nList (redacted, all rows) and Resolve at concurrency 1, ipc "
	                   "(microseconds per request):\n");
	(void)fprintf(out, "  %9s | %10s %10s %10s | %10s %10s %10s\n", "secrets", "List p50",
	    "mean", "x prev", "Resolve p50", "mean", "x prev");
	for (size_t i = 0; i < N_SIZES; i++) {
		const struct load_result *l = &f->list[i];
		const struct load_result *r = &f->resolve[i];

		(void)fprintf(out, "  %9zu | %10.1f %10.1f %10.2f | %10.1f %10.1f %10.2f\n",
		    scale_sizes[i], l->p50_us, l->mean_us,
		    i > 0 && f->list[i - 1].p50_us > 0 ? l->p50_us / f->list[i - 1].p50_us : 0,
		    r->p50_us, r->mean_us,
		    i > 0 && f->resolve[i - 1].p50_us > 0 ? r->p50_us / f->resolve[i - 1].p50_us
		                                          : 0);
	}
	(void)fprintf(out, "\ntargets (reported, not enforced):\n");
	ok = f->start_max_s <= 1.0;
	(void)fprintf(out, "  [%s]  start-up with 100,000 persistent secrets: %.3f s (<= 1 s)\n",
	    ok ? "met " : "MISS", f->start_max_s);
	ok = f->bytes_per_secret <= 300.0;
	(void)fprintf(out,
	    "  [%s]  overhead per temporary secret at 1,000,000: %.0f B (<= 300 B)\n",
	    ok ? "met " : "MISS", f->bytes_per_secret);
	ok = rratio > 0 && rratio <= 2.0;
	(void)fprintf(out,
	    "  [%s]  Resolve p50 at 100,000 over 1,000: %.2f x (<= 2 x; %.1f us vs %.1f us)\n",
	    ok ? "met " : "MISS", rratio, r100k, r1k);
}

static void
json_result(FILE *out, const struct load_result *r)
{
	(void)fprintf(out, "{\"requests\":%llu,\"p50_us\":%.2f,\"mean_us\":%.2f,\"p99_us\":%.2f}",
	    (unsigned long long)r->requests, r->p50_us, r->mean_us, r->p99_us);
}

static void
print_json(const struct bench_report *rep, const struct scale_figures *f, FILE *out)
{
	double r1k = f->resolve[size_index(1000)].p50_us;
	double r100k = f->resolve[size_index(100000)].p50_us;

	(void)fprintf(out, "{");
	bench_json_header(rep, out);
	(void)fprintf(out,
	    ",\n\"startup\":{\"persistent_secrets\":%lu,\"create_seconds\":%.3f,"
	    "\"create_rps\":%.1f,\"stop_seconds\":%.3f,\"start_seconds\":[",
	    START_SECRETS, f->pcreate_s, f->pcreate_rps, f->stop_s);
	for (int i = 0; i < RESTARTS; i++)
		(void)fprintf(out, "%s%.4f", i > 0 ? "," : "", f->start_s[i]);
	(void)fprintf(out, "],\"max_seconds\":%.4f,\"target_seconds\":1.0,\"met\":%s},\n",
	    f->start_max_s, f->start_max_s <= 1.0 ? "true" : "false");
	(void)fprintf(out,
	    "\"memory\":{\"temporary_secrets\":%lu,\"value_bytes\":%d,\"name_bytes\":%d,"
	    "\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,\"bytes_per_secret\":%.1f,"
	    "\"target_bytes\":300,\"met\":%s},\n",
	    MEM_SECRETS, MEM_VALUE_LEN, MEM_NAME_LEN, f->rss_before_kib, f->rss_after_kib,
	    f->bytes_per_secret, f->bytes_per_secret <= 300.0 ? "true" : "false");
	(void)fprintf(out, "\"listing\":[");
	for (size_t i = 0; i < N_SIZES; i++) {
		(void)fprintf(
		    out, "%s\n{\"secrets\":%zu,\"list\":", i > 0 ? "," : "", scale_sizes[i]);
		json_result(out, &f->list[i]);
		(void)fprintf(out, ",\"resolve\":");
		json_result(out, &f->resolve[i]);
		(void)fprintf(out, "}");
	}
	(void)fprintf(out,
	    "],\n\"resolve_100k_over_1k\":{\"value\":%.3f,\"target\":2.0,\"met\":%s}}\n",
	    r1k > 0 ? r100k / r1k : 0, r1k > 0 && r100k / r1k <= 2.0 ? "true" : "false");
}

int
bench_scale(struct bench_env *env, const struct bench_report *rep, bool json, FILE *out)
{
	struct scale_figures f;

	memset(&f, 0, sizeof(f));
	if (figure_startup(env, &f) != 0 || figure_listing(env, &f) != 0 ||
	    figure_memory(env, &f) != 0) {
		(void)fprintf(
		    stderr, "secretd-bench: scale figures FAILED (files kept in %s)\n", env->dir);
		env->keep = true;
		return -1;
	}
	if (json)
		print_json(rep, &f, out);
	else
		print_text(rep, &f, out);
	return 0;
}
