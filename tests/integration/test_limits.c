/*
 * test_limits.c: every limit of SPEC section 7, set low with its flag, answered with a
 * clear status at the limit + 1 and accepted at the limit, against a real secretd; the
 * server keeps serving and nothing partial is stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "secretd.h"

static secretd_status
create(secretd_client *c, const char *name, const char *value, size_t n_fields, secretd_error *e)
{
	secretd_field f[3] = {
	    {"api_key", value, strlen(value)}, {"base_url", "u", 1}, {"api_key", "dup", 3}};
	secretd_create_args a = {.name = name, .type = "openai", .fields = f, .n_fields = n_fields};

	return secretd_create(c, &a, 5000, NULL, e);
}

/* One text frame of len bytes (a statement padded with spaces) and its reply (caller
 * frees), or NULL. A plain socket with the SP handshake by hand, not a one-shot nng
 * socket (whose close can hang nng 1.5.2: tests/README.md). */
static char *
text_frame(const char *url, size_t len)
{
	char *body = malloc(len);
	char *out;

	if (body == NULL)
		return NULL;
	memset(body, ' ', len);
	memcpy(body, "FROM duckdb_secrets()", 21);
	out = harness_sp_request(url, body, len, 5000, NULL);
	free(body);
	return out;
}

/* secretd's --max-name (and its twin SECRETD_MAX_NAME) stops at SECRETD_NAME_MAX, the
 * longest name libsecretd's results hold: one more is refused at start with a message that
 * says why; SECRETD_NAME_MAX itself is accepted. */
static void
test_max_name_cap(void)
{
	char over[32], at[32], out[256], err[512];
	const char *bin = getenv("SECRETD_BIN");

	(void)snprintf(over, sizeof(over), "%d", SECRETD_NAME_MAX + 1);
	(void)snprintf(at, sizeof(at), "%d", SECRETD_NAME_MAX);
	{
		const char *const argv[] = {bin, "--max-name", over, NULL};

		CHECK_STATUS(run_capture(argv, NULL, out, sizeof(out), err, sizeof(err)), 2);
		CHECK(strstr(err, "--max-name") != NULL && strstr(err, "SECRETD_NAME_MAX") != NULL);
	}
	{
		const char *const argv[] = {bin, "--max-name", at, "--version", NULL};

		CHECK_STATUS(run_capture(argv, NULL, out, sizeof(out), err, sizeof(err)), 0);
	}
	CHECK(setenv("SECRETD_MAX_NAME", over, 1) == 0);
	{
		const char *const argv[] = {bin, "--version", NULL};

		CHECK_STATUS(run_capture(argv, NULL, out, sizeof(out), err, sizeof(err)), 2);
		CHECK(strstr(err, "SECRETD_MAX_NAME") != NULL);
	}
	CHECK(unsetenv("SECRETD_MAX_NAME") == 0);
}

int
main(void)
{
	struct server_proc srv;
	secretd_client *c = NULL;
	secretd_rows *rows = NULL;
	secretd_error e;
	char *r;

	test_max_name_cap();
	if (!harness_init(&srv))
		return 1;
	srv.extra[0] = "--max-frame";
	srv.extra[1] = "2048";
	srv.extra[2] = "--max-name";
	srv.extra[3] = "8";
	srv.extra[4] = "--max-value";
	srv.extra[5] = "100";
	srv.extra[6] = "--max-fields";
	srv.extra[7] = "1";
	srv.extra[8] = "--max-secrets";
	srv.extra[9] = "3";
	srv.extra[10] = "--max-scope";
	srv.extra[11] = "2";
	if (!harness_start(&srv, NULL))
		return 1;
	CHECK_STATUS(secretd_client_open(srv.url, NULL, &c, NULL), SECRETD_OK);

	/* name: 8 bytes fine, 9 refused */
	CHECK_STATUS(create(c, "abcdefgh", "v", 1, &e), SECRETD_OK);
	CHECK_STATUS(create(c, "abcdefghi", "v", 1, &e), SECRETD_INVALID_ARGUMENT);
	CHECK(strstr(e.message, "longer than 8 bytes") != NULL);
	/* value: 100 bytes fine, 101 refused */
	{
		char v[102];

		memset(v, 'x', 101);
		v[100] = '\0';
		CHECK_STATUS(create(c, "v100", v, 1, &e), SECRETD_OK);
		v[100] = 'x';
		v[101] = '\0';
		CHECK_STATUS(create(c, "v101", v, 1, &e), SECRETD_INVALID_ARGUMENT);
		CHECK(strstr(e.message, "longer than 100 bytes") != NULL);
	}
	/* fields: 1 fine, 2 refused */
	CHECK_STATUS(create(c, "f2", "v", 2, &e), SECRETD_INVALID_ARGUMENT);
	CHECK(strstr(e.message, "at most 1 fields") != NULL);
	/* scope entries: 3 refused, 2 fine (dropped again: the storage has room for 3) */
	{
		const char *scopes[] = {"openai://a/", "openai://b/", "openai://c/"};
		secretd_field f = {"api_key", "v", 1};
		secretd_create_args a = {.name = "sc",
		    .type = "openai",
		    .fields = &f,
		    .n_fields = 1,
		    .scope = scopes,
		    .n_scope = 3};

		CHECK_STATUS(secretd_create(c, &a, 5000, NULL, &e), SECRETD_INVALID_ARGUMENT);
		CHECK_STR(e.reason, "TOO_MANY_SCOPES");
		CHECK(strstr(e.message, "at most 2 scope entries") != NULL);
		a.n_scope = 2;
		CHECK_STATUS(secretd_create(c, &a, 5000, NULL, &e), SECRETD_OK);
		CHECK_STATUS(secretd_drop(c, "sc", SECRETD_STORAGE_ANY, false, 5000, NULL, &e),
		    SECRETD_OK);
	}
	/* secrets per storage: 3 fine (abcdefgh, v100, third), the 4th refused; replacing
	 * one at the limit is fine; the other storage has its own limit. */
	CHECK_STATUS(create(c, "third", "v", 1, &e), SECRETD_OK);
	CHECK_STATUS(create(c, "fourth", "v", 1, &e), SECRETD_RESOURCE_EXHAUSTED);
	CHECK_STR(e.reason, "STORE_FULL");
	{
		secretd_field f = {"api_key", "w", 1};
		secretd_create_args a = {.name = "third",
		    .type = "openai",
		    .fields = &f,
		    .n_fields = 1,
		    .on_conflict = SECRETD_CONFLICT_REPLACE};

		CHECK_STATUS(secretd_create(c, &a, 5000, NULL, &e), SECRETD_OK);
		a.name = "pers";
		a.persistent = true;
		CHECK_STATUS(secretd_create(c, &a, 5000, NULL, &e), SECRETD_OK);
	}
	CHECK_STATUS(secretd_list(c, NULL, 5000, &rows, NULL), SECRETD_OK);
	CHECK(rows != NULL && rows->n_rows == 4);
	secretd_rows_free(rows);
	/* frame: 2048 bytes fine, 2049 refused with a reply, and well over (past the
	 * transport's own cap) the server lives on */
	r = text_frame(srv.url, 2048);
	CHECK(r != NULL && strstr(r, "\"status\":\"OK\"") != NULL);
	free(r);
	r = text_frame(srv.url, 2049);
	CHECK(r != NULL && strstr(r, "FRAME_TOO_LARGE") != NULL);
	free(r);
	/* Far past the transport's cap the frame cannot be answered: the server drops the
	 * connection. The sender is a plain socket whose every wait has a deadline, so it
	 * needs no child process to kill. */
	r = text_frame(srv.url, 4 * 1024 * 1024);
	CHECK(r == NULL);
	free(r);
	r = text_frame(srv.url, 100);
	CHECK(r != NULL && strstr(r, "\"status\":\"OK\"") != NULL);
	free(r);

	/* A request past the transport's cap is refused by libsecretd itself (regression
	 * client_oversized_request_resent: nng's REQ socket resent it on every reconnect),
	 * and the client goes on working. */
	{
		size_t big = 1536 * 1024;
		char *v = malloc(big + 1);

		memset(v, 'b', big);
		v[big] = '\0';
		CHECK_STATUS(create(c, "huge", v, 1, &e), SECRETD_RESOURCE_EXHAUSTED);
		CHECK(strstr(e.message, "over the 1048576 bytes") != NULL);
		free(v);
		CHECK_STATUS(create(c, "third", "v", 1, &e), SECRETD_ALREADY_EXISTS);
	}
	secretd_client_close(c);
	CHECK_STATUS(harness_stop(&srv), 0);
	harness_cleanup(&srv);
	return check_report();
}
