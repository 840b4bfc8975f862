/*
 * path.c: file-system path helpers. See path.h.
 */
#include "path.h"

#include <string.h>

bool
sd_path_dir(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	const char *dir = path;
	size_t n;

	if (slash == NULL) {
		dir = ".";
		n = 1;
	} else if (slash == path) {
		n = 1;
	} else {
		n = (size_t)(slash - path);
	}
	if (len == 0)
		return false;
	if (n >= len) {
		buf[0] = '\0';
		return false;
	}
	memcpy(buf, dir, n);
	buf[n] = '\0';
	return true;
}
