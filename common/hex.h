/*
 * hex.h: lowercase hexadecimal, the form of key files (what `openssl rand -hex 32` writes)
 * and of SQLCipher's raw keys (x'...').
 *
 * Why not libcrypto's OPENSSL_buf2hexstr_ex / OPENSSL_hexstr2buf_ex: the encoder writes
 * uppercase (key files would change), and the decoder, given the key file's bytes, would
 * need the trailing newline cut off into a copy of the key first; these two loops are
 * shorter than the glue.
 *
 * Thread safety: pure functions.
 */
#ifndef SECRETD_COMMON_HEX_H
#define SECRETD_COMMON_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Write 2 * len lowercase hex digits of in[0..len) to out (no NUL). */
void sd_hex_encode(const uint8_t *in, size_t len, char *out);

/* Read 2 * len hex digits (either case) of in into out[0..len). Returns false at the first
 * byte that is not a hex digit (out is then partly written: the caller wipes it). */
bool sd_hex_decode(const char *in, size_t len, uint8_t *out);

#endif
