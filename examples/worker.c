/*
 * worker.c: what one worker of an analytics job does with libsecretd. It opens a client,
 * asks secretd which secret applies to the model it is about to call (Resolve, the same
 * choice as FROM which_secret(path, type)), uses the key to build the request's
 * Authorization header, and frees everything, wiping the key.
 *
 *   cc worker.c $(pkg-config --cflags --libs secretd) -o worker
 *   SECRETD_ADDR=ipc:///run/secretd/secretd.sock SECRETD_TOKEN=... ./worker openai://gpt-4o
 *
 * It needs nothing but the installed <secretd.h> and secretd.pc. The server is
 * $SECRETD_ADDR (default: the per-user socket), the token $SECRETD_TOKEN (none: an ipc peer
 * with the server's uid). It prints what it found, never a value.
 *
 * Not here: the HTTP call itself (any client library would do; this worker stops at the
 * header). Thread safety: one thread; a secretd_client may be shared by many.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1 /* explicit_bzero */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretd.h>

/* Checked when it is compiled: the header's version macros (secretd_version.h). */
#if SECRETD_VERSION_NUMBER < 1000
#error "this worker needs libsecretd 0.1.0 or later"
#endif

/* The Authorization header of a request to an OpenAI-compatible API, in a new buffer the
 * caller wipes and frees; NULL when out of memory. */
static char *
authorization_header(const secretd_field *api_key, size_t *sizep)
{
	static const char prefix[] = "Authorization: Bearer ";
	size_t size = sizeof(prefix) + api_key->value_len;
	char *h = malloc(size);

	if (h == NULL)
		return NULL;
	memcpy(h, prefix, sizeof(prefix) - 1);
	memcpy(h + sizeof(prefix) - 1, api_key->value, api_key->value_len + 1);
	*sizep = size;
	return h;
}

int
main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "openai://gpt-4o";
	const char *type = argc > 2 ? argv[2] : "openai";
	secretd_options opts = {.token = getenv("SECRETD_TOKEN")};
	secretd_client *client = NULL;
	secretd_secret *secret = NULL;
	const secretd_field *key;
	const secretd_field *base_url;
	secretd_error err;
	char *header = NULL;
	size_t header_size = 0;
	int rc = 1;

	if (secretd_client_open(getenv("SECRETD_ADDR"), &opts, &client, &err) != SECRETD_OK) {
		(void)fprintf(stderr, "worker: cannot open a client: %s: %s\n",
		    secretd_status_str(err.status), err.message);
		goto done;
	}
	if (secretd_resolve(client, path, type, 5000, &secret, &err) != SECRETD_OK) {
		(void)fprintf(stderr, "worker: resolve %s: %s: %s\n", path,
		    secretd_status_str(err.status), err.message);
		goto done;
	}
	if (secret == NULL) {
		(void)fprintf(stderr, "worker: no %s secret applies to %s\n", type, path);
		goto done;
	}
	key = secretd_secret_field(secret, "api_key");
	if (key == NULL) {
		(void)fprintf(stderr, "worker: secret %s has no api_key\n", secret->name);
		goto done;
	}
	header = authorization_header(key, &header_size);
	if (header == NULL) {
		(void)fprintf(stderr, "worker: out of memory\n");
		goto done;
	}
	base_url = secretd_secret_field(secret, "base_url");
	/* Here the worker would send its request with header; it reports the sizes only. */
	(void)printf("worker: %s uses secret %s (%s), an api_key of %zu bytes, base_url %s\n", path,
	    secret->name, secretd_storage_str(secret->storage), key->value_len,
	    base_url != NULL && base_url->value_len > 0 ? base_url->value : "(default)");
	rc = 0;
done:
	if (header != NULL) {
		explicit_bzero(header, header_size);
		free(header);
	}
	secretd_secret_free(secret); /* wipes the values */
	secretd_client_close(client);
	return rc;
}
