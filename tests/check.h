/*
 * check.h: the tests' tiny assertion kit. A failed CHECK prints file:line and the
 * expression, counts the failure and goes on, so one run reports every failure; a test
 * program ends with `return check_report();`, which exits non-zero on any failure.
 * Never prints secret values of its own accord: tests pass only names and statuses.
 * Not thread-safe across threads that CHECK at once; counters are per process.
 */
#ifndef SECRETD_TESTS_CHECK_H
#define SECRETD_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures_;
static int check_count_;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		check_count_++;                                                                    \
		if (!(cond)) {                                                                     \
			check_failures_++;                                                         \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                                  \
	} while (0)

/* Compare two integer-like status values and print both when they differ. */
#define CHECK_STATUS(expr, want)                                                                   \
	do {                                                                                       \
		long check_got_ = (long)(expr);                                                    \
		long check_want_ = (long)(want);                                                   \
		check_count_++;                                                                    \
		if (check_got_ != check_want_) {                                                   \
			check_failures_++;                                                         \
			fprintf(stderr, "%s:%d: %s = %ld, want %s (%ld)\n", __FILE__, __LINE__,    \
			    #expr, check_got_, #want, check_want_);                                \
		}                                                                                  \
	} while (0)

/* Compare two C strings (NULL-safe) and print both when they differ. Use only on
 * strings that are not secret values. */
#define CHECK_STR(got, want)                                                                       \
	do {                                                                                       \
		const char *check_g_ = (got);                                                      \
		const char *check_w_ = (want);                                                     \
		check_count_++;                                                                    \
		if (check_g_ == NULL || check_w_ == NULL ? check_g_ != check_w_                    \
		                                         : strcmp(check_g_, check_w_) != 0) {      \
			check_failures_++;                                                         \
			fprintf(stderr, "%s:%d: %s = \"%s\", want \"%s\"\n", __FILE__, __LINE__,   \
			    #got, check_g_ ? check_g_ : "(null)", check_w_ ? check_w_ : "(null)"); \
		}                                                                                  \
	} while (0)

/* Print the totals and give the process exit status. */
static inline int
check_report(void)
{
	fprintf(stderr, "%d checks, %d failed\n", check_count_, check_failures_);
	return check_failures_ == 0 ? 0 : 1;
}

#endif
