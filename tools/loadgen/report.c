/*
 * report.c: the machine line, the ratio table, the performance targets (README
 * "Performance"), and the same as JSON.
 *
 * A ratio compares secretd with the echo server in the same cell (operation, transport,
 * concurrency): requests/s as secretd / echo (higher is better), p50 as secretd / echo (lower
 * is better). Targets are reported, not enforced: a missed one says by how much.
 *
 * Thread safety: main thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

struct target {
	char what[160];
	bool measured;
	bool met;
	double value;
	double limit;
	const char *unit; /* "x echo", "x c=1" */
	bool at_least;    /* value >= limit is met; otherwise value <= limit */
};

void
bench_report_machine(struct bench_report *rep)
{
	char line[512];
	char model[160] = "unknown CPU";
	struct utsname u;
	time_t now = time(NULL);
	struct tm tm;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (f != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			char *colon = strchr(line, ':');

			if (strncmp(line, "model name", 10) != 0 || colon == NULL)
				continue;
			colon++;
			while (*colon == ' ' || *colon == '\t')
				colon++;
			colon[strcspn(colon, "\n")] = '\0';
			(void)snprintf(model, sizeof(model), "%s", colon);
			break;
		}
		(void)fclose(f);
	}
	rep->nproc = sysconf(_SC_NPROCESSORS_ONLN);
	if (uname(&u) != 0)
		(void)snprintf(u.release, sizeof(u.release), "?");
	(void)snprintf(rep->machine, sizeof(rep->machine), "%s, %ld CPUs online, Linux %s", model,
	    rep->nproc, u.release);
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(rep->date, sizeof(rep->date), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)snprintf(rep->date, sizeof(rep->date), "?");
}

static const struct bench_cell *
find_cell(
    const struct bench_report *rep, enum bench_op_kind op, enum bench_transport t, unsigned conc)
{
	for (size_t i = 0; i < rep->n_cells; i++) {
		const struct bench_cell *c = &rep->cells[i];

		if (c->op == op && c->transport == t && c->concurrency == conc && c->have[0] &&
		    c->have[1])
			return c;
	}
	return NULL;
}

static double
rps_ratio(const struct bench_cell *c)
{
	return c->r[SERVER_ECHO].rps > 0 ? c->r[SERVER_SECRETD].rps / c->r[SERVER_ECHO].rps : 0;
}

static double
p50_ratio(const struct bench_cell *c)
{
	return c->r[SERVER_ECHO].p50_us > 0 ? c->r[SERVER_SECRETD].p50_us / c->r[SERVER_ECHO].p50_us
	                                    : 0;
}

static void
target_set(
    struct target *t, bool measured, double value, double limit, bool at_least, const char *unit)
{
	t->measured = measured;
	t->value = value;
	t->limit = limit;
	t->at_least = at_least;
	t->unit = unit;
	t->met = measured && (at_least ? value >= limit : value <= limit);
}

/* The performance targets that the main table can answer. Returns how many it filled. */
static size_t
targets(const struct bench_report *rep, struct target *ts, size_t max)
{
	static const enum bench_op_kind fast_ops[] = {OP_GET, OP_CREATE_TEMP};
	static const unsigned concs[] = {8, 64};
	const struct bench_cell *c;
	const struct bench_cell *c1;
	size_t n = 0;

	for (size_t i = 0; i < 2 && n + 3 <= max; i++) {
		for (size_t j = 0; j < 2; j++) {
			c = find_cell(rep, fast_ops[i], TR_IPC, concs[j]);
			(void)snprintf(ts[n].what, sizeof(ts[n].what), "%s, ipc, c=%u: req/s",
			    bench_op_label(fast_ops[i]), concs[j]);
			target_set(&ts[n++], c != NULL, c != NULL ? rps_ratio(c) : 0, 0.85, true,
			    "x echo");
		}
		c = find_cell(rep, fast_ops[i], TR_IPC, 1);
		(void)snprintf(ts[n].what, sizeof(ts[n].what), "%s, ipc, c=1: p50 latency",
		    bench_op_label(fast_ops[i]));
		target_set(
		    &ts[n++], c != NULL, c != NULL ? p50_ratio(c) : 0, 1.15, false, "x echo");
	}
	if (n + 2 > max)
		return n;
	c = find_cell(rep, OP_LIST, TR_IPC, 8);
	(void)snprintf(
	    ts[n].what, sizeof(ts[n].what), "%s, ipc, c=8: req/s", bench_op_label(OP_LIST));
	target_set(&ts[n++], c != NULL, c != NULL ? rps_ratio(c) : 0, 0.6, true, "x echo");
	c = find_cell(rep, OP_CREATE_PERSIST, TR_IPC, 64);
	c1 = find_cell(rep, OP_CREATE_PERSIST, TR_IPC, 1);
	(void)snprintf(ts[n].what, sizeof(ts[n].what),
	    "%s, ipc: req/s at c=64 over c=1 (group commit)", bench_op_label(OP_CREATE_PERSIST));
	target_set(&ts[n++], c != NULL && c1 != NULL && c1->r[SERVER_SECRETD].rps > 0,
	    c != NULL && c1 != NULL && c1->r[SERVER_SECRETD].rps > 0
	        ? c->r[SERVER_SECRETD].rps / c1->r[SERVER_SECRETD].rps
	        : 0,
	    10.0, true, "x c=1");
	/* group commit that grows with load, with the default worker count. */
	if (n + 2 > max)
		return n;
	(void)snprintf(ts[n].what, sizeof(ts[n].what), "%s, ipc, c=64: req/s",
	    bench_op_label(OP_CREATE_PERSIST));
	target_set(&ts[n++], c != NULL, c != NULL ? rps_ratio(c) : 0, 0.6, true, "x echo");
	(void)snprintf(ts[n].what, sizeof(ts[n].what), "%s, ipc: req/s at c=64 over c=1",
	    bench_op_label(OP_CREATE_PERSIST));
	target_set(&ts[n++], c != NULL && c1 != NULL && c1->r[SERVER_SECRETD].rps > 0,
	    c != NULL && c1 != NULL && c1->r[SERVER_SECRETD].rps > 0
	        ? c->r[SERVER_SECRETD].rps / c1->r[SERVER_SECRETD].rps
	        : 0,
	    5.0, true, "x c=1");
	return n;
}

static void
print_target(FILE *out, const struct target *t)
{
	if (!t->measured) {
		(void)fprintf(out, "  [n/a ]  %-66s not measured in this run\n", t->what);
		return;
	}
	(void)fprintf(out, "  [%s]  %-66s %6.2f %s (target %s %.2f", t->met ? "met " : "MISS",
	    t->what, t->value, t->unit, t->at_least ? ">=" : "<=", t->limit);
	if (!t->met)
		(void)fprintf(out, "; %s by %.0f%%", "missed",
		    100.0 * (t->at_least ? (t->limit - t->value) / t->limit
		                         : (t->value - t->limit) / t->limit));
	(void)fprintf(out, ")\n");
}

void
bench_report_table(const struct bench_report *rep, FILE *out)
{
	struct target ts[16];
	size_t nt;

	(void)fprintf(out, "secretd benchmark, %s\n", rep->date);
	(void)fprintf(out, "machine: %s\n", rep->machine);
	(void)fprintf(out, "command: %s\n", rep->command);
	(void)fprintf(out,
	    "cells: closed loop, each requester on its own nng context; per cell and server "
	    "%.2f s measured in %u alternating rounds (echo, secretd, ...), each after a %.2f s "
	    "warm-up; server workers: %s\n",
	    rep->duration_s, rep->rounds, rep->warmup_s,
	    rep->workers != NULL ? rep->workers : "default (4 per core)");
	(void)fprintf(out, "latency in microseconds per request; ratio = secretd / echo\n\n");
	(void)fprintf(out, "%-24s %-3s %4s | %9s %8s %8s %8s | %9s %8s %8s %8s | %6s %6s\n",
	    "operation", "tr", "conc", "secretd/s", "p50", "p99", "p99.9", "echo/s", "p50", "p99",
	    "p99.9", "req/s", "p50");
	for (size_t i = 0; i < rep->n_cells; i++) {
		const struct bench_cell *c = &rep->cells[i];
		const struct load_result *s = &c->r[SERVER_SECRETD];
		const struct load_result *e = &c->r[SERVER_ECHO];

		(void)fprintf(out, "%-24s %-3s %4u |", bench_op_label(c->op),
		    bench_transport_name(c->transport), c->concurrency);
		if (c->have[SERVER_SECRETD])
			(void)fprintf(out, " %9.0f %8.1f %8.1f %8.1f |", s->rps, s->p50_us,
			    s->p99_us, s->p999_us);
		else
			(void)fprintf(out, " %9s %8s %8s %8s |", "-", "-", "-", "-");
		if (c->have[SERVER_ECHO])
			(void)fprintf(out, " %9.0f %8.1f %8.1f %8.1f |", e->rps, e->p50_us,
			    e->p99_us, e->p999_us);
		else
			(void)fprintf(out, " %9s %8s %8s %8s |", "-", "-", "-", "-");
		if (c->have[0] && c->have[1])
			(void)fprintf(out, " %6.2f %6.2f\n", rps_ratio(c), p50_ratio(c));
		else
			(void)fprintf(out, " %6s %6s\n", "-", "-");
	}
	nt = targets(rep, ts, sizeof(ts) / sizeof(ts[0]));
	(void)fprintf(out, "\ntargets (reported, not enforced):\n");
	for (size_t i = 0; i < nt; i++)
		print_target(out, &ts[i]);
}

void
bench_json_str(FILE *out, const char *s)
{
	(void)fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			(void)fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			(void)fprintf(out, "\\u%04x", ch);
		else
			(void)fputc(ch, out);
	}
	(void)fputc('"', out);
}

static void
json_result(FILE *out, const char *key, const struct load_result *r)
{
	(void)fprintf(out,
	    "\"%s\":{\"requests\":%llu,\"seconds\":%.3f,\"rps\":%.1f,\"mean_us\":%.2f,"
	    "\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f}",
	    key, (unsigned long long)r->requests, r->seconds, r->rps, r->mean_us, r->p50_us,
	    r->p99_us, r->p999_us, r->max_us);
}

void
bench_json_header(const struct bench_report *rep, FILE *out)
{
	(void)fprintf(out, "\"date\":");
	bench_json_str(out, rep->date);
	(void)fprintf(out, ",\"machine\":");
	bench_json_str(out, rep->machine);
	(void)fprintf(out, ",\"nproc\":%ld,\"command\":", rep->nproc);
	bench_json_str(out, rep->command);
}

void
bench_report_json(const struct bench_report *rep, FILE *out)
{
	struct target ts[16];
	size_t nt = targets(rep, ts, sizeof(ts) / sizeof(ts[0]));

	(void)fprintf(out, "{");
	bench_json_header(rep, out);
	(void)fprintf(out,
	    ",\"warmup_s\":%.3f,\"duration_s\":%.3f,\"rounds\":%u,\"workers\":", rep->warmup_s,
	    rep->duration_s, rep->rounds);
	if (rep->workers != NULL)
		bench_json_str(out, rep->workers);
	else
		(void)fprintf(out, "null");
	(void)fprintf(out, ",\n\"cells\":[");
	for (size_t i = 0; i < rep->n_cells; i++) {
		const struct bench_cell *c = &rep->cells[i];

		(void)fprintf(
		    out, "%s\n{\"op\":\"%s\",\"label\":", i > 0 ? "," : "", bench_op_name(c->op));
		bench_json_str(out, bench_op_label(c->op));
		(void)fprintf(out, ",\"transport\":\"%s\",\"concurrency\":%u",
		    bench_transport_name(c->transport), c->concurrency);
		if (c->have[SERVER_SECRETD]) {
			(void)fprintf(out, ",");
			json_result(out, "secretd", &c->r[SERVER_SECRETD]);
		}
		if (c->have[SERVER_ECHO]) {
			(void)fprintf(out, ",");
			json_result(out, "echo", &c->r[SERVER_ECHO]);
		}
		if (c->have[0] && c->have[1])
			(void)fprintf(out, ",\"rps_ratio\":%.4f,\"p50_ratio\":%.4f", rps_ratio(c),
			    p50_ratio(c));
		(void)fprintf(out, "}");
	}
	(void)fprintf(out, "],\n\"targets\":[");
	for (size_t i = 0; i < nt; i++) {
		(void)fprintf(out, "%s\n{\"what\":", i > 0 ? "," : "");
		bench_json_str(out, ts[i].what);
		if (ts[i].measured)
			(void)fprintf(out,
			    ",\"value\":%.4f,\"limit\":%.4f,\"unit\":\"%s\",\"op\":\"%s\","
			    "\"met\":%s}",
			    ts[i].value, ts[i].limit, ts[i].unit,
			    ts[i].at_least ? ">=" : "<=", ts[i].met ? "true" : "false");
		else
			(void)fprintf(out, ",\"measured\":false}");
	}
	(void)fprintf(out, "]}\n");
}
