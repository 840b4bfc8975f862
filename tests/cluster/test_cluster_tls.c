/*
 * test_cluster_tls.c: secretd on an etcd that speaks TLS only. The test makes its own CA,
 * a server certificate for 127.0.0.1 and a client certificate with openssl (in its
 * temporary directory), starts one etcd member with https client URLs and client
 * certificate authentication (--cert-file, --key-file, --trusted-ca-file,
 * --client-cert-auth), and checks, in order:
 *
 *   tls           secretd with --etcd-ca/--etcd-cert/--etcd-key: create, get (value
 *                 compared), list, drop of persistent secrets
 *   wrong-ca      secretd given another CA: refused at start (exit 1), the log names the
 *                 endpoint and the certificate check that failed
 *   no-cert       secretd without a client certificate: refused at start
 *   auth          etcd users and roles (etcdctl user add, role grant-permission, auth
 *                 enable): secretd with --etcd-user and --etcd-password-file and a client
 *                 certificate without a CommonName works; one with a CommonName is refused
 *                 at start (etcd 3.4's gateway refuses it once auth is on: README); a wrong
 *                 password is refused at start with etcd's reason
 *
 * Values are compared, never printed. Skipped (exit 77) when etcd or openssl is missing.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "etcd_proc.h"
#include "harness.h"
#include "secretd.h"

#define VALUE_MARK "tv3c8a1f0e"
#define TIMEOUT_MS 10000
#define PREFIX "/secretd-tls/"

static char tmp[64] = "/tmp/secretd-cluster-tls-XXXXXX";
static char path_buf[32][200];
static pid_t etcd_pid;
static char endpoint[64];
static char key_file[200];

/* tmp/name, one stable buffer per name (the test's file names are few and fixed, and
 * server flags keep pointers to them). */
static const char *
in_tmp(const char *name)
{
	static char names[32][64];
	static size_t n;
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return path_buf[i];
	if (n == 32)
		abort(); /* more names than this test has */
	(void)snprintf(names[n], sizeof(names[n]), "%s", name);
	(void)snprintf(path_buf[n], sizeof(path_buf[n]), "%s/%s", tmp, name);
	return path_buf[n++];
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	(void)nanosleep(&ts, NULL);
}

static bool
run_ok(const char *const *argv)
{
	char out[4096];
	char err[4096];
	int rc = run_capture(argv, NULL, out, sizeof(out), err, sizeof(err));

	if (rc != 0)
		fprintf(stderr, "%s %s: exit %d: %.300s\n", argv[0], argv[1], rc, err);
	return rc == 0;
}

static bool
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (f == NULL)
		return false;
	ok = fputs(text, f) != EOF;
	ok = fclose(f) == 0 && ok;
	return ok && chmod(path, mode) == 0;
}

/* A CA (name.crt, name.key): a self-signed P-256 certificate. */
static bool
make_ca(const char *name)
{
	char crt[64];
	char key[64];
	char subj[64];

	(void)snprintf(crt, sizeof(crt), "%s.crt", name);
	(void)snprintf(key, sizeof(key), "%s.key", name);
	(void)snprintf(subj, sizeof(subj), "/CN=secretd test %s", name);
	{
		const char *argv[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
		    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", in_tmp(key), "-out",
		    in_tmp(crt), "-days", "2", "-subj", subj, NULL};

		return run_ok(argv);
	}
}

/* A certificate name.crt/name.key for cn signed by ca, with the extensions in ext. */
static bool
make_cert(const char *name, const char *cn, const char *ca, const char *ext)
{
	char file[64];
	char subj[64];
	char ca_crt[64];
	char ca_key[64];
	const char *csr;
	const char *extf;

	(void)snprintf(subj, sizeof(subj), cn != NULL ? "/CN=%s" : "/O=secretd test", cn);
	(void)snprintf(ca_crt, sizeof(ca_crt), "%s.crt", ca);
	(void)snprintf(ca_key, sizeof(ca_key), "%s.key", ca);
	(void)snprintf(file, sizeof(file), "%s.csr", name);
	csr = in_tmp(file);
	(void)snprintf(file, sizeof(file), "%s.ext", name);
	extf = in_tmp(file);
	if (!write_file(extf, ext, 0600))
		return false;
	{
		char key[64];
		const char *argv[] = {"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
		    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", NULL, "-out", csr, "-subj",
		    subj, NULL};

		(void)snprintf(key, sizeof(key), "%s.key", name);
		argv[9] = in_tmp(key);
		if (!run_ok(argv))
			return false;
	}
	{
		char crt[64];
		const char *argv[] = {"openssl", "x509", "-req", "-in", csr, "-CA", in_tmp(ca_crt),
		    "-CAkey", in_tmp(ca_key), "-CAcreateserial", "-out", NULL, "-days", "2",
		    "-extfile", extf, NULL};

		(void)snprintf(crt, sizeof(crt), "%s.crt", name);
		argv[11] = in_tmp(crt);
		return run_ok(argv);
	}
}

/* etcdctl against the TLS member with the client certificate; user "root:pw" or NULL. */
static int
ctl(const char *const *args, const char *user, char *out, size_t outlen)
{
	const char *argv[32];
	char err[4096];
	size_t n = 0;

	argv[n++] = "etcdctl";
	argv[n++] = "--endpoints";
	argv[n++] = endpoint;
	argv[n++] = "--cacert";
	argv[n++] = in_tmp("ca.crt");
	argv[n++] = "--cert";
	argv[n++] = in_tmp("client.crt");
	argv[n++] = "--key";
	argv[n++] = in_tmp("client.key");
	if (user != NULL) {
		argv[n++] = "--user";
		argv[n++] = user;
	}
	for (size_t i = 0; args[i] != NULL && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	(void)setenv("ETCDCTL_API", "3", 1);
	return run_capture(argv, NULL, out, outlen, err, sizeof(err));
}

/* Start one etcd member with https client URLs and client certificate authentication. */
static bool
start_etcd(void)
{
	pid_t parent;
	char peer[64];
	int cport;
	int pport;

	do {
		cport = harness_free_port("127.0.0.1");
		pport = harness_free_port("127.0.0.1");
	} while (cport == pport || cport < 0 || pport < 0);
	(void)snprintf(endpoint, sizeof(endpoint), "https://127.0.0.1:%d", cport);
	(void)snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", pport);
	parent = getpid();
	etcd_pid = fork();
	if (etcd_pid < 0)
		return false;
	if (etcd_pid == 0) {
		char cluster[96];
		const char *bin = getenv("ETCD_BIN") != NULL ? getenv("ETCD_BIN") : "/usr/bin/etcd";
		int fd = open(in_tmp("etcd.log"), O_WRONLY | O_CREAT | O_APPEND, 0600);

		/* A test killed by its timeout must not leave etcd members running into the
		 * next tests: they die with the test. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(127);

		(void)snprintf(cluster, sizeof(cluster), "tls1=%s", peer);
		if (fd >= 0) {
			(void)dup2(fd, 1);
			(void)dup2(fd, 2);
			(void)close(fd);
		}
		(void)setpgid(0, 0);
		execl(bin, bin, "--name", "tls1", "--data-dir", in_tmp("etcd-data"),
		    "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
		    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		    "--initial-cluster", cluster, "--cert-file", in_tmp("server.crt"), "--key-file",
		    in_tmp("server.key"), "--trusted-ca-file", in_tmp("ca.crt"), "--client-cert-auth",
		    "--logger", "zap", "--log-level", "warn", (char *)NULL);
		_exit(127);
	}
	/* Healthy when etcdctl, over TLS with the client certificate, says so (up to 30 s). */
	for (int t = 0; t < 300; t++) {
		static const char *const args[] = {"endpoint", "health", NULL};
		char out[1024];
		int status;

		if (ctl(args, NULL, out, sizeof(out)) == 0)
			return true;
		if (waitpid(etcd_pid, &status, WNOHANG) == etcd_pid) {
			etcd_pid = 0;
			break;
		}
		sleep_ms(100);
	}
	fprintf(stderr, "TLS etcd did not become healthy; see %s\n", in_tmp("etcd.log"));
	return false;
}

/* A secretd on the TLS etcd: ca is the CA file it trusts, cert the client certificate
 * ("client", "nocn") or NULL, user/password_file (may be NULL) etcd credentials. */
static void
node_flags(struct server_proc *sp, const char *ca, const char *cert, const char *user,
    const char *password_file)
{
	char crt[32];
	char key[32];

	size_t n = 0;

	/* The store, endpoints and prefix come from the environment twins (main sets them):
	 * extra has room for 15 flags. */
	sp->extra[n++] = "--key-file";
	sp->extra[n++] = key_file;
	sp->extra[n++] = "--etcd-ca";
	sp->extra[n++] = ca;
	if (cert != NULL) {
		(void)snprintf(crt, sizeof(crt), "%s.crt", cert);
		(void)snprintf(key, sizeof(key), "%s.key", cert);
		sp->extra[n++] = "--etcd-cert";
		sp->extra[n++] = in_tmp(crt);
		sp->extra[n++] = "--etcd-key";
		sp->extra[n++] = in_tmp(key);
	}
	if (user != NULL) {
		sp->extra[n++] = "--etcd-user";
		sp->extra[n++] = user;
		sp->extra[n++] = "--etcd-password-file";
		sp->extra[n++] = password_file;
	}
	sp->extra[n] = NULL;
}

/* Create, get (compared), list and drop persistent secrets through a node. */
static void
round_trip(struct server_proc *sp, const char *tag)
{
	secretd_client *c = NULL;
	secretd_error err;
	char value[64];
	char name[32];
	secretd_field f = {.key = "api_key"};
	secretd_create_args args = {.type = "openai", .fields = &f, .n_fields = 1,
	    .persistent = true, .on_conflict = SECRETD_CONFLICT_ERROR};
	secretd_create_result cr;
	secretd_secret *s = NULL;
	secretd_rows *rows = NULL;
	secretd_drop_result dr;
	size_t listed = 0;

	CHECK_STATUS(secretd_client_open(sp->url, NULL, &c, &err), SECRETD_OK);
	if (c == NULL)
		return;
	for (int i = 0; i < 5; i++) {
		(void)snprintf(name, sizeof(name), "%s-%d", tag, i);
		(void)snprintf(value, sizeof(value), VALUE_MARK "-%s-%d", tag, i);
		f.value = value;
		f.value_len = strlen(value);
		args.name = name;
		CHECK_STATUS(secretd_create(c, &args, TIMEOUT_MS, &cr, &err), SECRETD_OK);
		CHECK_STR(cr.storage_name, "etcd");
	}
	for (int i = 0; i < 5; i++) {
		(void)snprintf(name, sizeof(name), "%s-%d", tag, i);
		(void)snprintf(value, sizeof(value), VALUE_MARK "-%s-%d", tag, i);
		CHECK_STATUS(secretd_get(c, name, SECRETD_STORAGE_SQLCIPHER, TIMEOUT_MS, &s, &err),
		    SECRETD_OK);
		CHECK(s != NULL && s->n_fields == 1 && s->fields[0].value_len == strlen(value) &&
		      memcmp(s->fields[0].value, value, strlen(value)) == 0);
		secretd_secret_free(s);
		s = NULL;
	}
	CHECK_STATUS(secretd_list(c, NULL, TIMEOUT_MS, &rows, &err), SECRETD_OK);
	for (size_t i = 0; rows != NULL && i < rows->n_rows; i++)
		if (strncmp(rows->rows[i].name, tag, strlen(tag)) == 0 &&
		    strcmp(rows->rows[i].storage, "etcd") == 0)
			listed++;
	CHECK_STATUS(listed, 5);
	secretd_rows_free(rows);
	for (int i = 0; i < 5; i++) {
		(void)snprintf(name, sizeof(name), "%s-%d", tag, i);
		CHECK_STATUS(secretd_drop(c, name, SECRETD_STORAGE_ANY, false, TIMEOUT_MS, &dr, &err),
		    SECRETD_OK);
		CHECK(dr.dropped);
	}
	CHECK_STATUS(secretd_get(c, name, SECRETD_STORAGE_ANY, TIMEOUT_MS, &s, &err),
	    SECRETD_NOT_FOUND);
	secretd_client_close(c);
}

/* Whether log holds needle, or one of its alternatives "a|b|c". */
static bool
log_has(const char *log, const char *needle)
{
	char alt[160];
	const char *p = needle;

	while (log != NULL) {
		size_t n = strcspn(p, "|");

		(void)snprintf(alt, sizeof(alt), "%.*s", (int)n, p);
		if (strstr(log, alt) != NULL)
			return true;
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	return false;
}

/* A node that must not start: exit status 1 and every needle (log_has) in its log. */
static void
refused(const char *ca, const char *cert, const char *user, const char *password_file,
    const char *const *needles)
{
	struct server_proc sp;
	int exit_status = 0;
	char *log;

	CHECK(harness_init(&sp));
	node_flags(&sp, ca, cert, user, password_file);
	CHECK(!harness_start(&sp, &exit_status));
	CHECK_STATUS(exit_status, 1);
	log = file_read(sp.log_path, NULL);
	for (size_t i = 0; needles[i] != NULL; i++)
		if (!log_has(log, needles[i])) {
			fprintf(stderr, "  the log lacks \"%s\"\n", needles[i]);
			CHECK(log_has(log, needles[i]));
		}
	if (log != NULL && getenv("SECRETD_TEST_VERBOSE") != NULL)
		fprintf(stderr, "%s", log);
	free(log);
	harness_cleanup(&sp);
}

static void
test_tls(void)
{
	struct server_proc sp;

	CHECK(harness_init(&sp));
	node_flags(&sp, in_tmp("ca.crt"), "client", NULL, NULL);
	CHECK(harness_start(&sp, NULL));
	round_trip(&sp, "tls");
	CHECK_STATUS(harness_stop(&sp), 0);
	harness_cleanup(&sp);
}

static void
test_wrong_ca(void)
{
	const char *const needles[] = {"etcd at https://127.0.0.1:",
	    "the TLS connection to etcd failed: check --etcd-ca", "SSL certificate problem", NULL};

	refused(in_tmp("other-ca.crt"), "client", NULL, NULL, needles);
}

static void
test_no_cert(void)
{
	/* How the refusal shows depends on when the client reads etcd's TLS alert (TLS 1.3
	 * sends it after the client thinks the handshake done): the alert, or the connection
	 * it closed. */
	const char *const needles[] = {"etcd at https://127.0.0.1:",
	    "bad certificate|certificate required|Transport endpoint is not connected|"
	    "Connection reset|Connection died|SSL_read|Recv failure",
	    NULL};

	refused(in_tmp("ca.crt"), NULL, NULL, NULL, needles);
}

static void
test_auth(void)
{
	static const char *const steps[][8] = {
	    {"user", "add", "root", "--new-user-password", "rootpw-1", NULL},
	    {"user", "grant-role", "root", "root", NULL},
	    {"user", "add", "sd", "--new-user-password", "sdpw-1", NULL},
	    {"role", "add", "sdrole", NULL},
	    {"role", "grant-permission", "sdrole", "readwrite", PREFIX, "--prefix=true", NULL},
	    {"user", "grant-role", "sd", "sdrole", NULL},
	    {"auth", "enable", NULL},
	};
	const char *const bad_needles[] = {"etcd at https://127.0.0.1:",
	    "etcd refused the user or password", "authentication failed", NULL};
	const char *const cn_needles[] = {"etcd at https://127.0.0.1:",
	    "use a certificate without one", "HTTP 400: CommonName", NULL};
	struct server_proc sp;
	char out[2048];

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		CHECK_STATUS(ctl(steps[i], NULL, out, sizeof(out)), 0);
	CHECK(write_file(in_tmp("sd.password"), "sdpw-1\n", 0600));
	CHECK(write_file(in_tmp("bad.password"), "not-it\n", 0600));
	/* etcd 3.4's gateway refuses, once auth is on, a client certificate with a CommonName
	 * (it would not be used as the user): refused at start with etcd's words. */
	refused(in_tmp("ca.crt"), "client", "sd", in_tmp("sd.password"), cn_needles);
	/* A certificate without one and the right password: it works. */
	CHECK(harness_init(&sp));
	node_flags(&sp, in_tmp("ca.crt"), "nocn", "sd", in_tmp("sd.password"));
	CHECK(harness_start(&sp, NULL));
	round_trip(&sp, "auth");
	CHECK_STATUS(harness_stop(&sp), 0);
	harness_cleanup(&sp);
	/* A wrong one: refused at start, with etcd's reason. */
	refused(in_tmp("ca.crt"), "nocn", "sd", in_tmp("bad.password"), bad_needles);
	/* auth is on: etcdctl needs root from now on. */
	{
		static const char *const args[] = {"auth", "disable", NULL};

		CHECK_STATUS(ctl(args, "root:rootpw-1", out, sizeof(out)), 0);
	}
}

int
main(void)
{
	struct {
		const char *name;
		void (*fn)(void);
	} steps[] = {
	    {"tls", test_tls},
	    {"wrong-ca", test_wrong_ca},
	    {"no-cert", test_no_cert},
	    {"auth", test_auth},
	};
	bool up;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!etcd_available() || access("/usr/bin/openssl", X_OK) != 0) {
		printf("SKIP: etcd or openssl is not installed (tools/deps installs them)\n");
		return 77;
	}
	if (mkdtemp(tmp) == NULL || chmod(tmp, 0700) != 0)
		return 1;
	(void)snprintf(key_file, sizeof(key_file), "%s/cluster.key", tmp);
	up = write_file(key_file,
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
	up = up && make_ca("ca") && make_ca("other-ca") &&
	     make_cert("server", "etcd", "ca",
	         "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n") &&
	     make_cert("client", "secretd", "ca", "extendedKeyUsage=clientAuth\n") &&
	     make_cert("nocn", NULL, "ca", "extendedKeyUsage=clientAuth\n");
	CHECK(up);
	up = up && start_etcd();
	CHECK(up);
	(void)setenv("SECRETD_PERSISTENT_STORE", "etcd", 1);
	(void)setenv("SECRETD_ETCD_ENDPOINTS", endpoint, 1);
	(void)setenv("SECRETD_ETCD_PREFIX", PREFIX, 1);
	for (size_t s = 0; up && s < sizeof(steps) / sizeof(steps[0]); s++) {
		int before = check_failures_;

		steps[s].fn();
		printf("%s %s\n", check_failures_ == before ? "ok  " : "FAIL", steps[s].name);
	}
	if (etcd_pid > 0) {
		(void)kill(etcd_pid, SIGKILL);
		(void)waitpid(etcd_pid, NULL, 0);
	}
	if (check_failures_ == 0 || getenv("SECRETD_KEEP_TEST_DIRS") == NULL) {
		char cmd[128];

		(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
	}
	return check_report();
}
