/*
 * test_listener.c: the listener survives any peer. secretd listens on
 * ipc://, tcp:// and tls+tcp://; for each transport, 1,000 peers of each kind hit the
 * listener, then a fresh client (a new connection, which only a live accept loop can
 * serve) must get an answer:
 *
 *   close      connect() and close() without a byte (upstream nanomsg/nng#1518: in nng
 *              1.5.2 this stops the listener's accept loop for good)
 *   reset      connect() and close with SO_LINGER 0 (an RST instead of a FIN)
 *   garbage    16 bytes that are not an SP handshake (an HTTP request line), then close
 *   partial    1..7 bytes of a valid SP handshake, then close (disconnect at every byte)
 *   stall      3 bytes of the handshake, then silence; held open 50 at a time while a
 *              fresh client is served, then closed
 *
 * The notify socket's listener (a PUB socket) gets the close and partial peers too, and
 * then a fresh subscriber (a raw SUB handshake) must receive a heartbeat.
 *
 * The server's log says how often its listener guard found a listener stopped and listened
 * again (server/listen.c); the test prints those counts.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "secretd.h"

#define PER_KIND 1000
#define STALL_BATCH 50
#define ADMIN_TOKEN "sdt_listener_test_admin_token_0123456789"
/* A fresh client's call: long enough for the guard to find a stopped listener (two
 * failed checks, ~4.5 s, longer under ASan on a loaded machine) and for the client to
 * resend on the new connection. */
#define ANSWER_MS 30000

static struct server_proc srv;
static char tcp_url[64];
static char tls_url[64];
static char ca_path[400];

static bool
setup_files(const char *dir, char *tokens, size_t tokens_len, char *cert, char *key, size_t plen)
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	char cmd[2048];
	FILE *f;

	(void)snprintf(tokens, tokens_len, "%s/tokens", dir);
	SHA256((const unsigned char *)ADMIN_TOKEN, strlen(ADMIN_TOKEN), h);
	f = fopen(tokens, "w");
	if (f == NULL)
		return false;
	fprintf(f, "admin listener-test ");
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		fprintf(f, "%02x", h[i]);
	fprintf(f, "\n");
	(void)fclose(f);
	(void)snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", dir);
	(void)snprintf(cert, plen, "%s/server.pem", dir);
	(void)snprintf(key, plen, "%s/server.key", dir);
	(void)snprintf(cmd, sizeof(cmd),
	    "cd '%s' && chmod 600 tokens && "
	    "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
	    "  -subj /CN=secretd-test-ca 2>/dev/null && "
	    "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
	    "  -subj /CN=localhost 2>/dev/null && "
	    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && "
	    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	    "  -out server.pem -days 2 -extfile ext.cnf 2>/dev/null && chmod 600 server.key",
	    dir);
	return system(cmd) == 0;
}

/* A fresh client on url answers a List within ANSWER_MS; returns the milliseconds it took,
 * or -1. */
static long
fresh_answer_ms(const char *url)
{
	secretd_options o = {.token = ADMIN_TOKEN};
	secretd_client *c = NULL;
	secretd_rows *rows = NULL;
	struct timespec t0, t1;
	secretd_status st;

	if (strncmp(url, "ipc://", 6) == 0)
		o.token = NULL;
	if (strncmp(url, "tls+", 4) == 0) {
		o.tls_ca_file = ca_path;
		o.tls_server_name = "localhost";
	}
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	if (secretd_client_open(url, &o, &c, NULL) != SECRETD_OK)
		return -1;
	st = secretd_list(c, NULL, ANSWER_MS, &rows, NULL);
	secretd_rows_free(rows);
	/* Closed with nothing in flight and the server up: the safe pattern (client.c). */
	secretd_client_close(c);
	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	if (st != SECRETD_OK)
		return -1;
	return (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
}

static const unsigned char hello[8] = {0x00, 'S', 'P', 0x00, 0x00, 0x30, 0x00, 0x00};

/* One peer of the given kind (not stall). Returns false when it could not even connect. */
static bool
one_peer(const char *url, const char *kind, int i)
{
	int fd = harness_sp_connect(url);

	if (fd < 0)
		return false;
	if (strcmp(kind, "reset") == 0) {
		struct linger lg = {1, 0};

		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	} else if (strcmp(kind, "garbage") == 0) {
		(void)send(fd, "GET / HTTP/1.0\r\n", 16, MSG_NOSIGNAL);
	} else if (strcmp(kind, "partial") == 0) {
		(void)send(fd, hello, (size_t)(1 + i % 7), MSG_NOSIGNAL);
	}
	(void)close(fd);
	return true;
}

static void
hit(const char *url, const char *kind)
{
	int connected = 0;
	long ms;

	if (strcmp(kind, "stall") == 0) {
		for (int done = 0; done < PER_KIND; done += STALL_BATCH) {
			int fds[STALL_BATCH];

			for (int k = 0; k < STALL_BATCH; k++) {
				fds[k] = harness_sp_connect(url);
				if (fds[k] >= 0) {
					connected++;
					(void)send(fds[k], hello, 3, MSG_NOSIGNAL);
				}
			}
			/* Served while the stalled peers hang on (every 5th batch: the
			 * fresh client costs a TLS handshake). */
			if (done % (5 * STALL_BATCH) == 0) {
				ms = fresh_answer_ms(url);
				CHECK(ms >= 0);
			}
			for (int k = 0; k < STALL_BATCH; k++)
				if (fds[k] >= 0)
					(void)close(fds[k]);
		}
	} else {
		for (int i = 0; i < PER_KIND; i++)
			connected += one_peer(url, kind, i);
	}
	CHECK(connected == PER_KIND);
	ms = fresh_answer_ms(url);
	CHECK(ms >= 0);
	/* And again: the listener keeps working, not just once. */
	CHECK(fresh_answer_ms(url) >= 0);
	fprintf(stderr, "%-40s %-8s %4d peers, then a fresh client answered in %ld ms\n", url,
	    kind, connected, ms);
}

/* One SUB handshake on the notify socket and its first message (a heartbeat comes every
 * 250 ms), waiting at most 1 s. */
static bool
sub_attempt(const char *url)
{
	static const unsigned char sub_hello[8] = {0x00, 'S', 'P', 0x00, 0x00, 0x21, 0x00, 0x00};
	struct timeval tv = {1, 0};
	unsigned char buf[16];
	size_t got = 0;
	bool ok = false;
	int fd;

	if ((fd = harness_sp_connect(url)) < 0)
		return false;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, sub_hello, sizeof(sub_hello), MSG_NOSIGNAL) != (ssize_t)sizeof(sub_hello))
		goto done;
	/* The server's 8-byte header (PUB, 0x20), then a message's 8-byte length. */
	while (got < sizeof(buf)) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - got, 0);

		if (n <= 0)
			goto done;
		got += (size_t)n;
	}
	ok = memcmp(buf, "\0SP\0\0\x20", 6) == 0;
done:
	(void)close(fd);
	return ok;
}

/* A fresh subscriber, connecting again as nng's SUB dialer would until ANSWER_MS has
 * passed (a connection queued on a stopped listener is reset when the guard replaces
 * it). Milliseconds until the first message, or -1. */
static long
fresh_heartbeat_ms(const char *url)
{
	struct timespec t0, t1;
	long ms;

	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		bool ok = sub_attempt(url);

		(void)clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (ok)
			return ms;
	} while (ms < ANSWER_MS);
	return -1;
}

/* How many lines of the server log contain needle. */
static int
log_count(const char *needle)
{
	char *log = file_read(srv.log_path, NULL);
	int n = 0;

	for (char *p = log; p != NULL && (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(log);
	return n;
}

int
main(void)
{
	static const char *kinds[] = {"close", "reset", "garbage", "partial", "stall"};
	char tokens[400], cert[400], key[400];
	const char *urls[3];
	int restarts[4] = {0, 0, 0, 0};

	if (!harness_init(&srv))
		return 1;
	(void)snprintf(tcp_url, sizeof(tcp_url), "tcp://127.0.0.1:%d", harness_free_port("127.0.0.1"));
	(void)snprintf(tls_url, sizeof(tls_url), "tls+tcp://127.0.0.1:%d", harness_free_port("127.0.0.1"));
	if (!setup_files(srv.dir, tokens, sizeof(tokens), cert, key, sizeof(cert))) {
		fprintf(stderr, "cannot make tokens or certificates\n");
		return 1;
	}
	srv.extra[0] = "--listen";
	srv.extra[1] = tcp_url;
	srv.extra[2] = "--listen";
	srv.extra[3] = tls_url;
	srv.extra[4] = "--insecure";
	srv.extra[5] = "--tokens-file";
	srv.extra[6] = tokens;
	srv.extra[7] = "--tls-cert";
	srv.extra[8] = cert;
	srv.extra[9] = "--tls-key";
	srv.extra[10] = key;
	srv.extra[11] = "--log-level";
	srv.extra[12] = "info";
	if (!harness_start(&srv, NULL)) {
		fprintf(stderr, "cannot start secretd (log: %s)\n", srv.log_path);
		return 1;
	}
	urls[0] = srv.url;
	urls[1] = tcp_url;
	urls[2] = tls_url;
	for (int u = 0; u < 3; u++) {
		char needle[128];

		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			hit(urls[u], kinds[k]);
		(void)snprintf(needle, sizeof(needle), "listener on %s stopped accepting", urls[u]);
		restarts[u] = log_count(needle);
	}
	{
		static const char *notify_kinds[] = {"close", "partial"};
		char notify_url[400];
		char needle[450];

		(void)snprintf(notify_url, sizeof(notify_url), "ipc://%s/secretd.notify.sock", srv.dir);
		CHECK(fresh_heartbeat_ms(notify_url) >= 0);
		for (size_t k = 0; k < 2; k++) {
			int connected = 0;
			long ms;

			for (int i = 0; i < PER_KIND; i++)
				connected += one_peer(notify_url, notify_kinds[k], i);
			CHECK(connected == PER_KIND);
			ms = fresh_heartbeat_ms(notify_url);
			CHECK(ms >= 0);
			fprintf(stderr,
			    "%-40s %-8s %4d peers, then a fresh subscriber's first message came "
			    "in %ld ms\n",
			    notify_url, notify_kinds[k], connected, ms);
		}
		(void)snprintf(needle, sizeof(needle), "listener on %s stopped accepting", notify_url);
		restarts[3] = log_count(needle);
	}
	fprintf(stderr,
	    "listener guard: listened again %d time(s) on ipc, %d on tcp, %d on tls+tcp, %d on "
	    "the notify socket\n",
	    restarts[0], restarts[1], restarts[2], restarts[3]);
	CHECK_STATUS(harness_stop(&srv), 0);
	harness_cleanup(&srv);
	return check_report();
}
