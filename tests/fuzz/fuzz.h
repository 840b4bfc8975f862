/*
 * fuzz.h: the interface every fuzz target in tests/fuzz/ implements. Each target is one
 * file that defines LLVMFuzzerInitialize and LLVMFuzzerTestOneInput; it is linked either
 * with libFuzzer (clang, -Dfuzzing=true) or with replay.c, which feeds it every file of a
 * corpus directory (any compiler, the 'fuzz' suite).
 *
 * What it does not do: targets print nothing on success and never print input bytes
 * (corpus entries may look like secrets). A target that finds a broken invariant calls
 * fuzz_fail, which aborts so that libFuzzer (or the sanitizer under replay) reports it.
 *
 * Thread safety: none; libFuzzer and the replay driver call a target from one thread.
 */
#ifndef SECRETD_TESTS_FUZZ_H
#define SECRETD_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Called once before the first input; argc/argv are libFuzzer's (may be ignored). */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Run one input (borrowed, size bytes, arbitrary). Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Report a broken invariant and abort. what must not contain input bytes. */
#define fuzz_fail(what)                                                                            \
	do {                                                                                       \
		fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", __FILE__, __LINE__, (what)); \
		abort();                                                                           \
	} while (0)

/* Abort unless cond holds. */
#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fuzz_fail(#cond);                                                          \
	} while (0)

#endif
