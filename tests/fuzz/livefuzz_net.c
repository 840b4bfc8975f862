/*
 * livefuzz_net.c: livefuzz's connections to secretd: nng REQ sockets for every frame the
 * server must answer, and raw SP connections (the handshake and length headers written by
 * hand) for frames over the transport's cap and for headers that declare huge lengths.
 *
 * What it does not do: no frame generation, no checking of answers beyond "answered or
 * not", and nothing but loopback tcp and ipc (livefuzz.c refuses other URLs).
 *
 * Thread safety: a struct lf_conn belongs to one thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "livefuzz.h"

#define LF_RAW_TIMEOUT_MS 3000

int
lf_conn_open(struct lf_conn *c, const char *url)
{
	int rv;

	c->url = url;
	c->ipc = strncmp(url, "ipc://", 6) == 0;
	if ((rv = nng_req0_open(&c->sock)) != 0)
		return rv;
	if ((rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, 64u << 20)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 10)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 200)) != 0 ||
	    (rv = nng_dial(c->sock, url, NULL, 0)) != 0 ||
	    (rv = nng_ctx_open(&c->ctx, c->sock)) != 0 ||
	    (rv = nng_aio_alloc(&c->aio, NULL, NULL)) != 0)
		return rv;
	return 0;
}

void
lf_conn_close(struct lf_conn *c)
{
	if (c->aio != NULL)
		nng_aio_free(c->aio);
	c->aio = NULL;
	(void)nng_close(c->sock);
}

/*
 * Send frame[0..len) on c and wait up to timeout_ms for the reply. 0 with *replyp (caller
 * frees with nng_msg_free), or an nng error (NNG_ETIMEDOUT when nothing came back).
 */
int
lf_exchange(struct lf_conn *c, const uint8_t *frame, size_t len, int timeout_ms, nng_msg **replyp)
{
	nng_msg *msg = NULL;
	int rv;

	*replyp = NULL;
	if ((rv = nng_msg_alloc(&msg, 0)) != 0 || (rv = nng_msg_append(msg, frame, len)) != 0) {
		nng_msg_free(msg);
		return rv;
	}
	nng_aio_set_msg(c->aio, msg);
	nng_aio_set_timeout(c->aio, timeout_ms);
	nng_ctx_send(c->ctx, c->aio);
	nng_aio_wait(c->aio);
	if ((rv = nng_aio_result(c->aio)) != 0) {
		nng_msg_free(nng_aio_get_msg(c->aio));
		return rv;
	}
	nng_ctx_recv(c->ctx, c->aio);
	nng_aio_wait(c->aio);
	if ((rv = nng_aio_result(c->aio)) != 0) {
		/* A fresh context so that nothing of the abandoned request lingers. */
		(void)nng_ctx_close(c->ctx);
		if (nng_ctx_open(&c->ctx, c->sock) != 0)
			return NNG_ENOMEM;
		return rv;
	}
	*replyp = nng_aio_get_msg(c->aio);
	return 0;
}

/* Connect a plain socket to an ipc:// or tcp://127.0.0.1|localhost:PORT URL. Returns the
 * descriptor or -1. */
static int
raw_connect(const char *url)
{
	struct sockaddr_un un;
	struct sockaddr_in in;
	struct timeval tv = {LF_RAW_TIMEOUT_MS / 1000, 0};
	const char *port;
	int fd = -1;

	if (strncmp(url, "ipc://", 6) == 0) {
		memset(&un, 0, sizeof(un));
		un.sun_family = AF_UNIX;
		if (strlen(url + 6) >= sizeof(un.sun_path))
			return -1;
		memcpy(un.sun_path, url + 6, strlen(url + 6));
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&un, sizeof(un)) != 0)
			goto fail;
	} else {
		port = strrchr(url, ':');
		if (port == NULL || strncmp(url, "tcp://", 6) != 0)
			return -1;
		memset(&in, 0, sizeof(in));
		in.sin_family = AF_INET;
		in.sin_port = htons((uint16_t)strtoul(port + 1, NULL, 10));
		in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0)
			goto fail;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		goto fail;
	return fd;
fail:
	if (fd >= 0)
		(void)close(fd);
	return -1;
}

/* Write all of p[0..n); false on error (a peer that closed is an error here). */
static bool
raw_write(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w <= 0)
			return false;
		b += w;
		n -= (size_t)w;
	}
	return true;
}

/*
 * Speak the SP wire protocol by hand (nng's REQ socket would resend a dropped request on
 * every new connection): handshake as a REQ peer, then send a message header that declares
 * declared bytes, then the REQ request id and frame[0..len) (as much as the server takes).
 * The server must close the connection without an answer. Returns NULL or what is wrong.
 */
const char *
lf_raw_over_cap(const char *url, const uint8_t *frame, size_t len, uint64_t declared)
{
	static const uint8_t hello[8] = {0x00, 'S', 'P', 0x00, 0x00, 0x30, 0x00, 0x00};
	static const uint8_t req_id[4] = {0x80, 0x00, 0x00, 0x01};
	uint8_t head[9];
	uint8_t peer[8];
	size_t hn = 0;
	const char *why = NULL;
	ssize_t r;
	int fd = raw_connect(url);

	if (fd < 0)
		return "cannot connect a raw socket";
	if (!raw_write(fd, hello, sizeof(hello)) ||
	    recv(fd, peer, sizeof(peer), MSG_WAITALL) != 8 ||
	    memcmp(peer, "\0SP\0\0\x31", 6) != 0) {
		why = "no SP handshake from the server";
		goto done;
	}
	if (strncmp(url, "ipc://", 6) == 0)
		head[hn++] = 0x01; /* ipc: a message-type byte before the length */
	for (int i = 7; i >= 0; i--)
		head[hn++] = (uint8_t)(declared >> (8 * i));
	/* The server may close as soon as it has read the header: later writes may fail. */
	if (raw_write(fd, head, hn) && raw_write(fd, req_id, sizeof(req_id)))
		(void)raw_write(fd, frame, len);
	r = recv(fd, peer, 1, 0);
	if (r > 0)
		why = "the server answered a frame over the transport's cap";
	else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		why = "the server kept a connection open after a frame over the cap";
done:
	(void)close(fd);
	return why;
}
