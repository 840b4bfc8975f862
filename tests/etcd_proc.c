/*
 * etcd_proc.c: real etcd members for the tests. See etcd_proc.h.
 */
#include "etcd_proc.h"
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *
etcd_bin(void)
{
	const char *b = getenv("ETCD_BIN");

	return b != NULL && b[0] != '\0' ? b : "/usr/bin/etcd";
}

static const char *
etcdctl_bin(void)
{
	const char *b = getenv("ETCDCTL_BIN");

	return b != NULL && b[0] != '\0' ? b : "/usr/bin/etcdctl";
}

bool
etcd_available(void)
{
	return access(etcd_bin(), X_OK) == 0;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	(void)nanosleep(&ts, NULL);
}

/* Fork and exec etcd for member i; state "new" or "existing". */
static bool
spawn(struct etcd_proc *ep, size_t i, const char *state)
{
	struct etcd_member *m = &ep->m[i];
	char name[8];
	char peer_url[64];
	char cluster[512] = "";
	pid_t parent;
	pid_t pid;

	(void)snprintf(name, sizeof(name), "n%zu", i + 1);
	(void)snprintf(peer_url, sizeof(peer_url), "http://%s:%d", m->host, m->peer_port);
	for (size_t k = 0; k < ep->n; k++) {
		char one[96];

		(void)snprintf(one, sizeof(one), "%sn%zu=http://%s:%d", k > 0 ? "," : "", k + 1,
		    ep->m[k].host, ep->m[k].peer_port);
		(void)strncat(cluster, one, sizeof(cluster) - strlen(cluster) - 1);
	}
	parent = getpid();
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		int fd = open(m->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

		/* A test killed by its timeout must not leave etcd members running into the
		 * next tests: they die with the test. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(127);

		if (fd >= 0) {
			(void)dup2(fd, 1);
			(void)dup2(fd, 2);
			(void)close(fd);
		}
		(void)setpgid(0, 0);
		execl(etcd_bin(), etcd_bin(), "--name", name, "--data-dir", m->data_dir,
		    "--listen-client-urls", m->client_url, "--advertise-client-urls", m->client_url,
		    "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
		    "--initial-cluster", cluster, "--initial-cluster-state", state,
		    "--initial-cluster-token", ep->token, "--heartbeat-interval", "50",
		    "--election-timeout", "500", "--logger", "zap", "--log-level", "warn",
		    (char *)NULL);
		_exit(127);
	}
	m->pid = pid;
	return true;
}

bool
etcd_member_healthy(const struct etcd_proc *ep, size_t i, int timeout_ms)
{
	struct sockaddr_in sa;
	char req[128];
	char ans[1024];
	size_t got = 0;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = false;

	if (fd < 0)
		return false;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)ep->m[i].client_port);
	(void)inet_pton(AF_INET, ep->m[i].host, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto done;
	(void)snprintf(req, sizeof(req), "GET /health HTTP/1.0\r\nHost: %s\r\n\r\n", ep->m[i].host);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		goto done;
	for (;;) {
		ssize_t n = read(fd, ans + got, sizeof(ans) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(ans) - 1)
			break;
	}
	ans[got] = '\0';
	ok = strstr(ans, "\"health\":\"true\"") != NULL;
done:
	(void)close(fd);
	return ok;
}

static bool
wait_healthy(struct etcd_proc *ep, size_t i, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 100) {
		int status;

		if (etcd_member_healthy(ep, i, 1000))
			return true;
		if (waitpid(ep->m[i].pid, &status, WNOHANG) == ep->m[i].pid) {
			ep->m[i].pid = 0;
			return false;
		}
		sleep_ms(100);
	}
	return false;
}

bool
etcd_start(struct etcd_proc *ep, const char *dir, size_t n)
{
	memset(ep, 0, sizeof(*ep));
	if (n == 0 || n > ETCD_PROC_MAX)
		return false;
	ep->n = n;
	(void)snprintf(ep->dir, sizeof(ep->dir), "%s", dir);
	(void)snprintf(ep->token, sizeof(ep->token), "secretd-test-%d", (int)getpid());
	for (size_t i = 0; i < n; i++) {
		struct etcd_member *m = &ep->m[i];

		(void)snprintf(m->host, sizeof(m->host), "127.0.0.%zu", i + 1);
		/* Two distinct free ports, client and peer. */
		do {
			m->client_port = harness_free_port(m->host);
			m->peer_port = harness_free_port(m->host);
		} while (
		    m->client_port == m->peer_port || m->client_port < 0 || m->peer_port < 0);
		(void)snprintf(m->data_dir, sizeof(m->data_dir), "%s/etcd%zu", dir, i + 1);
		(void)snprintf(m->log_path, sizeof(m->log_path), "%s/etcd%zu.log", dir, i + 1);
		{
			char url[64];

			(void)snprintf(url, sizeof(url), "http://%s:%d", m->host, m->client_port);
			memcpy(m->client_url, url, sizeof(url));
			if (i > 0)
				(void)strncat(ep->endpoints, ",",
				    sizeof(ep->endpoints) - strlen(ep->endpoints) - 1);
			(void)strncat(
			    ep->endpoints, url, sizeof(ep->endpoints) - strlen(ep->endpoints) - 1);
		}
		(void)mkdir(m->data_dir, 0700);
	}
	for (size_t i = 0; i < n; i++)
		if (!spawn(ep, i, "new")) {
			etcd_stop(ep);
			return false;
		}
	for (size_t i = 0; i < n; i++)
		if (!wait_healthy(ep, i, 30000)) {
			(void)fprintf(stderr, "etcd member %zu did not become healthy; see %s\n",
			    i + 1, ep->m[i].log_path);
			etcd_stop(ep);
			return false;
		}
	return true;
}

bool
etcd_restart_member(struct etcd_proc *ep, size_t i)
{
	if (ep->m[i].pid != 0)
		return false;
	return spawn(ep, i, "existing") && wait_healthy(ep, i, 30000);
}

void
etcd_kill_member(struct etcd_proc *ep, size_t i)
{
	if (ep->m[i].pid <= 0)
		return;
	(void)kill(ep->m[i].pid, SIGKILL);
	(void)waitpid(ep->m[i].pid, NULL, 0);
	ep->m[i].pid = 0;
}

void
etcd_signal_member(struct etcd_proc *ep, size_t i, int sig)
{
	if (ep->m[i].pid > 0)
		(void)kill(ep->m[i].pid, sig);
}

void
etcd_stop(struct etcd_proc *ep)
{
	for (size_t i = 0; i < ep->n; i++) {
		if (ep->m[i].pid > 0)
			(void)kill(ep->m[i].pid, SIGCONT);
		etcd_kill_member(ep, i);
	}
}

int
etcd_ctl(const struct etcd_proc *ep, const char *const *args, char *out, size_t outlen)
{
	int pipefd[2];
	const char *argv[24];
	size_t n = 0;
	size_t got = 0;
	pid_t pid;
	int status = 0;

	argv[n++] = etcdctl_bin();
	argv[n++] = "--endpoints";
	argv[n++] = ep->endpoints;
	for (size_t i = 0; args[i] != NULL && n < 22; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe(pipefd) != 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		(void)dup2(pipefd[1], 1);
		if (null >= 0)
			(void)dup2(null, 2);
		(void)close(pipefd[0]);
		(void)setenv("ETCDCTL_API", "3", 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	(void)close(pipefd[1]);
	/* Read everything (a full pipe would stall etcdctl), keeping what fits. */
	for (;;) {
		char chunk[4096];
		ssize_t r = read(pipefd[0], chunk, sizeof(chunk));

		if (r <= 0)
			break;
		if (outlen > got + 1) {
			size_t take = (size_t)r < outlen - got - 1 ? (size_t)r : outlen - got - 1;

			memcpy(out + got, chunk, take);
			got += take;
		}
	}
	if (outlen > 0)
		out[got < outlen ? got : outlen - 1] = '\0';
	(void)close(pipefd[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
