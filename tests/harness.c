/*
 * harness.c: real secretd processes for the integration tests. See harness.h.
 */
/* memmem */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

bool
harness_init(struct server_proc *sp)
{
	memset(sp, 0, sizeof(*sp));
	sp->pid = -1;
	(void)snprintf(sp->dir, sizeof(sp->dir), "/tmp/secretd-test-XXXXXX");
	if (mkdtemp(sp->dir) == NULL || chmod(sp->dir, 0700) != 0)
		return false;
	(void)snprintf(sp->data_dir, sizeof(sp->data_dir), "%s/data", sp->dir);
	(void)snprintf(sp->url, sizeof(sp->url), "ipc://%s/secretd.sock", sp->dir);
	(void)snprintf(sp->log_path, sizeof(sp->log_path), "%s/server.log", sp->dir);
	return true;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	(void)nanosleep(&ts, NULL);
}

/* Milliseconds on CLOCK_MONOTONIC. */
static long long
mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
harness_sp_connect(const char *url)
{
	int fd = -1;

	if (strncmp(url, "ipc://", 6) == 0) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		if (strlen(url + 6) >= sizeof(sa.sun_path))
			return -1;
		memcpy(sa.sun_path, url + 6, strlen(url + 6) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			(void)close(fd);
			fd = -1;
		}
	} else if (strncmp(url, "tcp://", 6) == 0 || strncmp(url, "tls+tcp://", 10) == 0) {
		const char *hp = url + (url[1] == 'l' ? 10 : 6);
		const char *colon = strrchr(hp, ':');
		struct sockaddr_in sa = {.sin_family = AF_INET};
		char host[64];

		if (colon == NULL || (size_t)(colon - hp) >= sizeof(host))
			return -1;
		memcpy(host, hp, (size_t)(colon - hp));
		host[colon - hp] = '\0';
		sa.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
			return -1;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			(void)close(fd);
			fd = -1;
		}
	}
	return fd;
}

/* Write all of buf before the deadline. */
static bool
write_all(int fd, const void *buf, size_t len, long long deadline)
{
	const char *p = buf;

	while (len > 0) {
		struct pollfd pfd = {fd, POLLOUT, 0};
		ssize_t n;

		if (poll(&pfd, 1, (int)(deadline - mono_ms() > 0 ? deadline - mono_ms() : 0)) <= 0)
			return false;
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Read exactly len bytes before the deadline. */
static bool
read_all(int fd, void *buf, size_t len, long long deadline)
{
	char *p = buf;

	while (len > 0) {
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t n;

		if (poll(&pfd, 1, (int)(deadline - mono_ms() > 0 ? deadline - mono_ms() : 0)) <= 0)
			return false;
		n = read(fd, p, len);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

char *
harness_sp_request(const char *url, const void *body, size_t len, int timeout_ms, size_t *lenp)
{
	/* SP handshake of a REQ0 peer (protocol 0x30); a REP0 server answers with 0x31. */
	static const uint8_t hello[8] = {0x00, 'S', 'P', 0x00, 0x00, 0x30, 0x00, 0x00};
	bool ipc = strncmp(url, "ipc://", 6) == 0;
	long long deadline = mono_ms() + timeout_ms;
	uint8_t head[13];
	uint8_t peer[8];
	size_t hlen = ipc ? 9 : 8;
	uint64_t rlen;
	char *reply = NULL;
	int fd;

	if (strncmp(url, "tls+", 4) == 0)
		return NULL; /* a raw probe cannot speak TLS */
	fd = harness_sp_connect(url);
	if (fd < 0)
		return NULL;
	if (!write_all(fd, hello, sizeof(hello), deadline) ||
	    !read_all(fd, peer, sizeof(peer), deadline) || peer[1] != 'S' || peer[5] != 0x31)
		goto done;
	/* ipc frames carry a type byte (1) before the length; the REQ header is a 32-bit
	 * request id with the high bit set. */
	if (ipc)
		head[0] = 1;
	put_be64(head + hlen - 8, 4 + len);
	head[hlen] = 0x80;
	head[hlen + 1] = 0;
	head[hlen + 2] = 0;
	head[hlen + 3] = 1;
	if (!write_all(fd, head, hlen + 4, deadline) || !write_all(fd, body, len, deadline))
		goto done;
	if (!read_all(fd, head, hlen, deadline))
		goto done;
	rlen = get_be64(head + hlen - 8);
	if (rlen < 4 || rlen > 64 * 1024 * 1024)
		goto done;
	reply = malloc((size_t)rlen + 1);
	if (reply == NULL || !read_all(fd, reply, (size_t)rlen, deadline)) {
		free(reply);
		reply = NULL;
		goto done;
	}
	/* Drop the REQ header: the caller gets the body, NUL-terminated. */
	memmove(reply, reply + 4, (size_t)rlen - 4);
	reply[rlen - 4] = '\0';
	if (lenp != NULL)
		*lenp = (size_t)rlen - 4;
done:
	(void)close(fd);
	return reply;
}

/*
 * One text-frame round trip over a plain socket speaking the SP handshake by hand: the
 * server answers when it is ready. Never an nng socket: a one-shot nng REQ socket closed
 * right after dialling a server that is starting is what hangs nng 1.5.2's nng_close and
 * spins its poller (tests/README.md, "nng 1.5.2").
 */
static bool
answers(const char *url)
{
	char *reply = harness_sp_request(url, "FROM duckdb_secrets()", 21, 2000, NULL);
	bool ok = reply != NULL;

	free(reply);
	return ok;
}

bool
harness_start(struct server_proc *sp, int *exitp)
{
	const char *bin = getenv("SECRETD_BIN");
	const char *argv[40];
	size_t n = 0;
	pid_t pid;

	if (bin == NULL)
		bin = "secretd";
	argv[n++] = bin;
	argv[n++] = "--listen";
	argv[n++] = sp->url;
	argv[n++] = "--data-dir";
	argv[n++] = sp->data_dir;
	argv[n++] = "--log-level";
	argv[n++] = "debug";
	for (size_t i = 0; i < 16 && sp->extra[i] != NULL; i++)
		argv[n++] = sp->extra[i];
	argv[n] = NULL;
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		int fd = open(sp->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			(void)dup2(fd, STDERR_FILENO);
			(void)dup2(fd, STDOUT_FILENO);
		}
		execvp(bin, (char *const *)argv);
		_exit(127);
	}
	sp->pid = pid;
	for (int i = 0; i < 200; i++) {
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			size_t len = 0;
			char *log = file_read(sp->log_path, &len);

			/* Some tests start servers that must refuse to start: only a note. */
			fprintf(stderr, "secretd exited while starting; the end of its log:\n%s\n",
			    log == NULL ? "(unreadable)" : log + (len > 2000 ? len - 2000 : 0));
			free(log);
			sp->pid = -1;
			if (exitp != NULL)
				*exitp = WIFEXITED(status) ? WEXITSTATUS(status)
				                           : 128 + WTERMSIG(status);
			return false;
		}
		if (answers(sp->url))
			return true;
		sleep_ms(50);
	}
	harness_kill(sp);
	fprintf(stderr, "secretd never answered on %s; see %s\n", sp->url, sp->log_path);
	return false;
}

int
harness_stop(struct server_proc *sp)
{
	int status = 0;

	if (sp->pid <= 0)
		return -1;
	(void)kill(sp->pid, SIGTERM);
	if (waitpid(sp->pid, &status, 0) != sp->pid)
		return -1;
	sp->pid = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		/* The test will fail on this; show why while the log still exists (the
		 * temporary directory goes at cleanup). */
		size_t len = 0;
		char *log = file_read(sp->log_path, &len);

		fprintf(stderr, "secretd exited with status %d; the end of %s:\n%s\n",
		    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
		    sp->log_path, log == NULL ? "(unreadable)" : log + (len > 4000 ? len - 4000 : 0));
		free(log);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void
harness_kill(struct server_proc *sp)
{
	if (sp->pid <= 0)
		return;
	(void)kill(sp->pid, SIGKILL);
	(void)waitpid(sp->pid, NULL, 0);
	sp->pid = -1;
}

void
harness_cleanup(struct server_proc *sp)
{
	char cmd[400];

	harness_kill(sp);
	if (sp->dir[0] != '\0' && getenv("SECRETD_KEEP_TEST_DIRS") == NULL) {
		(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sp->dir);
		(void)system(cmd);
	}
}

void
harness_show_log_problems(const struct server_proc *sp)
{
	char *log = file_read(sp->log_path, NULL);
	const char *lines[40];
	size_t n = 0;
	char *save = NULL;

	if (log == NULL)
		return;
	for (char *line = strtok_r(log, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, " warn ") == NULL && strstr(line, " error ") == NULL)
			continue;
		if (n == 40)
			memmove(lines, lines + 1, 39 * sizeof(lines[0]));
		lines[n < 40 ? n++ : 39] = line;
	}
	fprintf(stderr, "secretd's warnings and errors (%s):\n", sp->log_path);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "  %s\n", lines[i]);
	free(log);
}

char *
file_read(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;
	size_t cap = 0;

	if (f == NULL)
		return NULL;
	for (;;) {
		size_t n;

		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536 + 1);

			if (nb == NULL) {
				free(buf);
				(void)fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	(void)fclose(f);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

bool
file_contains(const char *path, const void *needle, size_t len)
{
	size_t n = 0;
	char *buf = file_read(path, &n);
	bool found;

	if (buf == NULL)
		return false;
	found = memmem(buf, n, needle, len) != NULL;
	free(buf);
	return found;
}

/* Read once from fd into buf[len] (NUL-ended, truncated when full); returns what read(2)
 * returned, so 0 means end of file. */
static ssize_t
drain_fd(int fd, char *buf, size_t len, size_t *usedp)
{
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n > 0 && buf != NULL && len > 0) {
		size_t room = len - 1 - *usedp;
		size_t k = (size_t)n < room ? (size_t)n : room;

		memcpy(buf + *usedp, tmp, k);
		*usedp += k;
		buf[*usedp] = '\0';
	}
	return n;
}

int
run_capture(
    const char *const argv[], const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
	int pin[2], pout[2], perr[2];
	size_t out_used = 0, err_used = 0;
	int status = 0;
	pid_t pid;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (pipe(pin) != 0 || pipe(pout) != 0 || pipe(perr) != 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		(void)dup2(pin[0], STDIN_FILENO);
		(void)dup2(pout[1], STDOUT_FILENO);
		(void)dup2(perr[1], STDERR_FILENO);
		(void)close(pin[1]);
		(void)close(pout[0]);
		(void)close(perr[0]);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	(void)close(pin[0]);
	(void)close(pout[1]);
	(void)close(perr[1]);
	if (in != NULL) {
		size_t left = strlen(in);

		while (left > 0) {
			ssize_t w = write(pin[1], in, left);

			if (w <= 0)
				break;
			in += w;
			left -= (size_t)w;
		}
	}
	(void)close(pin[1]);
	while (pout[0] >= 0 || perr[0] >= 0) {
		struct pollfd fds[2] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}};

		if (poll(fds, 2, 60000) <= 0)
			break;
		if (fds[0].revents != 0 && drain_fd(pout[0], out, outlen, &out_used) <= 0) {
			(void)close(pout[0]);
			pout[0] = -1;
		}
		if (fds[1].revents != 0 && drain_fd(perr[0], err, errlen, &err_used) <= 0) {
			(void)close(perr[0]);
			perr[0] = -1;
		}
	}
	if (pout[0] >= 0)
		(void)close(pout[0]);
	if (perr[0] >= 0)
		(void)close(perr[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
