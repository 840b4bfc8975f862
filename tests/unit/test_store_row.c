/*
 * test_store_row.c: the sqlcipher backend's row encoding (row.c): a round trip, and
 * malformed rows (truncated, overlong, out of order, trailing bytes) refused as
 * STORE_CORRUPT, each decoded from an exact-size heap copy so a read past the end is
 * caught by ASan and valgrind.
 */
#include "store_fixture.h"

static store_status
decode_copy(const uint8_t *body, size_t len)
{
	/* An exact-size heap copy, so a read past len is caught by ASan and valgrind. */
	uint8_t *copy = malloc(len > 0 ? len : 1);
	struct store_secret *s = NULL;
	store_status rc;

	if (copy == NULL)
		return STORE_NO_MEMORY;
	if (len > 0)
		memcpy(copy, body, len);
	rc = store_row_decode(copy, len, "n", "t", &s);
	store_secret_free(s);
	free(copy);
	return rc;
}

static void
test_row_decoder(void)
{
	static const char *const scope[] = {"a://", ""};
	struct store_field fields[] = {
	    {.key = "k", .value = VALUE_BINARY, .value_len = sizeof(VALUE_BINARY)},
	    {.key = "e", .value = NULL, .value_len = 0},
	};
	static const uint8_t huge_count[] = {1, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0};
	static const uint8_t nul_inside[] = {1, 1, 0, 0, 0, 3, 0, 0, 0, 'a', 0, 'b', 0, 0, 0, 0};
	static const uint8_t no_nul[] = {1, 1, 0, 0, 0, 2, 0, 0, 0, 'a', 'b', 0, 0, 0, 0};
	static const uint8_t empty_ok[] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
	struct store_secret *s = NULL;
	struct store_secret *back = NULL;
	uint8_t *body = NULL;
	size_t len = 0;
	uint32_t rng = 7;
	int bad = 0;

	CHECK_STATUS(store_secret_new("n", "t", scope, 2, fields, 2, &s), STORE_OK);
	if (s == NULL)
		return;
	CHECK_STATUS(store_row_encode(s, &body, &len), STORE_OK);
	if (body == NULL)
		goto out;
	CHECK_STATUS(store_row_decode(body, len, "n", "t", &back), STORE_OK);
	if (back != NULL) {
		CHECK_STATUS(back->size, s->size);
		CHECK_STATUS(back->n_scope, 2);
		CHECK_STR(back->scope[1], "");
		CHECK(value_eq(back, "k", VALUE_BINARY, sizeof(VALUE_BINARY)));
		CHECK(value_eq(back, "e", "", 0));
	}
	store_secret_free(back);
	/* Every truncation is refused. */
	for (size_t i = 0; i < len; i++) {
		if (decode_copy(body, i) != STORE_CORRUPT)
			bad++;
	}
	CHECK_STATUS(bad, 0);
	/* A trailing byte, a bad version. */
	{
		uint8_t *longer = malloc(len + 1);

		if (longer != NULL) {
			memcpy(longer, body, len);
			longer[len] = 0;
			CHECK_STATUS(decode_copy(longer, len + 1), STORE_CORRUPT);
			longer[0] = 2;
			CHECK_STATUS(decode_copy(longer, len), STORE_CORRUPT);
			free(longer);
		}
	}
	/* Every single-byte change either decodes or is refused, never worse. */
	for (size_t i = 0; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			store_status rc;

			body[i] ^= (uint8_t)(1u << b);
			rc = decode_copy(body, len);
			body[i] ^= (uint8_t)(1u << b);
			if (rc != STORE_OK && rc != STORE_CORRUPT)
				bad++;
		}
	}
	CHECK_STATUS(bad, 0);
	/* Random garbage. */
	for (int round = 0; round < 2000; round++) {
		uint8_t junk[64];
		size_t n = lcg(&rng) % sizeof(junk);
		store_status rc;

		for (size_t i = 0; i < n; i++)
			junk[i] = (uint8_t)lcg(&rng);
		if (n > 0 && round % 2 == 0)
			junk[0] = STORE_ROW_VERSION;
		rc = decode_copy(junk, n);
		if (rc != STORE_OK && rc != STORE_CORRUPT)
			bad++;
	}
	CHECK_STATUS(bad, 0);
	CHECK_STATUS(decode_copy(huge_count, sizeof(huge_count)), STORE_CORRUPT);
	CHECK_STATUS(decode_copy(nul_inside, sizeof(nul_inside)), STORE_CORRUPT);
	CHECK_STATUS(decode_copy(no_nul, sizeof(no_nul)), STORE_CORRUPT);
	CHECK_STATUS(decode_copy(empty_ok, sizeof(empty_ok)), STORE_OK);
	CHECK_STATUS(store_row_decode(empty_ok, sizeof(empty_ok), NULL, "t", &back), STORE_CORRUPT);
	CHECK_STATUS(store_row_decode(NULL, 0, "n", "t", &back), STORE_CORRUPT);
out:
	store_row_free(body, len);
	store_secret_free(s);
}

int
main(void)
{
	test_row_decoder();
	return check_report();
}
