/*
 * fuzz_sql.c: fuzz target for the statement parser (sql_parse, SPEC section 3).
 *
 * The input is the statement text exactly as a client would send it: not NUL-terminated,
 * so that AddressSanitizer catches any read at or past its end. Invariants checked:
 *   - success fills exactly the member named by kind, which protobuf-c can pack and unpack
 *     again (every string and array it points at is whole);
 *   - failure is INVALID_ARGUMENT (SYNTAX or INVALID_STORAGE) or RESOURCE_EXHAUSTED, with
 *     a non-empty message that is valid UTF-8 (text frames put it into JSON);
 *   - the same text parses the same way twice (no hidden state).
 *
 * What it does not do: no handler semantics (fuzz_service.c runs statements end to end).
 *
 * Thread safety: none; one fuzzing thread.
 */
#include <string.h>

#include "arena.h"
#include "fuzz.h"
#include "sql.h"
#include "utf8.h"

static struct arena arena;

/* The message sql_parse filled for stmt's kind. */
static const ProtobufCMessage *
stmt_message(const struct sql_statement *stmt)
{
	switch (stmt->kind) {
	case SQL_CREATE:
		return &stmt->create.base;
	case SQL_DROP:
		return &stmt->drop.base;
	case SQL_LIST:
		return &stmt->list.base;
	case SQL_RESOLVE:
		return &stmt->resolve.base;
	case SQL_GET:
		return &stmt->get.base;
	}
	fuzz_fail("sql_parse returned ST_OK with an unknown kind");
	return NULL;
}

/* Pack m and unpack it again; abort when either fails. Returns the packed size. */
static size_t
round_trip(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n > 0 ? n : 1);
	ProtobufCMessage *back;

	FUZZ_CHECK(buf != NULL);
	FUZZ_CHECK(protobuf_c_message_pack(m, buf) == n);
	back = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
	FUZZ_CHECK(back != NULL);
	FUZZ_CHECK(protobuf_c_message_get_packed_size(back) == n);
	protobuf_c_message_free_unpacked(back, NULL);
	free(buf);
	return n;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	arena_init(&arena, 16384);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sql_statement stmt;
	struct outcome out;
	struct outcome out2;
	enum status st;
	enum status st2;
	enum sql_kind kind;
	size_t packed = 0;

	memset(&out, 0, sizeof(out));
	memset(&out2, 0, sizeof(out2));
	st = sql_parse((const char *)data, size, &arena, &stmt, &out);
	if (st == ST_OK) {
		kind = stmt.kind;
		packed = round_trip(stmt_message(&stmt));
	} else {
		FUZZ_CHECK(stmt.kind == 0);
		FUZZ_CHECK(out.status == st);
		FUZZ_CHECK(st == ST_INVALID_ARGUMENT || st == ST_RESOURCE_EXHAUSTED);
		FUZZ_CHECK(out.reason != NULL && out.reason[0] != '\0');
		FUZZ_CHECK(out.message[0] != '\0');
		FUZZ_CHECK(utf8_valid((const uint8_t *)out.message, strlen(out.message)));
		kind = 0;
	}
	arena_reset(&arena);

	st2 = sql_parse((const char *)data, size, &arena, &stmt, &out2);
	FUZZ_CHECK(st2 == st);
	FUZZ_CHECK(stmt.kind == kind);
	if (st2 == ST_OK)
		FUZZ_CHECK(round_trip(stmt_message(&stmt)) == packed);
	else
		FUZZ_CHECK(strcmp(out.message, out2.message) == 0);
	arena_reset(&arena);
	return 0;
}
