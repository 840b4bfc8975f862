/*
 * proc.c: processes and files for the benchmark. See proc.h.
 */
/* nftw needs X/Open 500+; _DEFAULT_SOURCE (from meson) keeps the rest visible. */
#define _XOPEN_SOURCE 700

#include "proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"
#include "path.h"

extern char **environ;

int
proc_tmpdir(char *buf, size_t len)
{
	const char *base = getenv("TMPDIR");
	int n;

	if (base == NULL || base[0] != '/')
		base = "/tmp";
	n = snprintf(buf, len, "%s/secretd-bench.XXXXXX", base);
	if (n < 0 || (size_t)n >= len)
		return -1;
	return mkdtemp(buf) != NULL ? 0 : -1;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

void
proc_rmtree(const char *dir)
{
	(void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
proc_spawn(char *const argv[], const char *log_path, pid_t *pidp)
{
	posix_spawn_file_actions_t fa;
	int rv;

	if ((rv = posix_spawn_file_actions_init(&fa)) != 0) {
		errno = rv;
		return -1;
	}
	rv = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	if (rv == 0)
		rv = posix_spawn_file_actions_addopen(
		    &fa, STDOUT_FILENO, log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (rv == 0)
		rv = posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
	if (rv == 0)
		rv = posix_spawnp(pidp, argv[0], &fa, NULL, argv, environ);
	(void)posix_spawn_file_actions_destroy(&fa);
	if (rv != 0) {
		errno = rv;
		return -1;
	}
	return 0;
}

bool
proc_exited(pid_t pid, int *statusp)
{
	return waitpid(pid, statusp, WNOHANG) == pid;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int
proc_stop(pid_t pid, double timeout_s, int *statusp)
{
	long waited_ms = 0;

	*statusp = 0;
	if (kill(pid, SIGTERM) != 0 && errno != ESRCH)
		return -1;
	while (!proc_exited(pid, statusp)) {
		if ((double)waited_ms / 1000.0 >= timeout_s) {
			(void)kill(pid, SIGKILL);
			(void)waitpid(pid, statusp, 0);
			return -1;
		}
		sleep_ms(5);
		waited_ms += 5;
	}
	return WIFEXITED(*statusp) && WEXITSTATUS(*statusp) == 0 ? 0 : -1;
}

const char *
proc_status_str(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		(void)snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		(void)snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		(void)snprintf(buf, len, "wait status %#x", (unsigned)status);
	return buf;
}

long
proc_rss_kib(pid_t pid)
{
	char path[64];
	char line[256];
	FILE *f;
	long kib = -1;

	(void)snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kib = strtol(line + 6, NULL, 10);
			break;
		}
	}
	(void)fclose(f);
	return kib;
}

int
proc_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port = -1;

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	(void)close(fd);
	return port;
}

int
proc_random_token(char *buf, size_t len)
{
	unsigned char raw[16];

	if (len < 2 * sizeof(raw) + 1 || getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -1;
	sd_hex_encode(raw, sizeof(raw), buf);
	buf[2 * sizeof(raw)] = '\0';
	return 0;
}

int
proc_write_tokens(const char *path, const char *id, const char *token)
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	FILE *f = NULL;
	int fd;
	int rc = -1;

	(void)SHA256((const unsigned char *)token, strlen(token), h);
	sd_hex_encode(h, sizeof(h), hex);
	hex[2 * sizeof(h)] = '\0';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (f == NULL) {
		(void)close(fd);
		return -1;
	}
	if (fprintf(f, "admin %s %s\n", id, hex) > 0)
		rc = 0;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

void
proc_log_tail(const char *path, FILE *out, int lines)
{
	char buf[16384];
	FILE *f = fopen(path, "r");
	size_t n;
	long start;
	int seen = 0;
	long i;

	if (f == NULL)
		return;
	if (fseek(f, 0, SEEK_END) == 0) {
		long size = ftell(f);

		start = size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0;
		if (fseek(f, start, SEEK_SET) != 0)
			start = 0;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	(void)fclose(f);
	buf[n] = '\0';
	for (i = (long)n - 1; i > 0; i--)
		if (buf[i - 1] == '\n' && ++seen > lines)
			break;
	(void)fprintf(out, "---- last lines of %s ----\n%s", path, buf + (i > 0 ? i : 0));
	if (n > 0 && buf[n - 1] != '\n')
		(void)fputc('\n', out);
	(void)fprintf(out, "----\n");
}

int
proc_self_dir(char *buf, size_t len)
{
	char exe[SD_PATH_BUF];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0 || (size_t)n >= sizeof(exe) - 1)
		return -1;
	exe[n] = '\0';
	return sd_path_dir(exe, buf, len) ? 0 : -1;
}
