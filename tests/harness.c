/*
 * harness.c: real secretd processes for the integration tests. See harness.h.
 */
/* memmem */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* One text-frame round trip: the server answers when it is ready. */
static bool
answers(const char *url)
{
	nng_socket s;
	nng_msg *m = NULL;
	bool ok = false;

	if (nng_req0_open(&s) != 0)
		return false;
	(void)nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 2000);
	(void)nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 2000);
	if (nng_dial(s, url, NULL, 0) == 0 && nng_msg_alloc(&m, 0) == 0 &&
	    nng_msg_append(m, "FROM duckdb_secrets()", 21) == 0 && nng_sendmsg(s, m, 0) == 0) {
		m = NULL;
		ok = nng_recvmsg(s, &m, 0) == 0;
	}
	if (m != NULL)
		nng_msg_free(m);
	(void)nng_close(s);
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
