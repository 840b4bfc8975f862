/*
 * test_drain.c: SIGTERM while many clients are mid-request, repeatedly. The server must
 * exit 0 (no crash, no hang, nothing reported by the sanitizers in their builds), and every
 * persistent create it acknowledged must be there after a restart.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "secretd.h"

#define ROUNDS 6
#define THREADS 16
#define PER_THREAD 400

static struct server_proc srv;

struct writer {
	int round;
	int id;
	int acked; /* creates 0..acked-1 were acknowledged */
	secretd_client *c;
};

static void *
writer_main(void *p)
{
	struct writer *w = p;

	for (int i = 0; i < PER_THREAD; i++) {
		char name[64];
		secretd_field f = {"api_key", name, 0};
		secretd_create_args a = {.name = name,
		    .type = "openai",
		    .fields = &f,
		    .n_fields = 1,
		    .persistent = (i % 2) == 0};

		(void)snprintf(name, sizeof(name), "d%d-%d-%d", w->round, w->id, i);
		f.value_len = strlen(name);
		if (secretd_create(w->c, &a, 1000, NULL, NULL) != SECRETD_OK)
			break;
		w->acked = i + 1;
	}
	return NULL;
}

int
main(void)
{
	struct writer w[THREADS];
	pthread_t th[THREADS];
	long acked_total = 0, verified = 0;

	if (!harness_init(&srv))
		return 1;
	srv.extra[0] = "--log-level";
	srv.extra[1] = "warn";
	for (int round = 0; round < ROUNDS; round++) {
		secretd_client *c = NULL;

		CHECK(harness_start(&srv, NULL));
		CHECK_STATUS(secretd_client_open(srv.url, NULL, &c, NULL), SECRETD_OK);
		for (int t = 0; t < THREADS; t++) {
			w[t] = (struct writer){round, t, 0, c};
			CHECK(pthread_create(&th[t], NULL, writer_main, &w[t]) == 0);
		}
		usleep(50000 + (useconds_t)(rand() % 150000));
		CHECK_STATUS(harness_stop(&srv), 0);
		for (int t = 0; t < THREADS; t++)
			(void)pthread_join(th[t], NULL);
		secretd_client_close(c);
		c = NULL;
		/* Every acknowledged persistent create survived the shutdown. */
		CHECK(harness_start(&srv, NULL));
		CHECK_STATUS(secretd_client_open(srv.url, NULL, &c, NULL), SECRETD_OK);
		for (int t = 0; t < THREADS; t++) {
			acked_total += w[t].acked;
			for (int i = 0; i < w[t].acked; i += 2) {
				char name[64];
				secretd_secret *s = NULL;

				(void)snprintf(name, sizeof(name), "d%d-%d-%d", round, t, i);
				CHECK_STATUS(
				    secretd_get(c, name, SECRETD_STORAGE_SQLCIPHER, 5000, &s, NULL),
				    SECRETD_OK);
				CHECK(s != NULL && strcmp(s->fields[0].value, name) == 0);
				secretd_secret_free(s);
				verified++;
			}
		}
		secretd_client_close(c);
		CHECK_STATUS(harness_stop(&srv), 0);
	}
	fprintf(stderr,
	    "%d SIGTERM rounds under load: %ld creates acknowledged, %ld persistent "
	    "ones verified after restart\n",
	    ROUNDS, acked_total, verified);
	CHECK(acked_total > 0);
	harness_cleanup(&srv);
	return check_report();
}
