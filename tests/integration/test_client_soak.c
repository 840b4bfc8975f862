/*
 * test_client_soak.c: a long-lived client process stays healthy. It
 * opens and closes SOAK_HANDLES client handles (2,000 by default; SOAK_HANDLES=10000 for
 * the long run), one call through each, while another thread stops and restarts the server
 * under it every ~400 ms. At the start (after the first call, so that nng's own threads
 * exist) and at the end it reads its threads, open fds, VmRSS and CPU time from /proc, and
 * at the end it measures every thread's CPU over one idle second: flat, and no thread
 * spinning (nng 1.5.2's poller can spin on EPOLLHUP after a close hangs: tests/README.md).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "secretd.h"

#define RESTART_EVERY_MS 400
#define IDLE_CPU_MAX_PERMILLE 50 /* 5% of a core for the whole process, idle */

static struct server_proc srv;
static atomic_bool stop_restarts;
static atomic_int restarts;

struct usage {
	long threads;
	long fds;
	long rss_kb;
	long long cpu_ms;
};

static long long
mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long
cpu_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
usage_read(struct usage *u)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	DIR *d;
	struct dirent *de;

	memset(u, 0, sizeof(*u));
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "Threads:", 8) == 0)
			u->threads = atol(line + 8);
		else if (strncmp(line, "VmRSS:", 6) == 0)
			u->rss_kb = atol(line + 6);
	}
	if (f != NULL)
		(void)fclose(f);
	d = opendir("/proc/self/fd");
	while (d != NULL && (de = readdir(d)) != NULL)
		u->fds += de->d_name[0] != '.';
	if (d != NULL)
		(void)closedir(d);
	u->fds -= 1; /* the directory stream itself */
	u->cpu_ms = cpu_ms();
}

static void *
restarter_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_restarts)) {
		usleep(RESTART_EVERY_MS * 1000);
		if (harness_stop(&srv) != 0)
			fprintf(stderr, "server did not exit 0\n");
		if (!harness_start(&srv, NULL)) {
			fprintf(stderr, "server did not come back\n");
			break;
		}
		atomic_fetch_add(&restarts, 1);
	}
	return NULL;
}

static secretd_status
one_handle(void)
{
	secretd_client *c = NULL;
	secretd_rows *rows = NULL;
	secretd_status st = secretd_client_open(srv.url, NULL, &c, NULL);

	if (st != SECRETD_OK)
		return st;
	st = secretd_list(c, NULL, 2000, &rows, NULL);
	secretd_rows_free(rows);
	secretd_client_close(c);
	return st;
}

int
main(void)
{
	long handles = 2000;
	long ok = 0, unavailable = 0, other = 0;
	struct usage u0, u1;
	pthread_t th;
	long long t0, idle_cpu0, idle_wall0, idle_permille;

	if (getenv("SOAK_HANDLES") != NULL && atol(getenv("SOAK_HANDLES")) > 0)
		handles = atol(getenv("SOAK_HANDLES"));
	if (!harness_init(&srv) || !harness_start(&srv, NULL)) {
		fprintf(stderr, "cannot start secretd (log: %s)\n", srv.log_path);
		return 1;
	}
	srv.extra[0] = "--log-level";
	srv.extra[1] = "warn";
	CHECK_STATUS(one_handle(), SECRETD_OK);
	usage_read(&u0);
	t0 = mono_ms();
	CHECK(pthread_create(&th, NULL, restarter_main, NULL) == 0);
	for (long i = 0; i < handles; i++) {
		secretd_status st = one_handle();

		if (st == SECRETD_OK)
			ok++;
		else if (st == SECRETD_UNAVAILABLE || st == SECRETD_DEADLINE_EXCEEDED)
			unavailable++; /* the server was down at that moment */
		else
			other++;
	}
	atomic_store(&stop_restarts, true);
	(void)pthread_join(th, NULL);
	/* The server is up again: one more call must go through. */
	CHECK_STATUS(one_handle(), SECRETD_OK);
	usage_read(&u1);
	idle_cpu0 = cpu_ms();
	idle_wall0 = mono_ms();
	usleep(1000000);
	idle_permille = (cpu_ms() - idle_cpu0) * 1000 / (mono_ms() - idle_wall0);

	fprintf(stderr,
	    "client soak: %ld handles opened and closed in %lld ms, one call each: %ld OK, %ld "
	    "while the server was down (UNAVAILABLE/DEADLINE_EXCEEDED), %ld other; %d server "
	    "restarts\n",
	    handles, mono_ms() - t0, ok, unavailable, other, atomic_load(&restarts));
	fprintf(stderr,
	    "  start: %ld threads, %ld fds, VmRSS %ld kB\n"
	    "  end:   %ld threads, %ld fds, VmRSS %ld kB; CPU over the soak %lld ms, then "
	    "%lld.%lld%% of a core over 1 s idle\n",
	    u0.threads, u0.fds, u0.rss_kb, u1.threads, u1.fds, u1.rss_kb,
	    u1.cpu_ms - u0.cpu_ms, idle_permille / 10, idle_permille % 10);
	CHECK(other == 0);
	CHECK(ok > handles / 4);
	CHECK(atomic_load(&restarts) > 0);
	CHECK(u1.threads <= u0.threads);
	CHECK(u1.fds <= u0.fds + 2); /* a connection being re-established at the moment */
#ifndef __SANITIZE_ADDRESS__
	/* (ASan's quarantine holds freed memory on purpose: RSS says nothing there.) */
	CHECK(u1.rss_kb <= u0.rss_kb + 8192);
#endif
	CHECK(idle_permille <= IDLE_CPU_MAX_PERMILLE);
	CHECK_STATUS(harness_stop(&srv), 0);
	harness_cleanup(&srv);
	return check_report();
}
