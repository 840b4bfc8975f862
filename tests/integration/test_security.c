/*
 * test_security.c: who may call (SPEC section 6), against real secretd processes over ipc
 * and over tls+tcp with certificates this test makes with openssl.
 *
 * Covers: every role/operation pair (none, wrong token, reader, admin) over TLS; a
 * same-uid ipc peer is admin without a token; a revoked token (SIGHUP reload); a
 * non-owner uid on ipc (refused by the socket's mode, and with --socket-group it needs a
 * token); plain tcp refused without tokens and without --insecure; a TLS client trusting
 * the wrong CA refused; the audit trail (state changes and denials, no value, no token);
 * core dumps off (RLIMIT_CORE 0 and not dumpable).
 */
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "secretd.h"

#define ADMIN_TOKEN "sdt_admin_TOKENLEAK_0123456789abcdef"
#define READER_TOKEN "sdt_reader_TOKENLEAK_fedcba9876543210"
#define VALUE "sk-SECLEAK-value-31337"

static struct server_proc srv;
static char tokens_path[400];
static char tls_url[128];
static char ca_path[400], wrong_ca_path[400], cert_path[400], key_path[400];
static char audit_path[400];

static void
hash_hex(const char *token, char *hex)
{
	unsigned char h[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)token, strlen(token), h);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		sprintf(hex + 2 * i, "%02x", h[i]);
}

static bool
write_tokens(bool with_reader)
{
	char a[65], r[65];
	FILE *f;

	hash_hex(ADMIN_TOKEN, a);
	hash_hex(READER_TOKEN, r);
	f = fopen(tokens_path, "w");
	if (f == NULL)
		return false;
	fprintf(f, "# role id sha256\nadmin ops %s\n", a);
	if (with_reader)
		fprintf(f, "reader etl-job %s\n", r);
	fclose(f);
	return chmod(tokens_path, 0600) == 0;
}

static bool
make_certs(const char *dir)
{
	char cmd[4096];

	(void)snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", dir);
	(void)snprintf(wrong_ca_path, sizeof(wrong_ca_path), "%s/wrong-ca.pem", dir);
	(void)snprintf(cert_path, sizeof(cert_path), "%s/server.pem", dir);
	(void)snprintf(key_path, sizeof(key_path), "%s/server.key", dir);
	(void)snprintf(cmd, sizeof(cmd),
	    "cd '%s' && "
	    "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
	    "  -subj /CN=secretd-test-ca 2>/dev/null && "
	    "openssl req -x509 -newkey rsa:2048 -nodes -keyout wrong-ca.key -out wrong-ca.pem "
	    "  -days 2 -subj /CN=someone-else 2>/dev/null && "
	    "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
	    "  -subj /CN=localhost 2>/dev/null && "
	    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && "
	    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	    "  -out server.pem -days 2 -extfile ext.cnf 2>/dev/null && chmod 600 server.key",
	    dir);
	return system(cmd) == 0;
}

static secretd_client *
open_tls(const char *token, const char *ca)
{
	secretd_options o = {.token = token, .tls_ca_file = ca, .tls_server_name = "localhost"};
	secretd_client *c = NULL;

	if (secretd_client_open(tls_url, &o, &c, NULL) != SECRETD_OK)
		return NULL;
	return c;
}

/* The status of every operation for one client, in this order. */
enum op {
	OP_CREATE,
	OP_GET,
	OP_LIST,
	OP_LIST_UNREDACTED,
	OP_RESOLVE,
	OP_DROP,
	OP_SQL_CREATE,
	OP_SQL_LIST,
	OP_SQL_UNREDACTED,
	N_OPS
};

static const char *const op_names[N_OPS] = {"create", "get", "list", "list unredacted", "resolve",
    "drop", "sql create", "sql list", "sql unredacted"};

static void
run_ops(secretd_client *c, const char *name, secretd_status got[N_OPS])
{
	secretd_field f = {"api_key", VALUE, strlen(VALUE)};
	secretd_create_args ca = {.name = name, .type = "openai", .fields = &f, .n_fields = 1};
	secretd_list_args unred = {.unredacted = true};
	secretd_secret *s = NULL;
	secretd_rows *rows = NULL;
	secretd_result *res = NULL;
	char stmt[256];

	got[OP_CREATE] = secretd_create(c, &ca, 5000, NULL, NULL);
	got[OP_GET] = secretd_get(c, "fixture", 0, 5000, &s, NULL);
	secretd_secret_free(s);
	got[OP_LIST] = secretd_list(c, NULL, 5000, &rows, NULL);
	secretd_rows_free(rows);
	rows = NULL;
	got[OP_LIST_UNREDACTED] = secretd_list(c, &unred, 5000, &rows, NULL);
	secretd_rows_free(rows);
	s = NULL;
	got[OP_RESOLVE] = secretd_resolve(c, "openai://m", "openai", 5000, &s, NULL);
	secretd_secret_free(s);
	got[OP_DROP] = secretd_drop(c, name, 0, true, 5000, NULL, NULL);
	(void)snprintf(stmt, sizeof(stmt),
	    "CREATE OR REPLACE SECRET %s_sql (TYPE openai, "
	    "API_KEY 'x')",
	    name);
	got[OP_SQL_CREATE] = secretd_execute(c, stmt, 5000, &res, NULL);
	secretd_result_free(res);
	res = NULL;
	got[OP_SQL_LIST] = secretd_execute(c, "FROM duckdb_secrets()", 5000, &res, NULL);
	secretd_result_free(res);
	res = NULL;
	got[OP_SQL_UNREDACTED] =
	    secretd_execute(c, "FROM duckdb_secrets(redact := false)", 5000, &res, NULL);
	secretd_result_free(res);
}

static void
expect_ops(const char *who, secretd_client *c, const char *name, const secretd_status want[N_OPS])
{
	secretd_status got[N_OPS];

	CHECK(c != NULL);
	if (c == NULL)
		return;
	run_ops(c, name, got);
	for (int i = 0; i < N_OPS; i++) {
		if (got[i] != want[i])
			fprintf(stderr, "%s %s: %s, want %s\n", who, op_names[i],
			    secretd_status_str(got[i]), secretd_status_str(want[i]));
		CHECK_STATUS(got[i], want[i]);
	}
}

static const secretd_status all_unauth[N_OPS] = {SECRETD_UNAUTHENTICATED, SECRETD_UNAUTHENTICATED,
    SECRETD_UNAUTHENTICATED, SECRETD_UNAUTHENTICATED, SECRETD_UNAUTHENTICATED,
    SECRETD_UNAUTHENTICATED, SECRETD_UNAUTHENTICATED, SECRETD_UNAUTHENTICATED,
    SECRETD_UNAUTHENTICATED};
static const secretd_status reader_ops[N_OPS] = {SECRETD_PERMISSION_DENIED, SECRETD_OK, SECRETD_OK,
    SECRETD_PERMISSION_DENIED, SECRETD_OK, SECRETD_PERMISSION_DENIED, SECRETD_PERMISSION_DENIED,
    SECRETD_OK, SECRETD_PERMISSION_DENIED};
static const secretd_status admin_ops[N_OPS] = {SECRETD_OK, SECRETD_OK, SECRETD_OK, SECRETD_OK,
    SECRETD_OK, SECRETD_OK, SECRETD_OK, SECRETD_OK, SECRETD_OK};

static void
test_roles_tls(void)
{
	secretd_client *c;

	c = open_tls(NULL, ca_path);
	expect_ops("tls no token", c, "t_none", all_unauth);
	secretd_client_close(c);
	c = open_tls("sdt_not_a_token", ca_path);
	expect_ops("tls wrong token", c, "t_wrong", all_unauth);
	secretd_client_close(c);
	c = open_tls(READER_TOKEN, ca_path);
	expect_ops("tls reader", c, "t_reader", reader_ops);
	secretd_client_close(c);
	c = open_tls(ADMIN_TOKEN, ca_path);
	expect_ops("tls admin", c, "t_admin", admin_ops);
	secretd_client_close(c);
}

static void
test_ipc_same_uid(void)
{
	secretd_client *c = NULL;

	CHECK_STATUS(secretd_client_open(srv.url, NULL, &c, NULL), SECRETD_OK);
	expect_ops("ipc same uid", c, "i_owner", admin_ops);
	/* A wrong token is an error even where the transport alone would have been enough. */
	secretd_client_close(c);
	c = NULL;
	{
		secretd_options o = {.token = "sdt_wrong"};
		secretd_secret *s = NULL;

		CHECK_STATUS(secretd_client_open(srv.url, &o, &c, NULL), SECRETD_OK);
		CHECK_STATUS(secretd_get(c, "fixture", 0, 5000, &s, NULL), SECRETD_UNAUTHENTICATED);
		secretd_client_close(c);
	}
}

static void
test_wrong_ca(void)
{
	secretd_client *c = open_tls(ADMIN_TOKEN, wrong_ca_path);
	secretd_secret *s = NULL;
	secretd_status st;

	CHECK(c != NULL);
	if (c == NULL)
		return;
	/* The TLS handshake fails, so no connection ever comes up: UNAVAILABLE. */
	st = secretd_get(c, "fixture", 0, 3000, &s, NULL);
	CHECK_STATUS(st, SECRETD_UNAVAILABLE);
	CHECK(s == NULL);
	secretd_client_close(c);
}

static void
test_revoke(void)
{
	secretd_client *c = open_tls(READER_TOKEN, ca_path);
	secretd_secret *s = NULL;

	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK_STATUS(secretd_get(c, "fixture", 0, 5000, &s, NULL), SECRETD_OK);
	secretd_secret_free(s);
	s = NULL;
	CHECK(write_tokens(false));
	CHECK(kill(srv.pid, SIGHUP) == 0);
	for (int i = 0; i < 50; i++) {
		if (file_contains(srv.log_path, "tokens reloaded: 1 token", 24))
			break;
		usleep(100000);
	}
	CHECK_STATUS(secretd_get(c, "fixture", 0, 5000, &s, NULL), SECRETD_UNAUTHENTICATED);
	secretd_client_close(c);
	CHECK(write_tokens(true));
	CHECK(kill(srv.pid, SIGHUP) == 0);
	/* Wait (with a deadline) for this reload, not a fixed time. */
	for (int i = 0; i < 50; i++) {
		if (file_contains(srv.log_path, "tokens reloaded: 2 token", 24))
			break;
		usleep(100000);
	}
	CHECK(file_contains(srv.log_path, "tokens reloaded: 2 token", 24));
}

/* The child half of the non-owner test: runs as nobody and reports statuses. */
static int
non_owner_child(const char *url, const char *token)
{
	secretd_options o = {.token = token};
	secretd_client *c = NULL;
	secretd_secret *s = NULL;
	secretd_status st;

	if (secretd_client_open(url, &o, &c, NULL) != SECRETD_OK)
		return 100;
	st = secretd_get(c, "fixture", 0, 2000, &s, NULL);
	secretd_secret_free(s);
	secretd_client_close(c);
	return (int)st;
}

static int
run_as_nobody(const char *url, const char *token, gid_t gid)
{
	pid_t pid = fork();
	int status = -1;

	if (pid == 0) {
		if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(65534) != 0)
			_exit(101);
		execl("/proc/self/exe", "test_security", "--child", url, token ? token : "",
		    (char *)NULL);
		_exit(102);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void
test_non_owner(void)
{
	struct server_proc g;
	int st;

	if (geteuid() != 0) {
		fprintf(stderr, "non-owner ipc test needs root to switch uid; skipped\n");
		return;
	}
	/* 0600 socket: another uid cannot even connect. */
	st = run_as_nobody(srv.url, NULL, 65534);
	CHECK_STATUS(st, SECRETD_UNAVAILABLE);
	/* 0660 with a group: it connects, and then it needs a token. */
	CHECK(harness_init(&g));
	chmod(g.dir, 0755);
	g.extra[0] = "--socket-group";
	g.extra[1] = "nogroup";
	g.extra[2] = "--tokens-file";
	g.extra[3] = tokens_path;
	if (!harness_start(&g, NULL)) {
		CHECK(!"server with --socket-group started");
		harness_cleanup(&g);
		return;
	}
	{
		secretd_client *c = NULL;
		secretd_field f = {"api_key", "x", 1};
		secretd_create_args ca = {
		    .name = "fixture", .type = "openai", .fields = &f, .n_fields = 1};
		struct stat sb;
		char sock[400];

		(void)snprintf(sock, sizeof(sock), "%s/secretd.sock", g.dir);
		CHECK(stat(sock, &sb) == 0 && (sb.st_mode & 0777) == 0660);
		CHECK(secretd_client_open(g.url, NULL, &c, NULL) == SECRETD_OK);
		CHECK_STATUS(secretd_create(c, &ca, 5000, NULL, NULL), SECRETD_OK);
		secretd_client_close(c);
	}
	/* The socket's directory must let the group in; the test made it 0755. */
	CHECK_STATUS(run_as_nobody(g.url, NULL, 65534), SECRETD_UNAUTHENTICATED);
	CHECK_STATUS(run_as_nobody(g.url, READER_TOKEN, 65534), SECRETD_OK);
	CHECK_STATUS(harness_stop(&g), 0);
	harness_cleanup(&g);
}

static void
test_refused_listeners(void)
{
	struct server_proc p;
	char url[64];
	int exit_status = -1;

	(void)snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", harness_free_port("127.0.0.1"));
	/* tcp without tokens */
	CHECK(harness_init(&p));
	p.extra[0] = "--listen";
	p.extra[1] = url;
	p.extra[2] = "--insecure";
	CHECK(!harness_start(&p, &exit_status));
	CHECK_STATUS(exit_status, 1);
	CHECK(file_contains(p.log_path, "network listeners need tokens", 29));
	/* tcp with tokens but without TLS and without --insecure */
	p.extra[2] = "--tokens-file";
	p.extra[3] = tokens_path;
	CHECK(!harness_start(&p, &exit_status));
	CHECK_STATUS(exit_status, 1);
	CHECK(file_contains(p.log_path, "without TLS", 11));
	/* ... and with --insecure it serves, tokens still required. */
	p.extra[4] = "--insecure";
	CHECK(harness_start(&p, NULL));
	{
		secretd_client *c = NULL;
		secretd_options o = {.token = READER_TOKEN};
		secretd_rows *rows = NULL;

		CHECK(secretd_client_open(url, NULL, &c, NULL) == SECRETD_OK);
		CHECK_STATUS(secretd_list(c, NULL, 5000, &rows, NULL), SECRETD_UNAUTHENTICATED);
		secretd_client_close(c);
		c = NULL;
		CHECK(secretd_client_open(url, &o, &c, NULL) == SECRETD_OK);
		CHECK_STATUS(secretd_list(c, NULL, 5000, &rows, NULL), SECRETD_OK);
		secretd_rows_free(rows);
		secretd_client_close(c);
	}
	CHECK_STATUS(harness_stop(&p), 0);
	harness_cleanup(&p);
}

static void
test_audit(void)
{
	size_t n = 0;
	char *a = file_read(audit_path, &n);

	CHECK(a != NULL && n > 0);
	if (a == NULL)
		return;
	CHECK(strstr(a, "\"method\":\"Create\"") != NULL);
	CHECK(strstr(a, "\"event\":\"attempt\"") != NULL);
	CHECK(strstr(a, "\"event\":\"result\"") != NULL);
	CHECK(strstr(a, "\"method\":\"Drop\"") != NULL);
	CHECK(strstr(a, "\"status\":\"PERMISSION_DENIED\"") != NULL);
	CHECK(strstr(a, "\"status\":\"UNAUTHENTICATED\"") != NULL);
	CHECK(strstr(a, "\"token_id\":\"etl-job\",\"role\":\"reader\"") != NULL);
	CHECK(strstr(a, "\"name\":\"t_admin\"") != NULL);
	CHECK(strstr(a, "LEAK") == NULL);
	free(a);
	CHECK(!file_contains(srv.log_path, "LEAK", 4));
}

/* An audit trail that cannot be written refuses state changes and changes nothing. */
static void
test_audit_fail_closed(void)
{
	struct server_proc p;
	secretd_client *c = NULL;
	secretd_field f = {"api_key", "x", 1};
	secretd_create_args ca = {.name = "blocked", .type = "openai", .fields = &f, .n_fields = 1};
	secretd_error e;
	secretd_rows *rows = NULL;

	CHECK(harness_init(&p));
	p.extra[0] = "--audit-file";
	p.extra[1] = "/dev/full";
	CHECK(harness_start(&p, NULL));
	CHECK(secretd_client_open(p.url, NULL, &c, NULL) == SECRETD_OK);
	CHECK_STATUS(secretd_create(c, &ca, 5000, NULL, &e), SECRETD_UNAVAILABLE);
	CHECK_STR(e.reason, "AUDIT");
	ca.persistent = true;
	CHECK_STATUS(secretd_create(c, &ca, 5000, NULL, &e), SECRETD_UNAVAILABLE);
	CHECK_STATUS(secretd_list(c, NULL, 5000, &rows, NULL), SECRETD_OK);
	CHECK(rows != NULL && rows->n_rows == 0);
	secretd_rows_free(rows);
	secretd_client_close(c);
	CHECK_STATUS(harness_stop(&p), 0);
	CHECK(file_contains(p.log_path, "audit: cannot write", 19));
	harness_cleanup(&p);
}

static void
test_not_dumpable(void)
{
	char path[64];
	struct stat sb;
	char *limits;

	(void)snprintf(path, sizeof(path), "/proc/%d/limits", (int)srv.pid);
	limits = file_read(path, NULL);
	CHECK(limits != NULL && strstr(limits, "Max core file size        0") != NULL);
	free(limits);
	/* A process that is not dumpable has its /proc files owned by root. When the test
	 * is root itself that says nothing, so the server is started as nobody. */
	if (geteuid() == 0) {
		struct server_proc p;
		pid_t pid;
		char cmd[600];

		CHECK(harness_init(&p));
		(void)snprintf(cmd, sizeof(cmd), "chown -R 65534:65534 '%s'", p.dir);
		CHECK(system(cmd) == 0);
		pid = fork();
		if (pid == 0) {
			char data[400];

			(void)snprintf(data, sizeof(data), "%s/data", p.dir);
			if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
				_exit(101);
			execl(getenv("SECRETD_BIN"), "secretd", "--listen", p.url, "--data-dir",
			    data, "--log-level", "error", (char *)NULL);
			_exit(102);
		}
		/* Wait (with a deadline) until it answers on its socket: by then it has made
		 * itself not dumpable. Any reply will do (root is not its uid: no token). */
		for (int i = 0; i < 1000; i++) {
			char *r = harness_sp_request(p.url, "FROM duckdb_secrets()", 21, 1000, NULL);
			struct timespec ts = {0, 10 * 1000 * 1000};

			if (r != NULL || waitpid(pid, NULL, WNOHANG) != 0) {
				CHECK(r != NULL);
				free(r);
				break;
			}
			(void)nanosleep(&ts, NULL);
		}
		(void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
		CHECK(stat(path, &sb) == 0 && sb.st_uid == 0);
		{
			char *st = file_read(path, NULL);

			/* It really runs as nobody: the root owner comes from not dumpable. */
			CHECK(st != NULL && strstr(st, "Uid:\t65534") != NULL);
			free(st);
		}
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		harness_cleanup(&p);
	} else {
		(void)snprintf(path, sizeof(path), "/proc/%d/status", (int)srv.pid);
		CHECK(stat(path, &sb) == 0 && sb.st_uid == 0);
	}
}

int
main(int argc, char **argv)
{
	secretd_client *c = NULL;
	int port;

	if (argc == 4 && strcmp(argv[1], "--child") == 0)
		return non_owner_child(argv[2], argv[3][0] != '\0' ? argv[3] : NULL);
	if (!harness_init(&srv))
		return 1;
	(void)snprintf(tokens_path, sizeof(tokens_path), "%s/tokens", srv.dir);
	(void)snprintf(audit_path, sizeof(audit_path), "%s/audit.log", srv.dir);
	port = harness_free_port("127.0.0.1");
	(void)snprintf(tls_url, sizeof(tls_url), "tls+tcp://127.0.0.1:%d", port);
	if (!write_tokens(true) || !make_certs(srv.dir)) {
		fprintf(stderr, "cannot make tokens or certificates\n");
		return 1;
	}
	srv.extra[0] = "--tokens-file";
	srv.extra[1] = tokens_path;
	srv.extra[2] = "--listen";
	srv.extra[3] = tls_url;
	srv.extra[4] = "--tls-cert";
	srv.extra[5] = cert_path;
	srv.extra[6] = "--tls-key";
	srv.extra[7] = key_path;
	srv.extra[8] = "--audit-file";
	srv.extra[9] = audit_path;
	if (!harness_start(&srv, NULL)) {
		fprintf(stderr, "cannot start secretd (log: %s)\n", srv.log_path);
		return 1;
	}
	CHECK_STATUS(secretd_client_open(srv.url, NULL, &c, NULL), SECRETD_OK);
	{
		secretd_field f = {"api_key", VALUE, strlen(VALUE)};
		secretd_create_args ca = {
		    .name = "fixture", .type = "openai", .fields = &f, .n_fields = 1};

		CHECK_STATUS(secretd_create(c, &ca, 5000, NULL, NULL), SECRETD_OK);
	}
	secretd_client_close(c);
	test_roles_tls();
	test_ipc_same_uid();
	test_wrong_ca();
	test_revoke();
	test_non_owner();
	test_refused_listeners();
	test_not_dumpable();
	test_audit_fail_closed();
	CHECK_STATUS(harness_stop(&srv), 0);
	test_audit();
	harness_cleanup(&srv);
	return check_report();
}
