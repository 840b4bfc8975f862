/*
 * seal.c: AES-256-GCM sealing of secrets for the etcd backend. See seal.h.
 *
 * libcrypto's errors stay here: every failure of an EVP call becomes STORE_IO (sealing) or
 * STORE_CORRUPT (opening: a tag that does not verify is the value's fault, not ours).
 */
#include "seal.h"

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "row.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define HEADER_LEN (1 + STORE_SEAL_KID_LEN + 8 + NONCE_LEN)

static const char seal_salt[] = "secretd etcd seal v1";
static const char ad_label[] = "secretd/etcd/v1";

/* HKDF-SHA256(ikm, salt, info) into out[out_len]. */
static bool
hkdf(const uint8_t *ikm, size_t ikm_len, const char *info, uint8_t *out, size_t out_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t len = out_len;
	bool ok;

	if (ctx == NULL)
		return false;
	ok = EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
	     EVP_PKEY_CTX_set1_hkdf_salt(
	         ctx, (const unsigned char *)seal_salt, (int)strlen(seal_salt)) > 0 &&
	     EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, (int)ikm_len) > 0 &&
	     EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info, (int)strlen(info)) > 0 &&
	     EVP_PKEY_derive(ctx, out, &len) > 0 && len == out_len;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

store_status
store_seal_init(struct store_seal *seal, const uint8_t *key, size_t key_len)
{
	memset(seal, 0, sizeof(*seal));
	if (key == NULL || key_len != STORE_KEY_LEN)
		return STORE_INVALID;
	if (!hkdf(key, key_len, "aes-256-gcm key", seal->key, sizeof(seal->key)) ||
	    !hkdf(key, key_len, "key id", seal->kid, sizeof(seal->kid))) {
		store_seal_wipe(seal);
		return STORE_IO;
	}
	return STORE_OK;
}

void
store_seal_wipe(struct store_seal *seal)
{
	if (seal != NULL)
		explicit_bzero(seal, sizeof(*seal));
}

static void
put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Feed the associated data: label, name and its NUL, then the header's first 17 bytes
 * (version, key id, write tag). */
static bool
feed_ad(EVP_CIPHER_CTX *ctx, const char *name, const uint8_t *header)
{
	int outl = 0;

	return EVP_CipherUpdate(
	           ctx, NULL, &outl, (const unsigned char *)ad_label, (int)sizeof(ad_label)) > 0 &&
	       EVP_CipherUpdate(
	           ctx, NULL, &outl, (const unsigned char *)name, (int)strlen(name) + 1) > 0 &&
	       EVP_CipherUpdate(ctx, NULL, &outl, header, 1 + STORE_SEAL_KID_LEN + 8) > 0;
}

store_status
store_seal_secret(const struct store_seal *seal, const struct store_secret *s, uint64_t tag,
    uint8_t **outp, size_t *lenp)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *body = NULL;
	size_t body_len = 0;
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	uint8_t *out = NULL;
	size_t type_len;
	int outl = 0;
	int finl = 0;
	store_status rc;

	*outp = NULL;
	*lenp = 0;
	rc = store_row_encode(s, &body, &body_len);
	if (rc != STORE_OK)
		goto fail;
	type_len = strlen(s->type);
	rc = STORE_INVALID;
	if (body_len > (size_t)1 << 28 || type_len > (size_t)1 << 16)
		goto fail;
	plain_len = type_len + 1 + body_len;
	rc = STORE_NO_MEMORY;
	plain = malloc(plain_len);
	out = malloc(HEADER_LEN + plain_len + TAG_LEN);
	if (plain == NULL || out == NULL)
		goto fail;
	memcpy(plain, s->type, type_len + 1);
	memcpy(plain + type_len + 1, body, body_len);
	out[0] = STORE_SEAL_VERSION;
	memcpy(out + 1, seal->kid, STORE_SEAL_KID_LEN);
	put_u64(out + 1 + STORE_SEAL_KID_LEN, tag);
	rc = STORE_IO;
	if (getrandom(out + 1 + STORE_SEAL_KID_LEN + 8, NONCE_LEN, 0) != NONCE_LEN)
		goto fail;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) <= 0 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) <= 0 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, seal->key, out + HEADER_LEN - NONCE_LEN) <= 0 ||
	    !feed_ad(ctx, s->name, out) ||
	    EVP_EncryptUpdate(ctx, out + HEADER_LEN, &outl, plain, (int)plain_len) <= 0 ||
	    EVP_EncryptFinal_ex(ctx, out + HEADER_LEN + outl, &finl) <= 0 ||
	    (size_t)outl + (size_t)finl != plain_len ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + HEADER_LEN + plain_len) <=
	        0)
		goto fail;
	*outp = out;
	*lenp = HEADER_LEN + plain_len + TAG_LEN;
	out = NULL;
	rc = STORE_OK;
fail:
	EVP_CIPHER_CTX_free(ctx); /* wipes its key schedule */
	if (plain != NULL) {
		explicit_bzero(plain, plain_len);
		free(plain);
	}
	free(out); /* ciphertext at most, never a clear value */
	store_row_free(body, body_len);
	return rc;
}

bool
store_seal_peek(const uint8_t *buf, size_t len, uint8_t kid[STORE_SEAL_KID_LEN], uint64_t *tagp)
{
	if (buf == NULL || len < HEADER_LEN + TAG_LEN || buf[0] != STORE_SEAL_VERSION)
		return false;
	if (kid != NULL)
		memcpy(kid, buf + 1, STORE_SEAL_KID_LEN);
	if (tagp != NULL)
		*tagp = get_u64(buf + 1 + STORE_SEAL_KID_LEN);
	return true;
}

store_status
store_seal_open(const struct store_seal *seal, const char *name, const uint8_t *buf, size_t len,
    struct store_secret **outp)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	const uint8_t *nul;
	uint8_t tagbuf[TAG_LEN];
	int outl = 0;
	int finl = 0;
	store_status rc = STORE_CORRUPT;

	*outp = NULL;
	if (name == NULL || !store_seal_peek(buf, len, NULL, NULL) ||
	    len - HEADER_LEN - TAG_LEN > (size_t)1 << 29)
		goto fail;
	if (memcmp(buf + 1, seal->kid, STORE_SEAL_KID_LEN) != 0) {
		rc = STORE_BAD_KEY;
		goto fail;
	}
	plain_len = len - HEADER_LEN - TAG_LEN;
	rc = STORE_NO_MEMORY;
	plain = malloc(plain_len > 0 ? plain_len : 1);
	if (plain == NULL)
		goto fail;
	memcpy(tagbuf, buf + len - TAG_LEN, TAG_LEN);
	rc = STORE_CORRUPT;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) <= 0 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) <= 0 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, seal->key, buf + HEADER_LEN - NONCE_LEN) <= 0 ||
	    !feed_ad(ctx, name, buf) ||
	    EVP_DecryptUpdate(ctx, plain, &outl, buf + HEADER_LEN, (int)plain_len) <= 0 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tagbuf) <= 0 ||
	    EVP_DecryptFinal_ex(ctx, plain + outl, &finl) <= 0)
		goto fail;
	nul = memchr(plain, 0, plain_len);
	if (nul == NULL)
		goto fail;
	rc = store_row_decode(
	    nul + 1, plain_len - (size_t)(nul + 1 - plain), name, (const char *)plain, outp);
fail:
	EVP_CIPHER_CTX_free(ctx);
	if (plain != NULL) {
		explicit_bzero(plain, plain_len);
		free(plain);
	}
	return rc;
}
