/*
 * replay.c: runs a fuzz target over corpus files without libFuzzer, so that every
 * compiler (gcc in the default build) and every build type (debug, ASan+UBSan, release)
 * replays the committed corpora and regression inputs in the 'fuzz' suite.
 *
 * Usage: replay PATH...   each PATH is a file or a directory whose regular files (not
 * its subdirectories) are run in name order. A missing PATH is an error, so that a
 * misspelt corpus directory cannot pass by running nothing. Each input is copied into a
 * buffer of exactly its size, as libFuzzer does, so that a sanitizer sees any read past
 * its end. A broken invariant aborts inside the target; the exit status is then non-zero.
 *
 * What it does not do: no mutation, no coverage; it never prints input bytes.
 *
 * Thread safety: single-threaded.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Largest corpus file replayed; libFuzzer's default -max_len is far below. */
#define REPLAY_MAX_FILE ((size_t)16 * 1024 * 1024)

/* Read the file at path into a malloc'd buffer of exactly its size (caller frees).
 * Returns 0, or -1 with a message on stderr. */
static int
read_file(const char *path, uint8_t **bufp, size_t *lenp)
{
	FILE *f = NULL;
	uint8_t *buf = NULL;
	struct stat sb;
	size_t len;
	int rc = -1;

	f = fopen(path, "rb");
	if (f == NULL || fstat(fileno(f), &sb) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		goto done;
	}
	if (sb.st_size < 0 || (size_t)sb.st_size > REPLAY_MAX_FILE) {
		fprintf(stderr, "replay: %s: too large\n", path);
		goto done;
	}
	len = (size_t)sb.st_size;
	buf = malloc(len > 0 ? len : 1);
	if (buf == NULL) {
		fprintf(stderr, "replay: %s: out of memory\n", path);
		goto done;
	}
	if (len > 0 && fread(buf, 1, len, f) != len) {
		fprintf(stderr, "replay: %s: short read\n", path);
		goto done;
	}
	/* A zero-length input is passed as a zero-length buffer, not as NULL. */
	*bufp = buf;
	*lenp = len;
	buf = NULL;
	rc = 0;
done:
	free(buf);
	if (f != NULL)
		(void)fclose(f);
	return rc;
}

/* Run one file. Returns 0 or -1. */
static int
run_file(const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (read_file(path, &buf, &len) != 0)
		return -1;
	(void)LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

/* Run every regular file of dir in name order; *np counts them. Returns 0 or -1. */
static int
run_dir(const char *dir, unsigned long *np)
{
	struct dirent **names = NULL;
	char path[4096];
	struct stat sb;
	int n;
	int rc = 0;

	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		int w = snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);

		if (w < 0 || (size_t)w >= sizeof(path)) {
			fprintf(stderr, "replay: %s: path too long\n", dir);
			rc = -1;
		} else if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
			if (run_file(path) != 0)
				rc = -1;
			else
				(*np)++;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	unsigned long n = 0;
	struct stat sb;
	int rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
		return 2;
	}
	(void)LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		if (stat(argv[i], &sb) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			rc = 1;
		} else if (S_ISDIR(sb.st_mode)) {
			if (run_dir(argv[i], &n) != 0)
				rc = 1;
		} else if (run_file(argv[i]) != 0) {
			rc = 1;
		} else {
			n++;
		}
	}
	fprintf(stderr, "replay: %lu inputs run%s\n", n, rc != 0 ? ", with errors" : "");
	if (n == 0)
		rc = 1;
	return rc;
}
