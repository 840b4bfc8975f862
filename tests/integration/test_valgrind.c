/*
 * test_valgrind.c: the server under valgrind memcheck. Starts
 * secretd itself (not through harness_start, which allows a start-up of 10 s) as
 *
 *   valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
 *            --errors-for-leak-kinds=definite secretd ...
 *
 * drives a few hundred mixed calls through libsecretd and a few text frames, an online
 * rekey and a restart over the same database, stops it with SIGTERM and expects exit 0:
 * any invalid access, use of uninitialised memory or definite leak makes valgrind exit 99.
 * ("Possibly lost" blocks, such as nng's thread stacks, are not errors with these flags.)
 * The valgrind binary comes from $VALGRIND (default "valgrind"); exits 77 (skipped) when
 * there is none, saying so.
 */
#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "secretd.h"

#define SKIP 77
#define TIMEOUT_MS 30000

static struct server_proc srv;

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	(void)nanosleep(&ts, NULL);
}

/* Send one text frame and return the reply (caller frees), or NULL. A plain socket with
 * the SP handshake by hand, not a one-shot nng socket (whose close can hang nng 1.5.2:
 * tests/README.md). */
static char *
text_frame(const char *text)
{
	return harness_sp_request(srv.url, text, strlen(text), TIMEOUT_MS, NULL);
}

/* Start secretd under valgrind and wait (up to 120 s) until it answers. */
static bool
start_under_valgrind(const char *valgrind, const char *vlog)
{
	const char *bin = getenv("SECRETD_BIN");
	char log_opt[420];
	const char *argv[] = {valgrind, "--tool=memcheck", "--error-exitcode=99",
	    "--leak-check=full", "--errors-for-leak-kinds=definite", "--track-fds=no",
	    "--num-callers=30", log_opt, bin != NULL ? bin : "secretd", "--listen", srv.url,
	    "--data-dir", srv.data_dir, "--log-level", "info", "--workers", "4", NULL};
	pid_t pid;

	(void)snprintf(log_opt, sizeof(log_opt), "--log-file=%s", vlog);
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		int fd = open(srv.log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			(void)dup2(fd, STDERR_FILENO);
			(void)dup2(fd, STDOUT_FILENO);
		}
		execvp(valgrind, (char *const *)argv);
		_exit(127);
	}
	srv.pid = pid;
	for (int i = 0; i < 1200; i++) {
		char *reply;
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			srv.pid = -1;
			return false;
		}
		reply = text_frame("FROM duckdb_secrets()");
		if (reply != NULL) {
			free(reply);
			return true;
		}
		sleep_ms(100);
	}
	return false;
}

/* A few hundred mixed calls, checked as they go. */
static long
workload(int pass)
{
	secretd_client *c = NULL;
	secretd_rows *rows = NULL;
	secretd_result *res = NULL;
	long calls = 0;
	const char *frames[] = {
	    "CREATE TEMPORARY SECRET tf (TYPE ollama, API_URL 'http://x:11434')",
	    "FROM duckdb_secrets()",
	    "FROM which_secret('ollama://m', 'ollama')",
	    "GET SECRET tf",
	    "DROP SECRET tf",
	    "SELECT * FROM nowhere",
	    "AUTH wrong-token\nFROM duckdb_secrets()",
	};

	CHECK_STATUS(secretd_client_open(srv.url, NULL, &c, NULL), SECRETD_OK);
	for (int i = 0; i < 40; i++) {
		char name[32], value[48];
		secretd_field f[] = {{"api_key", value, 0}, {"base_url", "http://b", 8}};
		secretd_create_args a = {.name = name,
		    .type = "openai",
		    .fields = f,
		    .n_fields = 2,
		    .persistent = i % 2 == 0,
		    .on_conflict = (secretd_conflict)(i % 3)};
		secretd_secret *s = NULL;
		secretd_drop_result d;

		(void)snprintf(name, sizeof(name), "vg-%d-%d", pass, i);
		(void)snprintf(value, sizeof(value), "vg-value-%d-%d", pass, i);
		f[0].value_len = strlen(value);
		CHECK_STATUS(secretd_create(c, &a, TIMEOUT_MS, NULL, NULL), SECRETD_OK);
		a.on_conflict = SECRETD_CONFLICT_ERROR;
		CHECK_STATUS(secretd_create(c, &a, TIMEOUT_MS, NULL, NULL), SECRETD_ALREADY_EXISTS);
		CHECK_STATUS(
		    secretd_get(c, name, SECRETD_STORAGE_ANY, TIMEOUT_MS, &s, NULL), SECRETD_OK);
		CHECK(s != NULL && strcmp(s->fields[0].value, value) == 0);
		secretd_secret_free(s);
		s = NULL;
		CHECK_STATUS(
		    secretd_resolve(c, "openai://x", "openai", TIMEOUT_MS, &s, NULL), SECRETD_OK);
		secretd_secret_free(s);
		CHECK_STATUS(secretd_list(c, NULL, TIMEOUT_MS, &rows, NULL), SECRETD_OK);
		secretd_rows_free(rows);
		rows = NULL;
		CHECK_STATUS(secretd_execute(c,
		                 i % 2 ? "FROM duckdb_secrets(redact := false)"
		                       : "CREATE SECRET (TYPE ollama, API_URL u)",
		                 TIMEOUT_MS, &res, NULL),
		    i % 2 || i == 0 ? SECRETD_OK : SECRETD_ALREADY_EXISTS);
		secretd_result_free(res);
		res = NULL;
		/* Errors too: a bad type, a missing name, a syntax error. */
		a.type = "nosuchtype";
		CHECK_STATUS(
		    secretd_create(c, &a, TIMEOUT_MS, NULL, NULL), SECRETD_INVALID_ARGUMENT);
		CHECK_STATUS(secretd_get(c, "no-such", SECRETD_STORAGE_ANY, TIMEOUT_MS, &s, NULL),
		    SECRETD_NOT_FOUND);
		CHECK_STATUS(secretd_execute(c, "CREATE SECRET (", TIMEOUT_MS, &res, NULL),
		    SECRETD_INVALID_ARGUMENT);
		if (i % 4 == 3)
			CHECK_STATUS(
			    secretd_drop(c, name, SECRETD_STORAGE_ANY, false, TIMEOUT_MS, &d, NULL),
			    SECRETD_OK);
		calls += i % 4 == 3 ? 10 : 9;
	}
	if (pass == 0) {
		CHECK_STATUS(secretd_rekey(c, TIMEOUT_MS, NULL, 0, NULL), SECRETD_OK);
		calls++;
	}
	secretd_client_close(c);
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		char *reply = text_frame(frames[i]);

		CHECK(reply != NULL && reply[0] == '{');
		free(reply);
		calls++;
	}
	return calls;
}

/* SIGTERM and wait; the exit status (99: valgrind found errors). */
static int
stop(void)
{
	int status = 0;

	if (srv.pid <= 0)
		return -1;
	(void)kill(srv.pid, SIGTERM);
	if (waitpid(srv.pid, &status, 0) != srv.pid)
		return -1;
	srv.pid = -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Print valgrind's summary lines from its log. */
static void
print_summary(const char *vlog, int pass)
{
	char *text = file_read(vlog, NULL);
	char *save = NULL;

	if (text == NULL)
		return;
	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		if (strstr(line, "ERROR SUMMARY") != NULL ||
		    strstr(line, "definitely lost") != NULL ||
		    strstr(line, "indirectly lost") != NULL)
			fprintf(stderr, "valgrind pass %d: %s\n", pass, line);
	free(text);
}

int
main(void)
{
	const char *valgrind = getenv("VALGRIND") != NULL ? getenv("VALGRIND") : "valgrind";
	const char *argv[] = {valgrind, "--version", NULL};
	char out[128], err[128];
	long calls = 0;

	if (run_capture(argv, NULL, out, sizeof(out), err, sizeof(err)) != 0) {
		fprintf(stderr, "SKIP: %s is not installed\n", valgrind);
		return SKIP;
	}
	if (!harness_init(&srv))
		return 1;
	for (int pass = 0; pass < 2; pass++) {
		char vlog[400];
		int rc;

		(void)snprintf(vlog, sizeof(vlog), "%s/valgrind-%d.log", srv.dir, pass);
		if (!start_under_valgrind(valgrind, vlog)) {
			fprintf(stderr, "secretd did not start under valgrind (log: %s)\n",
			    srv.log_path);
			CHECK(!"start under valgrind");
			break;
		}
		calls += workload(pass);
		rc = stop();
		print_summary(vlog, pass);
		CHECK_STATUS(rc, 0);
		if (rc != 0)
			fprintf(stderr, "valgrind report: %s\n", vlog);
	}
	fprintf(stderr, "valgrind: %ld calls over 2 server runs (start, load, rekey, SIGTERM)\n",
	    calls);
	if (check_failures_ == 0)
		harness_cleanup(&srv);
	else
		fprintf(stderr, "kept %s for inspection\n", srv.dir);
	return check_report();
}
