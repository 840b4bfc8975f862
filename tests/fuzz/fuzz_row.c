/*
 * fuzz_row.c: fuzz target for the sqlcipher backend's row decoder (store_row_decode), the
 * only code in store/ that parses bytes it did not write in this process (a row body read
 * back from the database file).
 *
 * Invariants checked: anything malformed is STORE_CORRUPT (or STORE_NO_MEMORY), never a
 * crash or a read past the input; a decoded secret encodes again (store_row_encode) into a
 * body that decodes to the same secret and encodes to the same bytes (encode(decode(x)) is
 * a fixed point) of the input's length (decoding may only reorder the fields).
 *
 * What it does not do: no database, no key (the cipher layer is SQLCipher's).
 *
 * Thread safety: none; one fuzzing thread.
 */
#include <string.h>

#include "fuzz.h"
#include "row.h"
#include "store.h"

/* Whether two secrets hold the same scope list and fields. */
static bool
same_secret(const struct store_secret *a, const struct store_secret *b)
{
	if (strcmp(a->name, b->name) != 0 || strcmp(a->type, b->type) != 0 ||
	    a->n_scope != b->n_scope || a->n_fields != b->n_fields)
		return false;
	for (size_t i = 0; i < a->n_scope; i++)
		if (strcmp(a->scope[i], b->scope[i]) != 0)
			return false;
	for (size_t i = 0; i < a->n_fields; i++) {
		const struct store_field *fa = &a->fields[i];
		const struct store_field *fb = &b->fields[i];

		if (strcmp(fa->key, fb->key) != 0 || fa->value_len != fb->value_len ||
		    (fa->value_len > 0 && memcmp(fa->value, fb->value, fa->value_len) != 0))
			return false;
	}
	return true;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_secret *s1 = NULL;
	struct store_secret *s2 = NULL;
	uint8_t *e1 = NULL;
	uint8_t *e2 = NULL;
	size_t n1 = 0;
	size_t n2 = 0;
	store_status rc;

	rc = store_row_decode(data, size, "fuzz", "openai", &s1);
	if (rc != STORE_OK) {
		FUZZ_CHECK(rc == STORE_CORRUPT || rc == STORE_NO_MEMORY);
		FUZZ_CHECK(s1 == NULL);
		goto done;
	}
	FUZZ_CHECK(s1 != NULL);
	/* Fields come back sorted by key, so that lookups may bisect. */
	for (size_t i = 1; i < s1->n_fields; i++)
		FUZZ_CHECK(strcmp(s1->fields[i - 1].key, s1->fields[i].key) <= 0);
	FUZZ_CHECK(store_row_encode(s1, &e1, &n1) == STORE_OK);
	FUZZ_CHECK(store_row_decode(e1, n1, "fuzz", "openai", &s2) == STORE_OK);
	FUZZ_CHECK(same_secret(s1, s2));
	FUZZ_CHECK(store_row_encode(s2, &e2, &n2) == STORE_OK);
	FUZZ_CHECK(n1 == n2 && memcmp(e1, e2, n1) == 0);
	/* Only the order of fields may change: the body has the input's length. */
	FUZZ_CHECK(n1 == size);
done:
	store_row_free(e2, n2);
	store_row_free(e1, n1);
	store_secret_free(s2);
	store_secret_free(s1);
	return 0;
}
