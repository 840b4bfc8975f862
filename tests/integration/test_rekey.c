/*
 * test_rekey.c: key rotation (SPEC section 6) against real secretd processes: online
 * rotation while clients keep reading, the old key refused afterwards, and a crash
 * simulated after each step of an offline rotation, recovered at the next start with
 * every secret intact.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "secretd.h"

#define N_SECRETS 200

static struct server_proc srv;
static atomic_bool stop_readers;

static void
value_of(int i, char *buf, size_t len)
{
	(void)snprintf(buf, len, "rk-value-%04d", i);
}

static int
check_all(secretd_client *c)
{
	int bad = 0;

	for (int i = 0; i < N_SECRETS; i++) {
		char name[32], want[32];
		secretd_secret *s = NULL;

		(void)snprintf(name, sizeof(name), "rk%04d", i);
		value_of(i, want, sizeof(want));
		if (secretd_get(c, name, SECRETD_STORAGE_SQLCIPHER, 5000, &s, NULL) != SECRETD_OK ||
		    s == NULL || strcmp(s->fields[0].value, want) != 0)
			bad++;
		secretd_secret_free(s);
	}
	return bad;
}

struct reader {
	secretd_client *c;
	int id;
	long reads;
	long failures;
};

static void *
reader_main(void *p)
{
	struct reader *r = p;

	while (!atomic_load(&stop_readers)) {
		int i = (int)((r->reads * 7 + r->id) % N_SECRETS);
		char name[32], want[32];
		secretd_secret *s = NULL;

		(void)snprintf(name, sizeof(name), "rk%04d", i);
		value_of(i, want, sizeof(want));
		if (secretd_get(r->c, name, 0, 5000, &s, NULL) != SECRETD_OK || s == NULL ||
		    strcmp(s->fields[0].value, want) != 0)
			r->failures++;
		secretd_secret_free(s);
		r->reads++;
	}
	return NULL;
}

static bool
reopen(secretd_client **cp)
{
	secretd_client_close(*cp);
	*cp = NULL;
	return harness_start(&srv, NULL) &&
	       secretd_client_open(srv.url, NULL, cp, NULL) == SECRETD_OK;
}

/* Run `secretd rekey` on the test's data directory; with crash_after, the same rotation
 * through rekey_crash.c, which ends the process right after that step. */
static int
offline_rekey(const char *crash_after)
{
	const char *plain[] = {getenv("SECRETD_BIN"), "--data-dir", srv.data_dir, "rekey", NULL};
	const char *crash[] = {getenv("REKEY_CRASH_BIN"), srv.data_dir, crash_after, NULL};
	char err[2048];

	return run_capture(crash_after != NULL ? crash : plain, NULL, NULL, 0, err, sizeof(err));
}

int
main(void)
{
	secretd_client *c = NULL;
	struct reader readers[4];
	pthread_t th[4];
	char key_path[400], old_key[400], pending[420], cmd[1000];
	long total_reads = 0, total_failures = 0;
	int exit_status = -1;

	if (!harness_init(&srv) || !harness_start(&srv, NULL))
		return 1;
	(void)snprintf(key_path, sizeof(key_path), "%s/secretd.key", srv.data_dir);
	(void)snprintf(old_key, sizeof(old_key), "%s/old.key", srv.dir);
	(void)snprintf(pending, sizeof(pending), "%s.new", key_path);
	CHECK_STATUS(secretd_client_open(srv.url, NULL, &c, NULL), SECRETD_OK);
	for (int i = 0; i < N_SECRETS; i++) {
		char name[32], val[32];
		secretd_field f = {"api_key", val, 0};
		secretd_create_args a = {.name = name,
		    .type = "openai",
		    .fields = &f,
		    .n_fields = 1,
		    .persistent = true};

		(void)snprintf(name, sizeof(name), "rk%04d", i);
		value_of(i, val, sizeof(val));
		f.value_len = strlen(val);
		CHECK_STATUS(secretd_create(c, &a, 5000, NULL, NULL), SECRETD_OK);
	}
	(void)snprintf(cmd, sizeof(cmd), "cp -p '%s' '%s'", key_path, old_key);
	CHECK(system(cmd) == 0);

	/* Online rotation under load. */
	atomic_store(&stop_readers, false);
	for (int i = 0; i < 4; i++) {
		readers[i] = (struct reader){c, i, 0, 0};
		CHECK(pthread_create(&th[i], NULL, reader_main, &readers[i]) == 0);
	}
	for (int k = 0; k < 5; k++) {
		char path[4096];
		secretd_error e;

		usleep(100000);
		CHECK_STATUS(secretd_rekey(c, 30000, path, sizeof(path), &e), SECRETD_OK);
		CHECK_STR(path, key_path);
	}
	usleep(100000);
	atomic_store(&stop_readers, true);
	for (int i = 0; i < 4; i++) {
		(void)pthread_join(th[i], NULL);
		total_reads += readers[i].reads;
		total_failures += readers[i].failures;
	}
	fprintf(
	    stderr, "reads during 5 rotations: %ld, failed: %ld\n", total_reads, total_failures);
	CHECK(total_reads > 100);
	CHECK_STATUS(total_failures, 0);
	CHECK_STATUS(check_all(c), 0);
	CHECK(access(pending, F_OK) != 0);

	/* The old key is refused now; the new one opens the database. */
	secretd_client_close(c);
	c = NULL;
	CHECK_STATUS(harness_stop(&srv), 0);
	srv.extra[0] = "--key-file";
	srv.extra[1] = old_key;
	CHECK(!harness_start(&srv, &exit_status));
	CHECK_STATUS(exit_status, 1);
	srv.extra[0] = NULL;
	CHECK(reopen(&c));
	CHECK_STATUS(check_all(c), 0);
	secretd_client_close(c);
	c = NULL;
	CHECK_STATUS(harness_stop(&srv), 0);

	/* A crash after the new key file was written, before the database changed. */
	CHECK_STATUS(offline_rekey("new-key"), 70);
	CHECK(access(pending, F_OK) == 0);
	CHECK(reopen(&c));
	CHECK(file_contains(srv.log_path, "discarded an interrupted key rotation", 37));
	CHECK(access(pending, F_OK) != 0);
	CHECK_STATUS(check_all(c), 0);
	secretd_client_close(c);
	c = NULL;
	CHECK_STATUS(harness_stop(&srv), 0);

	/* A crash after the database was re-encrypted, before the key file was renamed. */
	(void)snprintf(cmd, sizeof(cmd), "cp -p '%s' '%s'", key_path, old_key);
	CHECK(system(cmd) == 0);
	CHECK_STATUS(offline_rekey("rekey"), 70);
	CHECK(access(pending, F_OK) == 0);
	CHECK(reopen(&c));
	CHECK(file_contains(srv.log_path, "finished an interrupted key rotation", 36));
	CHECK(access(pending, F_OK) != 0);
	CHECK_STATUS(check_all(c), 0);
	secretd_client_close(c);
	c = NULL;
	CHECK_STATUS(harness_stop(&srv), 0);
	/* ... and the key from before that rotation no longer opens it. */
	srv.extra[0] = "--key-file";
	srv.extra[1] = old_key;
	CHECK(!harness_start(&srv, &exit_status));
	CHECK_STATUS(exit_status, 1);
	srv.extra[0] = NULL;

	/* A clean offline rotation. */
	CHECK_STATUS(offline_rekey(NULL), 0);
	CHECK(reopen(&c));
	CHECK_STATUS(check_all(c), 0);
	secretd_client_close(c);
	CHECK_STATUS(harness_stop(&srv), 0);
	harness_cleanup(&srv);
	return check_report();
}
