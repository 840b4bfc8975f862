/*
 * utf8.h: UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing past
 * U+10FFFF). Pure function, thread-safe.
 */
#ifndef SECRETD_SERVER_UTF8_H
#define SECRETD_SERVER_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether s[0..len) is valid UTF-8 with no NUL byte. */
bool utf8_valid(const uint8_t *s, size_t len);

#endif
