/*
 * path.h: file-system path helpers, and the size of a path buffer.
 *
 * Thread safety: pure functions.
 */
#ifndef SECRETD_COMMON_PATH_H
#define SECRETD_COMMON_PATH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* Room for any path the kernel accepts, NUL included (PATH_MAX counts it). */
#define SD_PATH_BUF PATH_MAX
/* Room for a path and a short suffix the code adds to it (".new", ".tmp.<16 hex>", a
 * scheme such as "ipc://"): every such suffix is under 64 bytes. */
#define SD_PATH_SUFFIX_BUF (PATH_MAX + 64)

/* The directory that holds path, into buf: "." when path has no slash, "/" when its only
 * slash is the first byte, else everything before the last slash. Returns false when it
 * does not fit in len bytes (buf then holds an empty string). */
bool sd_path_dir(const char *path, char *buf, size_t len);

#endif
