/*
 * test_crash.c: crash safety (SPEC sections 2 and 7). Writer processes create, replace and
 * drop persistent secrets while secretd is killed with SIGKILL at a random moment; after a
 * restart every acknowledged Create must be there with its value, every acknowledged Drop
 * gone, and an operation in flight at the kill either whole or absent, never a mix. The
 * database left by each kill (with its WAL) and the database after each clean stop must pass
 * PRAGMA integrity_check in the sqlcipher shell.
 *
 * How the truth is known: every writer thread owns its own names and logs, with one
 * write(2) per line, an intent line before each call and an acknowledgement line after its
 * reply. Only secretd is killed while the writers run; the writers are killed after it, so
 * a reply they got but did not log counts as unacknowledged, which only widens what is
 * allowed. A thread that sees the server go away stops calling, so at most its last
 * operation is unacknowledged, and a timed-out request can never land after a later one.
 *
 * Not thread-safe beyond that: the parent's model lives in the main thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "harness.h"
#include "secretd.h"

#define ROUNDS 24
#define PROCS 3
#define THREADS 2
#define N_THREADS (PROCS * THREADS)
#define NAMES 12 /* per writer thread */
#define N_NAMES (N_THREADS * NAMES)
#define MAX_CAND 8
#define WRITER_MAX_MS 30000
#define CALL_TIMEOUT_MS 5000
#define VALUE_MAX 4096

static struct server_proc srv;

/* One possible state of a name: absent, or the value written by (round, seq). */
struct state {
	bool present;
	int round;
	int seq;
};

/* What a name may hold now: exactly one state after a verification, more while an
 * unacknowledged operation is folded in. */
struct name_model {
	struct state cand[MAX_CAND];
	int n;
};

static struct name_model model[N_NAMES];

/* Totals for the closing note. */
static long acked_ops, unacked_ops, unacked_applied, names_verified, lost, wrong;
/* Reads after a restart that found no connection and were made again (see verify_names). */
static long redials;
static long contradictions, integrity_runs;

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static uint32_t
fnv(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static void
name_of(int idx, char *buf, size_t len)
{
	(void)snprintf(buf, len, "crash-%d-%02d", idx / NAMES, idx % NAMES);
}

/* The api_key written by (name, round, seq): a distinctive prefix and a filler of a
 * length that depends on all three, so pages of many sizes are written. */
static void
value_of(const char *name, int round, int seq, char *buf, size_t len)
{
	int n = snprintf(buf, len, "cv:%s:%d:%d:", name, round, seq);
	uint32_t h = fnv(buf);
	size_t fill = h % 3000;

	for (size_t i = 0; i < fill && (size_t)n + i + 1 < len; i++)
		buf[(size_t)n + i] = (char)('a' + (h + i) % 26);
	buf[(size_t)n + fill < len ? (size_t)n + fill : len - 1] = '\0';
}

static void
base_url_of(int round, int seq, char *buf, size_t len)
{
	(void)snprintf(buf, len, "http://b/%d/%d", round, seq);
}

/* Append one line to fd with a single write(2). */
static void log_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
log_line(int fd, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(buf) && write(fd, buf, (size_t)n) != n)
		fprintf(stderr, "writer: log write failed: %s\n", strerror(errno));
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	(void)nanosleep(&ts, NULL);
}

/* ---- writer processes ---- */

struct writer {
	secretd_client *c;
	const char *logdir;
	int round;
	int thread; /* global thread index */
	uint64_t seed;
};

static void *
writer_main(void *p)
{
	struct writer *w = p;
	char path[512];
	uint64_t rng = w->seed ^ ((uint64_t)w->thread * 0x9e3779b97f4a7c15ull) ^ 1;
	uint64_t start = sd_now_ms();
	int fd;

	(void)snprintf(path, sizeof(path), "%s/w%d.log", w->logdir, w->thread);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	for (int seq = 1; sd_now_ms() - start < WRITER_MAX_MS; seq++) {
		int idx = w->thread * NAMES + (int)(rng_next(&rng) % NAMES);
		int r = (int)(rng_next(&rng) % 100);
		char op = r < 30 ? 'C' : r < 60 ? 'R' : r < 70 ? 'G' : r < 90 ? 'D' : 'E';
		char name[64], value[VALUE_MAX], base[64];
		secretd_status st;
		int flag = 0;

		name_of(idx, name, sizeof(name));
		log_line(fd, "I %s %d %c\n", name, seq, op);
		if (op == 'D' || op == 'E') {
			secretd_drop_result d;

			st = secretd_drop(w->c, name, SECRETD_STORAGE_SQLCIPHER, op == 'E',
			    CALL_TIMEOUT_MS, &d, NULL);
			flag = st == SECRETD_OK && d.dropped;
		} else {
			secretd_field f[2];
			secretd_create_args a = {.name = name,
			    .type = "openai",
			    .fields = f,
			    .n_fields = 2,
			    .persistent = true};
			secretd_create_result cr;

			value_of(name, w->round, seq, value, sizeof(value));
			base_url_of(w->round, seq, base, sizeof(base));
			f[0] = (secretd_field){"api_key", value, strlen(value)};
			f[1] = (secretd_field){"base_url", base, strlen(base)};
			a.on_conflict = op == 'C'   ? SECRETD_CONFLICT_ERROR
			                : op == 'R' ? SECRETD_CONFLICT_REPLACE
			                            : SECRETD_CONFLICT_IGNORE;
			st = secretd_create(w->c, &a, CALL_TIMEOUT_MS, &cr, NULL);
			flag = st == SECRETD_OK && cr.created;
		}
		if (st == SECRETD_UNAVAILABLE || st == SECRETD_DEADLINE_EXCEEDED ||
		    st == SECRETD_CANCELLED) {
			/* The server is going away: call no more, so nothing unacknowledged can
			 * land after something acknowledged. Wait to be killed. */
			while (sd_now_ms() - start < WRITER_MAX_MS)
				sleep_ms(50);
			break;
		}
		log_line(fd, "A %s %d %d %d\n", name, seq, (int)st, flag);
	}
	(void)close(fd);
	return NULL;
}

/* test_crash --writer URL LOGDIR ROUND FIRST_THREAD SEED */
static int
writer_process(char **argv)
{
	struct writer w[THREADS];
	pthread_t th[THREADS];
	secretd_client *c = NULL;
	int started = 0;

	if (secretd_client_open(argv[2], NULL, &c, NULL) != SECRETD_OK)
		return 1;
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct writer){
		    c, argv[3], atoi(argv[4]), atoi(argv[5]) + i, strtoull(argv[6], NULL, 10)};
		if (pthread_create(&th[i], NULL, writer_main, &w[i]) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++)
		(void)pthread_join(th[i], NULL);
	secretd_client_close(c);
	return started == THREADS ? 0 : 1;
}

/* ---- the model ---- */

static struct state
apply_op(struct state s, char op, int round, int seq)
{
	struct state next = {true, round, seq};

	switch (op) {
	case 'C':
	case 'G':
		return s.present ? s : next;
	case 'R':
		return next;
	default: /* D, E */
		return (struct state){false, 0, 0};
	}
}

static bool
state_eq(struct state a, struct state b)
{
	return a.present == b.present && (!a.present || (a.round == b.round && a.seq == b.seq));
}

static void
cand_add(struct name_model *m, struct state s)
{
	for (int i = 0; i < m->n; i++)
		if (state_eq(m->cand[i], s))
			return;
	if (m->n < MAX_CAND)
		m->cand[m->n++] = s;
}

/* Keep only the candidates whose presence is want; a reply that contradicts every
 * candidate is a server bug (it answered as if the state were otherwise). */
static void
cand_require(struct name_model *m, bool want, const char *name, int seq)
{
	int k = 0;

	for (int i = 0; i < m->n; i++)
		if (m->cand[i].present == want)
			m->cand[k++] = m->cand[i];
	if (k == 0) {
		contradictions++;
		fprintf(stderr, "%s seq %d: reply says %s, the model says otherwise\n", name, seq,
		    want ? "present" : "absent");
		CHECK(k > 0);
		m->cand[k++] = (struct state){want, -1, -1};
	}
	m->n = k;
}

static void
cand_set(struct name_model *m, struct state s)
{
	m->cand[0] = s;
	m->n = 1;
}

static void
fold_ack(struct name_model *m, const char *name, char op, int round, int seq, int st, int flag)
{
	struct state next = {true, round, seq};

	acked_ops++;
	switch (op) {
	case 'C':
		if (st == SECRETD_OK) {
			cand_require(m, false, name, seq);
			cand_set(m, next);
			return;
		}
		if (st == SECRETD_ALREADY_EXISTS) {
			cand_require(m, true, name, seq);
			return;
		}
		break;
	case 'R':
		if (st == SECRETD_OK) {
			cand_set(m, next);
			return;
		}
		break;
	case 'G':
		if (st == SECRETD_OK) {
			cand_require(m, !flag, name, seq);
			if (flag)
				cand_set(m, next);
			return;
		}
		break;
	case 'D':
		if (st == SECRETD_OK || st == SECRETD_NOT_FOUND) {
			cand_require(m, st == SECRETD_OK, name, seq);
			cand_set(m, (struct state){false, 0, 0});
			return;
		}
		break;
	case 'E':
		if (st == SECRETD_OK) {
			cand_require(m, flag, name, seq);
			cand_set(m, (struct state){false, 0, 0});
			return;
		}
		break;
	default:
		break;
	}
	/* Any other answer must have changed nothing; it is not expected here at all. */
	fprintf(stderr, "%s seq %d op %c: unexpected status %s\n", name, seq, op,
	    secretd_status_str((secretd_status)st));
	CHECK(!"unexpected status from a writer call");
}

static void
fold_unacked(struct name_model *m, char op, int round, int seq)
{
	int n = m->n;

	unacked_ops++;
	for (int i = 0; i < n; i++)
		cand_add(m, apply_op(m->cand[i], op, round, seq));
}

static int
name_index(const char *name)
{
	int t = -1, k = -1;

	if (sscanf(name, "crash-%d-%d", &t, &k) != 2 || t < 0 || t >= N_THREADS || k < 0 ||
	    k >= NAMES)
		return -1;
	return t * NAMES + k;
}

/* Fold one writer thread's log into the model. Returns the last unacknowledged op's name
 * index (or -1) and its state before, to tell later whether it was applied. */
static void
fold_log(const char *path, int round, int *pending_idxp, struct name_model *beforep,
    struct state *afterp)
{
	char *text = file_read(path, NULL);
	char *save = NULL;
	char pname[64] = "";
	char pop = 0;
	int pseq = -1;

	*pending_idxp = -1;
	if (text == NULL)
		return; /* the writer was killed before it opened its log */
	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[64], op;
		int seq, st, flag, idx;

		if (sscanf(line, "I %63s %d %c", name, &seq, &op) == 3) {
			if (pop != 0) /* the previous op got no answer it could log */
				CHECK(!"an intent without an answer before another intent");
			(void)snprintf(pname, sizeof(pname), "%s", name);
			pseq = seq;
			pop = op;
			continue;
		}
		if (sscanf(line, "A %63s %d %d %d", name, &seq, &st, &flag) == 4 && pop != 0 &&
		    strcmp(name, pname) == 0 && seq == pseq && (idx = name_index(name)) >= 0) {
			fold_ack(&model[idx], name, pop, round, seq, st, flag);
			pop = 0;
			continue;
		}
		fprintf(stderr, "%s: bad log line '%s'\n", path, line);
		CHECK(!"bad writer log line");
	}
	if (pop != 0 && name_index(pname) >= 0) {
		int idx = name_index(pname);

		*pending_idxp = idx;
		*beforep = model[idx];
		fold_unacked(&model[idx], pop, round, pseq);
		*afterp = apply_op(beforep->cand[0], pop, round, pseq);
	}
	free(text);
}

/* ---- verification ---- */

static bool
secret_is(const secretd_secret *s, const char *name, struct state st)
{
	char want[VALUE_MAX], base[64];
	const secretd_field *k = secretd_secret_field(s, "api_key");
	const secretd_field *b = secretd_secret_field(s, "base_url");

	value_of(name, st.round, st.seq, want, sizeof(want));
	base_url_of(st.round, st.seq, base, sizeof(base));
	return strcmp(s->type, "openai") == 0 && s->n_fields == 2 && k != NULL && b != NULL &&
	       k->value_len == strlen(want) && memcmp(k->value, want, k->value_len) == 0 &&
	       strcmp(b->value, base) == 0;
}

/* Get every name and narrow its model to what is there. Returns how many are present. */
static long
verify_names(secretd_client *c)
{
	long present = 0;

	for (int idx = 0; idx < N_NAMES; idx++) {
		struct name_model *m = &model[idx];
		secretd_secret *s = NULL;
		secretd_status st;
		char name[64];
		int match = -1;

		name_of(idx, name, sizeof(name));
		st = secretd_get(c, name, SECRETD_STORAGE_SQLCIPHER, CALL_TIMEOUT_MS, &s, NULL);
		if (st == SECRETD_UNAVAILABLE) {
			/* nng 1.5.2's dialer can give up for good when the server it was shaking
			 * hands with is SIGKILLed (tests/README.md, "nng 1.5.2"); libsecretd then
			 * redials after a call that found no connection. One more try is that
			 * redial at work, not a second acceptable answer; counted and printed.
			 * (Redialling before the first call is the open work.) */
			redials++;
			st = secretd_get(c, name, SECRETD_STORAGE_SQLCIPHER, CALL_TIMEOUT_MS, &s, NULL);
		}
		CHECK(st == SECRETD_OK || st == SECRETD_NOT_FOUND);
		for (int i = 0; i < m->n && match < 0; i++) {
			if (st == SECRETD_NOT_FOUND && !m->cand[i].present)
				match = i;
			else if (st == SECRETD_OK && s != NULL && m->cand[i].present &&
			         secret_is(s, name, m->cand[i]))
				match = i;
		}
		names_verified++;
		if (match < 0) {
			bool all_present = true;

			for (int i = 0; i < m->n; i++)
				all_present = all_present && m->cand[i].present;
			if (st == SECRETD_NOT_FOUND && all_present)
				lost++;
			else
				wrong++;
			fprintf(stderr, "%s: %s is not any state allowed (%d candidates)\n", name,
			    st == SECRETD_OK ? "the value found" : secretd_status_str(st), m->n);
			CHECK(match >= 0);
			cand_set(m, (struct state){st == SECRETD_OK, -1, -1});
		} else {
			cand_set(m, m->cand[match]);
		}
		present += m->cand[0].present;
		secretd_secret_free(s);
	}
	return present;
}

/* List agrees with the model: exactly the present names, each once, in sqlcipher. */
static void
verify_list(secretd_client *c, long present)
{
	secretd_list_args la = {.storage = SECRETD_STORAGE_SQLCIPHER};
	secretd_rows *rows = NULL;

	CHECK_STATUS(secretd_list(c, &la, CALL_TIMEOUT_MS, &rows, NULL), SECRETD_OK);
	if (rows == NULL)
		return;
	CHECK_STATUS(rows->n_rows, present);
	for (size_t i = 0; i < rows->n_rows; i++) {
		int idx = name_index(rows->rows[i].name);

		CHECK(idx >= 0 && model[idx].cand[0].present);
		CHECK_STR(rows->rows[i].storage, "sqlcipher");
	}
	secretd_rows_free(rows);
}

static bool
copy_file(const char *from, const char *to)
{
	size_t n = 0;
	char *buf = file_read(from, &n);
	FILE *f;
	bool ok;

	if (buf == NULL)
		return false;
	f = fopen(to, "wb");
	ok = f != NULL && fwrite(buf, 1, n, f) == n;
	if (f != NULL && fclose(f) != 0)
		ok = false;
	free(buf);
	return ok;
}

/*
 * Copy the database (and its WAL when there is one) to a scratch directory and run
 * PRAGMA integrity_check and a row count in the sqlcipher shell there, so the shell's
 * WAL recovery never touches the server's files. Returns the row count, or -1.
 */
static long
integrity_check(const char *what)
{
	char db[400], wal[400], cdb[400], cwal[400], cshm[400], script[400], out[256], err[512];
	const char *argv[] = {"sqlcipher", cdb, NULL};
	char *key = NULL;
	long count = -1;
	int rc;

	(void)snprintf(db, sizeof(db), "%s/secrets.db", srv.data_dir);
	(void)snprintf(wal, sizeof(wal), "%s/secrets.db-wal", srv.data_dir);
	(void)snprintf(cdb, sizeof(cdb), "%s/check.db", srv.dir);
	(void)snprintf(cwal, sizeof(cwal), "%s/check.db-wal", srv.dir);
	(void)snprintf(cshm, sizeof(cshm), "%s/check.db-shm", srv.dir);
	(void)unlink(cwal);
	(void)unlink(cshm);
	(void)snprintf(script, sizeof(script), "%s/secretd.key", srv.data_dir);
	key = file_read(script, NULL);
	CHECK(key != NULL && strlen(key) >= 64);
	CHECK(copy_file(db, cdb));
	if (access(wal, F_OK) == 0)
		CHECK(copy_file(wal, cwal));
	if (key == NULL || strlen(key) < 64)
		goto done;
	(void)snprintf(script, sizeof(script),
	    "PRAGMA key = \"x'%.64s'\";\nPRAGMA cipher_page_size = 4096;\n"
	    "PRAGMA integrity_check;\nSELECT 'rows', count(*) FROM secrets;\n",
	    key);
	rc = run_capture(argv, script, out, sizeof(out), err, sizeof(err));
	explicit_bzero(script, sizeof(script));
	integrity_runs++;
	CHECK_STATUS(rc, 0);
	if (strncmp(out, "ok\n", 3) != 0 || sscanf(out + 3, "rows|%ld", &count) != 1) {
		fprintf(stderr, "integrity_check (%s): '%s' '%s'\n", what, out, err);
		CHECK(!"integrity_check is not ok");
		count = -1;
	}
done:
	if (key != NULL) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	return count;
}

/* Spawn the writer processes of one round (re-executed: nng does not survive fork). */
static void
spawn_writers(pid_t *pids, const char *logdir, int round, uint64_t seed)
{
	for (int p = 0; p < PROCS; p++) {
		char r[16], first[16], sd[32];

		(void)snprintf(r, sizeof(r), "%d", round);
		(void)snprintf(first, sizeof(first), "%d", p * THREADS);
		(void)snprintf(sd, sizeof(sd), "%llu", (unsigned long long)(seed + (uint64_t)p));
		pids[p] = fork();
		if (pids[p] == 0) {
			execl("/proc/self/exe", "test_crash", "--writer", srv.url, logdir, r, first,
			    sd, (char *)NULL);
			_exit(127);
		}
		CHECK(pids[p] > 0);
	}
}

static void
reap_writers(pid_t *pids)
{
	for (int p = 0; p < PROCS; p++) {
		int st = 0;

		if (pids[p] <= 0)
			continue;
		(void)kill(pids[p], SIGKILL);
		CHECK(waitpid(pids[p], &st, 0) == pids[p]);
		/* Killed by us, or finished on its own: anything else is a writer failure. */
		CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ||
		      (WIFEXITED(st) && WEXITSTATUS(st) == 0));
	}
}

static void
run_round(int round, uint64_t *rng, const char *logdir)
{
	pid_t pids[PROCS];
	long copied_rows, present;
	int pending[N_THREADS];
	struct name_model before[N_THREADS];
	struct state after[N_THREADS];
	secretd_client *c = NULL;
	long run_ms = 100 + (long)(rng_next(rng) % 501);

	spawn_writers(pids, logdir, round, rng_next(rng));
	/* The random moment is counted from when every writer thread has had a call
	 * acknowledged (polled, with a deadline), so a slow start never makes a round that
	 * kills before anything was written. */
	for (uint64_t deadline = sd_now_ms() + 30000;;) {
		int ready = 0;

		for (int t = 0; t < N_THREADS; t++) {
			char path[512];

			(void)snprintf(path, sizeof(path), "%s/w%d.log", logdir, t);
			ready += file_contains(path, "\nA ", 3);
		}
		if (ready == N_THREADS)
			break;
		if (sd_now_ms() > deadline) {
			fprintf(stderr, "round %d: only %d of %d writers acknowledged in 30 s\n",
			    round, ready, N_THREADS);
			CHECK(false);
			break;
		}
		sleep_ms(5);
	}
	sleep_ms(run_ms);
	harness_kill(&srv);
	reap_writers(pids);
	copied_rows = integrity_check("after SIGKILL");
	CHECK(harness_start(&srv, NULL));
	for (int t = 0; t < N_THREADS; t++) {
		char path[512];

		(void)snprintf(path, sizeof(path), "%s/w%d.log", logdir, t);
		fold_log(path, round, &pending[t], &before[t], &after[t]);
		(void)unlink(path);
	}
	CHECK_STATUS(secretd_client_open(srv.url, NULL, &c, NULL), SECRETD_OK);
	present = verify_names(c);
	verify_list(c, present);
	secretd_client_close(c);
	CHECK_STATUS(copied_rows, present);
	for (int t = 0; t < N_THREADS; t++) {
		const struct name_model *m;

		if (pending[t] < 0)
			continue;
		m = &model[pending[t]];
		/* Applied: the state is the op's result and differs from the one before. */
		if (before[t].n == 1 && state_eq(m->cand[0], after[t]) &&
		    !state_eq(before[t].cand[0], after[t]))
			unacked_applied++;
	}
	if (round % 6 == 5 || round == ROUNDS - 1) {
		CHECK_STATUS(harness_stop(&srv), 0);
		CHECK_STATUS(integrity_check("after a clean stop"), present);
		CHECK(harness_start(&srv, NULL));
	}
}

int
main(int argc, char **argv)
{
	char logdir[400];
	uint64_t rng = (uint64_t)time(NULL) * 2654435761u + (uint64_t)getpid();
	uint64_t t0 = sd_now_ms();

	if (argc == 7 && strcmp(argv[1], "--writer") == 0)
		return writer_process(argv);
	if (getenv("SECRETD_TEST_SEED") != NULL)
		rng = strtoull(getenv("SECRETD_TEST_SEED"), NULL, 10);
	if (rng == 0)
		rng = 1;
	fprintf(stderr, "seed %llu (SECRETD_TEST_SEED to repeat)\n", (unsigned long long)rng);
	for (int i = 0; i < N_NAMES; i++)
		cand_set(&model[i], (struct state){false, 0, 0});
	if (!harness_init(&srv) || !harness_start(&srv, NULL)) {
		fprintf(stderr, "cannot start secretd (log: %s)\n", srv.log_path);
		return 1;
	}
	(void)snprintf(logdir, sizeof(logdir), "%s/logs", srv.dir);
	CHECK(mkdir(logdir, 0700) == 0);
	for (int round = 0; round < ROUNDS; round++) {
		run_round(round, &rng, logdir);
		if (srv.pid <= 0) {
			fprintf(stderr, "secretd did not come back after round %d (log: %s)\n",
			    round, srv.log_path);
			CHECK(srv.pid > 0);
			break;
		}
	}
	CHECK_STATUS(harness_stop(&srv), 0);
	fprintf(stderr,
	    "crash: %d rounds (SIGKILL each), %ld acknowledged ops, %ld in flight at a kill "
	    "(%ld of them applied whole, the rest absent whole), %ld name checks, %ld integrity "
	    "checks ok, lost %ld, wrong %ld, contradictions %ld, reads redialled %ld, %.1f s\n",
	    ROUNDS, acked_ops, unacked_ops, unacked_applied, names_verified, integrity_runs, lost,
	    wrong, contradictions, redials, (double)(sd_now_ms() - t0) / 1000.0);
	CHECK_STATUS(lost, 0);
	CHECK_STATUS(wrong, 0);
	if (check_failures_ == 0)
		harness_cleanup(&srv);
	else
		fprintf(stderr, "kept %s for inspection\n", srv.dir);
	return check_report();
}
