/*
 * nng_close_race.c: provokes nng 1.5.2's close defect on purpose against plain nng (no
 * secretd code), and shows that the pattern secretd's code follows never meets it.
 *
 * The defect (tests/README.md, "nng 1.5.2"): when a pipe is closed while a message is
 * arriving on it, ipc_pipe_recv_cb starts the body read on an rx aio that the close has
 * already stopped; nni_aio_begin refuses it without completing it, so the protocol's
 * receive aio stays busy with no way to cancel it. nng's single reaper thread then waits
 * for it in nni_aio_stop for ever: from then on nng_close hangs for every socket in the
 * process, and ipc dials that fail leave their fds registered with the poller, which then
 * spins on EPOLLHUP (upstream fix: aac4dc36, in 1.9.0; partly undone by 5566ee8d in 1.12).
 *
 * A server process (a plain nng REP echo server that answers after 0-2 ms) is killed and
 * started again every 40 ms. Against it, each case of a pattern runs in a child process
 * (a hang wedges the whole process, so the next case needs a fresh one):
 *
 *   unsafe  open a REQ socket, dial, send one request, wait 0-3 ms for the reply, nng_close
 *           (a one-shot probe, or a client closed with a request in flight). The close runs
 *           on a helper thread; not returning within 2 s is a hang. After a hang the child
 *           dials 20 more sockets while the server restarts and measures the CPU time of
 *           nng's poller thread ("nng:poll:epoll", /proc/self/task/TID/stat) over 1 s.
 *   ours    what libsecretd does: one long-lived REQ socket per server URL (client.c's
 *           connection pool), each case a call on a pooled context with the same 0-3 ms
 *           timeout; no nng_close while a reply can arrive. The poller's CPU time is
 *           measured over the whole run.
 *
 * Usage: nng_close_race [--unsafe-seconds S] [--ours-cases N]
 * Exit 0 when ours had no hang and no spinning poller and (so that the program is known to
 * be able to fail) the unsafe pattern hung at least once; with --unsafe-seconds 0 only ours
 * is judged.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define RESTART_MS 40
#define CLOSE_BOUND_MS 2000
#define SPIN_CPU_PERMILLE 500 /* a poller busy for half of a second is spinning */

static char url[300];

/* Sleep without nng: the processes that fork must never have touched nng (nng 1.5.2
 * panics in a child forked after it started its threads). */
static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	(void)nanosleep(&ts, NULL);
}

/* ---- the server: a plain nng REP echo server ---- */

struct echo {
	nng_socket s;
	nng_ctx ctx;
	nng_aio *aio;
	bool sending;
};

static void
echo_cb(void *arg)
{
	struct echo *e = arg;

	if (nng_aio_result(e->aio) != 0) {
		if (e->sending)
			nng_msg_free(nng_aio_get_msg(e->aio));
		e->sending = false;
		nng_ctx_recv(e->ctx, e->aio);
		return;
	}
	if (!e->sending) {
		nng_msleep((nng_duration)(rand() % 3));
		e->sending = true;
		nng_ctx_send(e->ctx, e->aio);
		return;
	}
	e->sending = false;
	nng_ctx_recv(e->ctx, e->aio);
}

static void
server_main(void)
{
	static struct echo e[8];
	nng_socket s;

	if (nng_rep0_open(&s) != 0 || nng_listen(s, url, NULL, 0) != 0)
		_exit(1);
	for (int i = 0; i < 8; i++) {
		e[i].s = s;
		if (nng_ctx_open(&e[i].ctx, s) != 0 || nng_aio_alloc(&e[i].aio, echo_cb, &e[i]) != 0)
			_exit(1);
		nng_ctx_recv(e[i].ctx, e[i].aio);
	}
	for (;;)
		pause();
}

static pid_t
server_start(void)
{
	pid_t pid = fork();

	if (pid == 0)
		server_main();
	return pid;
}

/* Kill and restart the server every RESTART_MS until the parent kills the group. */
static pid_t
restarter_start(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		pid_t srv;

		/* Its own process group, servers included: the parent kills the group. */
		(void)setpgid(0, 0);
		srv = server_start();
		for (;;) {
			sleep_ms(RESTART_MS);
			(void)kill(srv, SIGKILL);
			(void)waitpid(srv, NULL, 0);
			srv = server_start();
			if (getppid() == 1) {
				(void)kill(srv, SIGKILL);
				_exit(0);
			}
		}
	}
	if (pid > 0)
		(void)setpgid(pid, pid); /* also here: the child may not have run yet */
	return pid;
}

/* ---- measuring nng's poller thread ---- */

/* utime+stime (clock ticks) of this process's threads whose name starts with "nng:poll". */
static long long
poller_ticks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	long long ticks = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		char path[300], buf[1024];
		FILE *f;
		char *p;
		unsigned long ut = 0, st = 0;

		if (de->d_name[0] == '.')
			continue;
		(void)snprintf(path, sizeof(path), "/proc/self/task/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(buf, sizeof(buf), f) == NULL) {
			(void)fclose(f);
			continue;
		}
		(void)fclose(f);
		/* pid (comm) state ... utime is field 14, stime 15 */
		p = strchr(buf, '(');
		if (p == NULL || strncmp(p + 1, "nng:poll", 8) != 0)
			continue;
		p = strrchr(buf, ')');
		if (p != NULL && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		                     &ut, &st) == 2)
			ticks += (long long)(ut + st);
	}
	(void)closedir(d);
	return ticks;
}

/* Poller CPU over ms milliseconds, in thousandths of one core. */
static long
poller_permille(int ms)
{
	long long t0 = poller_ticks();
	long long w0 = (long long)sd_now_ms();
	long long t1;

	nng_msleep((nng_duration)ms);
	t1 = poller_ticks();
	return (long)((t1 - t0) * 1000 * 1000 / sysconf(_SC_CLK_TCK) / ((long long)sd_now_ms() - w0));
}

/* ---- a bounded nng_close ---- */

struct closer {
	nng_socket s;
	volatile bool done;
};

static void *
closer_main(void *arg)
{
	struct closer *c = arg;

	(void)nng_close(c->s);
	c->done = true;
	return NULL;
}

/* nng_close(s) on a helper thread; false when it did not return within the bound (the
 * thread and c are then left behind). */
static bool
close_bounded(nng_socket s)
{
	struct closer *c = calloc(1, sizeof(*c));
	pthread_t t;
	long long until = (long long)sd_now_ms() + CLOSE_BOUND_MS;

	c->s = s;
	if (pthread_create(&t, NULL, closer_main, c) != 0) {
		(void)nng_close(s);
		free(c);
		return true;
	}
	while (!c->done && (long long)sd_now_ms() < until)
		nng_msleep(5);
	if (!c->done) {
		(void)pthread_detach(t);
		return false;
	}
	(void)pthread_join(t, NULL);
	free(c);
	return true;
}

/* One request with a 0-3 ms reply timeout on ctx (or the socket when ctx is NULL). */
static void
one_request(nng_socket s, nng_ctx *ctx)
{
	nng_aio *aio = NULL;
	nng_msg *m = NULL;

	if (nng_aio_alloc(&aio, NULL, NULL) != 0 || nng_msg_alloc(&m, 0) != 0 ||
	    nng_msg_append(m, "ping", 4) != 0)
		goto done;
	nng_aio_set_timeout(aio, 50);
	nng_aio_set_msg(aio, m);
	if (ctx != NULL)
		nng_ctx_send(*ctx, aio);
	else
		nng_send_aio(s, aio);
	nng_aio_wait(aio);
	if (nng_aio_result(aio) != 0)
		goto done; /* m still ours */
	m = NULL;
	nng_aio_set_timeout(aio, (nng_duration)(rand() % 4));
	if (ctx != NULL)
		nng_ctx_recv(*ctx, aio);
	else
		nng_recv_aio(s, aio);
	nng_aio_wait(aio);
	if (nng_aio_result(aio) == 0)
		nng_msg_free(nng_aio_get_msg(aio));
done:
	if (m != NULL)
		nng_msg_free(m);
	nng_aio_free(aio);
}

/* Child for the unsafe pattern: cases until a hang or the deadline. Writes
 * "cases hung spin_permille" to fd. */
static void
unsafe_child(int fd, long long deadline)
{
	long cases = 0;
	long spin = -1;
	bool hung = false;
	char line[64];

	srand((unsigned)getpid());
	while ((long long)sd_now_ms() < deadline) {
		nng_socket s;

		if (nng_req0_open(&s) != 0)
			break;
		(void)nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK);
		nng_msleep((nng_duration)(rand() % 3));
		one_request(s, NULL);
		cases++;
		if (!close_bounded(s)) {
			hung = true;
			break;
		}
	}
	if (hung) {
		/* The reaper is wedged: dials that fail now leave their fds registered. */
		for (int i = 0; i < 20; i++) {
			nng_socket s;

			if (nng_req0_open(&s) == 0)
				(void)nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK);
			nng_msleep(10);
		}
		nng_msleep(500);
		spin = poller_permille(1000);
	}
	(void)snprintf(line, sizeof(line), "%ld %d %ld\n", cases, hung ? 1 : 0, spin);
	(void)write(fd, line, strlen(line));
	_exit(0);
}

/* Child for our pattern: one long-lived socket, n cases on pooled contexts. Writes
 * "cases hung spin_permille". */
static void
ours_child(int fd, long n)
{
	nng_socket s;
	nng_ctx pool[4];
	long long t0, w0;
	long cases = 0;
	long permille;
	char line[64];

	srand((unsigned)getpid());
	if (nng_req0_open(&s) != 0 || nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK) != 0)
		_exit(1);
	for (int i = 0; i < 4; i++)
		if (nng_ctx_open(&pool[i], s) != 0)
			_exit(1);
	t0 = poller_ticks();
	w0 = (long long)sd_now_ms();
	for (; cases < n; cases++) {
		nng_msleep((nng_duration)(rand() % 3));
		one_request(s, &pool[cases % 4]);
	}
	permille = (long)((poller_ticks() - t0) * 1000 * 1000 / sysconf(_SC_CLK_TCK) /
	                  ((long long)sd_now_ms() - w0 > 0 ? (long long)sd_now_ms() - w0 : 1));
	/* No nng_close: the socket lives as long as the process (client.c). */
	(void)snprintf(line, sizeof(line), "%ld 0 %ld\n", cases, permille);
	(void)write(fd, line, strlen(line));
	_exit(0);
}

/* Run one child; parse its line. Returns false when it produced none. */
static bool
run_child(bool unsafe, long long deadline, long n, long *cases, int *hung, long *spin)
{
	int p[2];
	pid_t pid;
	char buf[128] = {0};
	ssize_t got;

	if (pipe(p) != 0)
		return false;
	pid = fork();
	if (pid == 0) {
		(void)close(p[0]);
		if (unsafe)
			unsafe_child(p[1], deadline);
		else
			ours_child(p[1], n);
	}
	(void)close(p[1]);
	got = read(p[0], buf, sizeof(buf) - 1);
	(void)close(p[0]);
	/* A hung child may keep threads stuck: it is done once it wrote. */
	(void)kill(pid, SIGKILL);
	(void)waitpid(pid, NULL, 0);
	return got > 0 && sscanf(buf, "%ld %d %ld", cases, hung, spin) == 3;
}

int
main(int argc, char **argv)
{
	long unsafe_seconds = 20, ours_cases = 2000;
	long u_cases = 0, u_hangs = 0, u_spins = 0, u_max_spin = 0;
	long o_cases = 0, o_spin = 0;
	int o_hung = 0;
	char dir[] = "/tmp/nng-close-race-XXXXXX";
	long long deadline;
	pid_t restarter;
	bool ok;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--unsafe-seconds") == 0)
			unsafe_seconds = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--ours-cases") == 0)
			ours_cases = atol(argv[i + 1]);
	}
	if (mkdtemp(dir) == NULL)
		return 2;
	(void)snprintf(url, sizeof(url), "ipc://%s/s.sock", dir);
	restarter = restarter_start();

	deadline = (long long)sd_now_ms() + unsafe_seconds * 1000;
	while ((long long)sd_now_ms() < deadline) {
		long cases = 0, spin = -1;
		int hung = 0;

		if (!run_child(true, deadline, 0, &cases, &hung, &spin))
			break;
		u_cases += cases;
		u_hangs += hung;
		if (hung && spin >= SPIN_CPU_PERMILLE)
			u_spins++;
		if (spin > u_max_spin)
			u_max_spin = spin;
	}
	if (!run_child(false, 0, ours_cases, &o_cases, &o_hung, &o_spin))
		o_hung = 1;

	(void)kill(-restarter, SIGKILL);
	(void)waitpid(restarter, NULL, 0);
	{
		char cmd[400];

		(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		(void)system(cmd);
	}
	printf("unsafe pattern (one-shot socket closed with a reply due): %ld cases, %ld hung "
	       "in nng_close (> %d ms), %ld with the poller spinning afterwards (max %ld.%ld%% "
	       "of a core)\n",
	    u_cases, u_hangs, CLOSE_BOUND_MS, u_spins, u_max_spin / 10, u_max_spin % 10);
	printf("our pattern (long-lived socket, pooled contexts, no close with a reply due): %ld "
	       "cases, %d hung, poller CPU %ld.%ld%% of a core over the run\n",
	    o_cases, o_hung, o_spin / 10, o_spin % 10);
	ok = o_hung == 0 && o_cases >= ours_cases && o_spin < SPIN_CPU_PERMILLE / 5;
	if (unsafe_seconds > 0 && u_hangs == 0) {
		printf("the unsafe pattern never hung: this run cannot tell a fix from luck\n");
		ok = false;
	}
	return ok ? 0 : 1;
}
