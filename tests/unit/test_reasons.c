/*
 * test_reasons.c: the one list of reasons (proto/secretd/v1/reasons.h) and its copies for
 * readers. Every reason fits libsecretd's secretd_error.reason (checked at compile time
 * here against the public header's own buffer), the server names each reason as the list
 * does and with the status the list gives, names are distinct upper-case words, and the
 * lists in secretd.proto (Reply.reason) and secretd.h (the section "Reasons") hold exactly
 * the list's names and statuses, in its order.
 *
 * Arguments: the path of secretd.proto, then of secretd.h.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "secretd.h"
#include "status.h"

static_assert(sizeof(((secretd_error *)0)->reason) == SECRETD_REASON_SIZE,
    "SECRETD_REASON_SIZE is not the size of secretd_error.reason");

struct entry {
	const char *name;
	const char *status;
};

static const struct entry list[] = {
#define ENTRY(name, status, when) {#name, #status},
    SECRETD_REASONS(ENTRY)
#undef ENTRY
};
#define N_LIST (sizeof(list) / sizeof(list[0]))

static char *
read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	(void)fseek(f, 0, SEEK_END);
	n = ftell(f);
	(void)fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf != NULL)
		buf[n] = '\0';
	(void)fclose(f);
	return buf;
}

/*
 * The rows of a document's list after the line holding marker: lines that start with
 * prefix, then two spaces, then NAME and STATUS (upper-case words); continuation lines
 * (more spaces) are skipped; the list ends at the first other line once it has begun.
 * Checks them against list[] in order.
 */
static void
check_document(const char *path, const char *marker, const char *prefix)
{
	char *text = read_all(path);
	const char *p;
	size_t row = 0;
	size_t plen = strlen(prefix);
	int started = 0;

	CHECK(text != NULL);
	if (text == NULL)
		return;
	p = strstr(text, marker);
	CHECK(p != NULL);
	/* The list appears once in the document. */
	CHECK(p != NULL && strstr(p + 1, marker) == NULL);
	for (p = p != NULL ? strchr(p, '\n') : NULL; p != NULL && *p != '\0';
	     p = strchr(p + 1, '\n')) {
		const char *line = p + 1;
		char name[64], status[64];

		if (strncmp(line, prefix, plen) != 0 || strncmp(line + plen, "  ", 2) != 0) {
			if (started)
				break;
			continue;
		}
		if (line[plen + 2] == ' ' || line[plen + 2] == '\n')
			continue; /* a continuation line, or the blank line before the list */
		if (sscanf(line + plen, " %63[A-Z_] %63[A-Z_]", name, status) != 2) {
			if (started)
				break;
			continue;
		}
		started = 1;
		CHECK(row < N_LIST);
		if (row < N_LIST) {
			CHECK_STR(name, list[row].name);
			CHECK_STR(status, list[row].status);
		}
		row++;
	}
	CHECK_STATUS(row, N_LIST);
	free(text);
}

int
main(int argc, char **argv)
{
	CHECK_STATUS(argc, 3);
	CHECK_STATUS(REASON_COUNT, N_LIST + 1);
	CHECK_STR(reason_str(REASON_NONE), "");
	CHECK_STATUS(reason_status(REASON_NONE), ST_OK);
	for (size_t i = 0; i < N_LIST; i++) {
		enum reason r = (enum reason)(i + 1);

		CHECK_STR(reason_str(r), list[i].name);
		CHECK_STR(status_str(reason_status(r)), list[i].status);
		CHECK(strspn(list[i].name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == strlen(list[i].name));
		for (size_t k = 0; k < i; k++)
			CHECK(strcmp(list[k].name, list[i].name) != 0);
	}
	/* One spelling of out of memory. */
	CHECK_STR(reason_str(REASON_NO_MEMORY), "NO_MEMORY");
	if (argc == 3) {
		check_document(argv[1], "Machine-readable reason within the status", "  //");
		check_document(argv[2], " * Reasons.", " *");
	}
	return check_report();
}
