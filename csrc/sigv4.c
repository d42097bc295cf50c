/*
 * SigV4 as three stages over one result struct, shared by header signing and
 * query presigning: canonical request -> string to sign -> signature.
 */
#include "sigv4.h"

#include "buf.h"
#include "uri.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

struct s3d_signer {
	s3d_buf access_key;
	s3d_buf secret;       /* "AWS4" + secret key: wiped on free */
	s3d_buf token;
	s3d_buf region;
	s3d_buf service;
	pthread_mutex_t lock; /* guards the derived-key cache */
	char key_date[9];     /* YYYYMMDD of key, "" = empty cache */
	uint8_t key[32];
};

/* ---- crypto primitives: algorithms fetched once, never per call ---- */

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256;
static EVP_MAC *mac_hmac;

static void crypto_init(void)
{
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static int crypto_ready(void)
{
	if (pthread_once(&crypto_once, crypto_init) != 0)
		return S3D_E_CRYPTO;
	return md_sha256 && mac_hmac ? S3D_OK : S3D_E_CRYPTO;
}

void s3d_hex(const uint8_t *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = 0;
}

int s3d_sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t md[32];
	unsigned int mdlen = 0;

	if (crypto_ready() != S3D_OK ||
	    EVP_Digest(data, len, md, &mdlen, md_sha256, NULL) != 1 || mdlen != 32)
		return S3D_E_CRYPTO;
	s3d_hex(md, 32, out);
	return S3D_OK;
}

#define FD_HASH_CHUNK (1u << 20)

int s3d_sha256_fd(int fd, int64_t want, uint8_t md[32], int64_t *total, int *sys_errno)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t *chunk = malloc(FD_HASH_CHUNK);
	unsigned int mdlen = 0;
	int64_t off = 0;
	size_t n;
	ssize_t got;
	int rc = ctx && chunk ? S3D_OK : S3D_E_NOMEM;

	if (sys_errno)
		*sys_errno = 0;
	if (rc == S3D_OK && (crypto_ready() != S3D_OK ||
			     EVP_DigestInit_ex(ctx, md_sha256, NULL) != 1))
		rc = S3D_E_CRYPTO;
	while (rc == S3D_OK && (want < 0 || off < want)) {
		n = want >= 0 && want - off < FD_HASH_CHUNK ? (size_t)(want - off) : FD_HASH_CHUNK;
		got = pread(fd, chunk, n, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 || (got == 0 && want >= 0)) {
			if (got < 0 && sys_errno)
				*sys_errno = errno;
			rc = S3D_E_IO; /* a read failed, or the file ended early */
		} else if (got == 0) {
			break;
		} else if (EVP_DigestUpdate(ctx, chunk, (size_t)got) != 1) {
			rc = S3D_E_CRYPTO;
		} else {
			off += got;
		}
	}
	if (rc == S3D_OK && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32))
		rc = S3D_E_CRYPTO;
	if (rc == S3D_OK && total)
		*total = off;
	EVP_MD_CTX_free(ctx);
	free(chunk);
	return rc;
}

static int hmac256(const uint8_t *key, size_t klen, const void *msg,
		   size_t mlen, uint8_t out[32])
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx;
	size_t outlen = 0;
	int ok;

	ctx = EVP_MAC_CTX_new(mac_hmac);
	if (!ctx)
		return S3D_E_CRYPTO;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	ok = EVP_MAC_init(ctx, key, klen, params) == 1 &&
	     EVP_MAC_update(ctx, msg, mlen) == 1 &&
	     EVP_MAC_final(ctx, out, &outlen, 32) == 1 && outlen == 32;
	EVP_MAC_CTX_free(ctx);
	return ok ? S3D_OK : S3D_E_CRYPTO;
}

/* ---- signer ---- */

static int valid_scope_part(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s < 0x21 || *s == 0x7f)
			return 0;
	return 1;
}

int s3d_signer_new(const char *access_key, const char *secret_key,
		   const char *session_token, const char *region,
		   const char *service, s3d_signer **out)
{
	s3d_signer *s;
	int rc;

	if (!out || !valid_scope_part(access_key) || !secret_key ||
	    !valid_scope_part(region) || !valid_scope_part(service))
		return S3D_E_INVAL;
	rc = crypto_ready();
	if (rc != S3D_OK)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return S3D_E_NOMEM;
	s3d_buf_init(&s->access_key, 256);
	s3d_buf_init(&s->secret, 512);
	s3d_buf_init(&s->token, 8192);
	s3d_buf_init(&s->region, 64);
	s3d_buf_init(&s->service, 64);
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		return S3D_E_NOMEM;
	}
	rc = s3d_buf_appendz(&s->access_key, access_key);
	if (rc == S3D_OK)
		rc = s3d_buf_appendz(&s->secret, "AWS4");
	if (rc == S3D_OK)
		rc = s3d_buf_appendz(&s->secret, secret_key);
	if (rc == S3D_OK && session_token)
		rc = s3d_buf_appendz(&s->token, session_token);
	if (rc == S3D_OK)
		rc = s3d_buf_appendz(&s->region, region);
	if (rc == S3D_OK)
		rc = s3d_buf_appendz(&s->service, service);
	if (rc != S3D_OK) {
		s3d_signer_free(s);
		return rc;
	}
	*out = s;
	return S3D_OK;
}

void s3d_signer_free(s3d_signer *s)
{
	if (!s)
		return;
	s3d_buf_cleanup(&s->access_key);
	s3d_buf_cleanup_wipe(&s->secret);
	s3d_buf_cleanup_wipe(&s->token);
	s3d_buf_cleanup(&s->region);
	s3d_buf_cleanup(&s->service);
	OPENSSL_cleanse(s->key, sizeof(s->key));
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request") */
static int signing_key(s3d_signer *s, const char date[9], uint8_t key[32])
{
	uint8_t k[32];
	int rc = S3D_OK;

	if (pthread_mutex_lock(&s->lock) != 0)
		return S3D_E_CRYPTO;
	if (strcmp(s->key_date, date) != 0) {
		rc = hmac256(s->secret.ptr, s->secret.len, date, 8, k);
		if (rc == S3D_OK)
			rc = hmac256(k, 32, s->region.ptr, s->region.len, k);
		if (rc == S3D_OK)
			rc = hmac256(k, 32, s->service.ptr, s->service.len, k);
		if (rc == S3D_OK)
			rc = hmac256(k, 32, "aws4_request", 12, k);
		if (rc == S3D_OK) {
			memcpy(s->key, k, 32);
			memcpy(s->key_date, date, 9);
		}
		OPENSSL_cleanse(k, sizeof(k));
	}
	if (rc == S3D_OK)
		memcpy(key, s->key, 32);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void put2(char *p, int v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
}

/* Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil,
 * inverted): plain integer arithmetic, no time zone lock as in gmtime_r. */
int s3d_sigv4_amz_date(time_t t, char out[17])
{
	int64_t days, secs, era, doe, yoe, doy, mp, y, m, d;

	if (t < 0 || t > (time_t)253402300799LL) /* 9999-12-31T23:59:59Z */
		return S3D_E_INVAL;
	days = (int64_t)t / 86400;
	secs = (int64_t)t % 86400;
	days += 719468;
	era = days / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	put2(out, (int)(y / 100));
	put2(out + 2, (int)(y % 100));
	put2(out + 4, (int)m);
	put2(out + 6, (int)d);
	out[8] = 'T';
	put2(out + 9, (int)(secs / 3600));
	put2(out + 11, (int)(secs / 60 % 60));
	put2(out + 13, (int)(secs % 60));
	out[15] = 'Z';
	out[16] = 0;
	return S3D_OK;
}

/* ---- result ---- */

/* One name=value entry, both stored in a shared text buffer. */
struct entry {
	size_t name, name_len, value, value_len;
	size_t order; /* original position: keeps duplicate headers in order */
};

struct entries {
	struct entry e[S3D_SIGV4_MAX_PARAMS];
	size_t n;
	s3d_buf text;
	const char *base; /* text.ptr, set before sorting */
};

/* Per-result scratch, allocated at first use and kept while the result is. */
struct scratch {
	struct entries h, q;
	EVP_MD_CTX *md;
	EVP_MAC_CTX *mac;
	uint8_t mac_key[32]; /* the key mac holds: re-init without re-keying */
	time_t date_when;    /* amz_date of date_when, computed once per signature */
	char date[17];
	int mac_keyed;
	s3d_buf cred;
};

static struct scratch *scratch_of(s3d_sigv4_result *r)
{
	struct scratch *sc = r->scratch;

	if (sc)
		return sc;
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return NULL;
	s3d_buf_init(&sc->h.text, S3D_SIGV4_MAX_TEXT);
	s3d_buf_init(&sc->q.text, S3D_SIGV4_MAX_TEXT);
	s3d_buf_init(&sc->cred, 1024);
	sc->md = EVP_MD_CTX_new();
	sc->mac = EVP_MAC_CTX_new(mac_hmac);
	if (sc->mac) {
		OSSL_PARAM params[2];

		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
							     (char *)"SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if (EVP_MAC_CTX_set_params(sc->mac, params) != 1) {
			EVP_MAC_CTX_free(sc->mac);
			sc->mac = NULL;
		}
	}
	if (!sc->md || !sc->mac) {
		EVP_MD_CTX_free(sc->md);
		EVP_MAC_CTX_free(sc->mac);
		free(sc);
		return NULL;
	}
	r->scratch = sc;
	return sc;
}

/* The X-Amz-Date of when; the three stages of one signature share it. */
static int scratch_date(struct scratch *sc, time_t when, char out[17])
{
	int rc = S3D_OK;

	if (!sc->date[0] || sc->date_when != when) {
		rc = s3d_sigv4_amz_date(when, sc->date);
		sc->date_when = when;
		if (rc != S3D_OK)
			sc->date[0] = 0;
	}
	if (rc == S3D_OK)
		memcpy(out, sc->date, 17);
	return rc;
}

static void scratch_free(struct scratch *sc)
{
	if (!sc)
		return;
	s3d_buf_cleanup(&sc->h.text);
	s3d_buf_cleanup(&sc->q.text);
	s3d_buf_cleanup(&sc->cred);
	EVP_MD_CTX_free(sc->md);
	EVP_MAC_CTX_free(sc->mac);
	OPENSSL_cleanse(sc->mac_key, sizeof(sc->mac_key));
	free(sc);
}

void s3d_sigv4_result_init(s3d_sigv4_result *r)
{
	memset(r, 0, sizeof(*r));
	s3d_buf_init(&r->canonical_request, S3D_SIGV4_MAX_TEXT);
	s3d_buf_init(&r->string_to_sign, 1024);
	s3d_buf_init(&r->signed_headers, 16384);
	s3d_buf_init(&r->authorization, 20480);
	s3d_buf_init(&r->query, S3D_SIGV4_MAX_TEXT);
}

void s3d_sigv4_result_cleanup(s3d_sigv4_result *r)
{
	s3d_buf_cleanup(&r->canonical_request);
	s3d_buf_cleanup(&r->string_to_sign);
	s3d_buf_cleanup(&r->signed_headers);
	s3d_buf_cleanup(&r->authorization);
	s3d_buf_cleanup(&r->query);
	scratch_free(r->scratch);
	r->scratch = NULL;
}

static void result_reset(s3d_sigv4_result *r)
{
	s3d_buf_reset(&r->canonical_request);
	s3d_buf_reset(&r->string_to_sign);
	s3d_buf_reset(&r->signed_headers);
	s3d_buf_reset(&r->authorization);
	s3d_buf_reset(&r->query);
	r->signature[0] = 0;
}

/* ---- canonical request ---- */

static int cmp_entry(const void *a, const void *b, const char *base)
{
	const struct entry *x = a, *y = b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(base + x->name, base + y->name, n);

	if (c == 0 && x->name_len != y->name_len)
		return x->name_len < y->name_len ? -1 : 1;
	return c;
}

static int cmp_query(const void *a, const void *b, void *base)
{
	const struct entry *x = a, *y = b;
	int c = cmp_entry(a, b, base);
	size_t n;

	if (c)
		return c;
	n = x->value_len < y->value_len ? x->value_len : y->value_len;
	c = memcmp((const char *)base + x->value, (const char *)base + y->value, n);
	if (c == 0 && x->value_len != y->value_len)
		c = x->value_len < y->value_len ? -1 : 1;
	return c;
}

static int cmp_header(const void *a, const void *b, void *base)
{
	const struct entry *x = a, *y = b;
	int c = cmp_entry(a, b, base);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int add_query(struct entries *q, const char *name, const char *value)
{
	struct entry *e;
	int rc;

	if (q->n >= S3D_SIGV4_MAX_PARAMS)
		return S3D_E_TOOBIG;
	e = &q->e[q->n];
	e->name = q->text.len;
	rc = s3d_uri_encode(&q->text, name, strlen(name), 0);
	if (rc != S3D_OK)
		return rc;
	e->name_len = q->text.len - e->name;
	e->value = q->text.len;
	rc = s3d_uri_encode(&q->text, value ? value : "", value ? strlen(value) : 0, 0);
	if (rc != S3D_OK)
		return rc;
	e->value_len = q->text.len - e->value;
	e->order = q->n++;
	return S3D_OK;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Lower-cased name; value trimmed with inner runs of blanks collapsed. */
static int add_header(struct entries *h, const char *name, const char *value)
{
	size_t nlen, vlen, i;
	struct entry *e;
	char *out;
	const char *p;
	int rc, pending_space = 0;

	if (!name || !*name || !value)
		return S3D_E_INVAL;
	if (h->n >= S3D_SIGV4_MAX_PARAMS)
		return S3D_E_TOOBIG;
	nlen = strlen(name);
	vlen = strlen(value);
	/* the canonical forms are never longer than the inputs */
	rc = s3d_buf_reserve(&h->text, nlen + vlen);
	if (rc != S3D_OK)
		return rc;
	e = &h->e[h->n];
	e->name = h->text.len;
	out = (char *)h->text.ptr + h->text.len;
	for (i = 0; i < nlen; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= 0x20 || c == ':' || c == 0x7f)
			return S3D_E_INVAL;
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	e->name_len = nlen;
	e->value = e->name + nlen;
	out += nlen;
	for (p = value; *p && is_space(*p); p++)
		;
	for (i = 0; *p; p++) {
		if (*p == '\r' || *p == '\n')
			return S3D_E_INVAL; /* never let a value split a header */
		if (is_space(*p)) {
			pending_space = 1;
			continue;
		}
		if (pending_space)
			out[i++] = ' ';
		pending_space = 0;
		out[i++] = *p;
	}
	e->value_len = i;
	h->text.len = e->value + i;
	h->text.ptr[h->text.len] = 0;
	e->order = h->n++;
	return S3D_OK;
}

static int has_header(const s3d_sigv4_request *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (req->headers[i].name && strcasecmp(req->headers[i].name, name) == 0)
			return 1;
	return 0;
}

static int canonical_uri(const s3d_sigv4_request *req, s3d_buf *out)
{
	const char *path = req->path && *req->path ? req->path : "/";
	s3d_buf norm, once;
	int rc = S3D_OK;
	int encode_times = (req->flags & S3D_SIGV4_PATH_ENCODED) ? 0 : 1;

	if (req->flags & S3D_SIGV4_DOUBLE_ENCODE)
		encode_times++;
	s3d_buf_init(&norm, 4096);
	s3d_buf_init(&once, 3 * 4096);
	if (req->flags & S3D_SIGV4_NORMALIZE_PATH) {
		rc = s3d_uri_normalize_path(&norm, path, strlen(path));
		path = s3d_buf_str(&norm);
	}
	if (rc == S3D_OK && encode_times == 2) {
		rc = s3d_uri_encode(&once, path, strlen(path), 1);
		path = s3d_buf_str(&once);
	}
	if (rc == S3D_OK)
		rc = encode_times ? s3d_uri_encode(out, path, strlen(path), 1)
				  : s3d_buf_appendz(out, path);
	s3d_buf_cleanup(&norm);
	s3d_buf_cleanup(&once);
	return rc;
}

static int credential_scope(const s3d_signer *s, const char *amz_date, s3d_buf *out)
{
	int rc = s3d_buf_put(out, amz_date, 8);

	if (rc == S3D_OK)
		rc = s3d_buf_putc(out, '/');
	if (rc == S3D_OK)
		rc = s3d_buf_put(out, s->region.ptr, s->region.len);
	if (rc == S3D_OK)
		rc = s3d_buf_putc(out, '/');
	if (rc == S3D_OK)
		rc = s3d_buf_put(out, s->service.ptr, s->service.len);
	if (rc == S3D_OK)
		rc = s3d_buf_put(out, "/aws4_request", 13);
	return rc;
}

static int collect_headers(const s3d_signer *s, const s3d_sigv4_request *req,
			   int query_form, const char *amz_date, struct entries *h)
{
	size_t i;
	int rc = S3D_OK;

	if (req->host && !has_header(req, "host"))
		rc = add_header(h, "host", req->host);
	for (i = 0; rc == S3D_OK && i < req->nheaders; i++)
		rc = add_header(h, req->headers[i].name, req->headers[i].value);
	if (rc != S3D_OK || query_form)
		return rc;
	if (!has_header(req, "x-amz-date"))
		rc = add_header(h, "x-amz-date", amz_date);
	if (rc == S3D_OK && (req->flags & S3D_SIGV4_CONTENT_SHA256_HEADER) &&
	    !has_header(req, "x-amz-content-sha256"))
		rc = add_header(h, "x-amz-content-sha256",
				req->payload_hash ? req->payload_hash : S3D_UNSIGNED_PAYLOAD);
	if (rc == S3D_OK && s->token.len && !(req->flags & S3D_SIGV4_OMIT_SESSION_TOKEN) &&
	    !has_header(req, "x-amz-security-token"))
		rc = add_header(h, "x-amz-security-token", s3d_buf_str(&s->token));
	return rc;
}

/* "a;b;c" from sorted headers, duplicates listed once. */
static int signed_header_list(const struct entries *h, s3d_buf *out)
{
	size_t i;
	int rc = S3D_OK;

	for (i = 0; rc == S3D_OK && i < h->n; i++) {
		if (i && cmp_entry(&h->e[i - 1], &h->e[i], h->base) == 0)
			continue;
		if (i)
			rc = s3d_buf_putc(out, ';');
		if (rc == S3D_OK)
			rc = s3d_buf_put(out, h->base + h->e[i].name, h->e[i].name_len);
	}
	return rc;
}

static int canonical_headers(const struct entries *h, s3d_buf *out)
{
	size_t i;
	int rc = S3D_OK;

	for (i = 0; rc == S3D_OK && i < h->n; i++) {
		const struct entry *e = &h->e[i];
		int dup = i && cmp_entry(&h->e[i - 1], e, h->base) == 0;

		if (dup) {
			out->len--; /* drop the '\n': values join with ',' */
			rc = s3d_buf_putc(out, ',');
		} else {
			rc = s3d_buf_put(out, h->base + e->name, e->name_len);
			if (rc == S3D_OK)
				rc = s3d_buf_putc(out, ':');
		}
		if (rc == S3D_OK)
			rc = s3d_buf_put(out, h->base + e->value, e->value_len);
		if (rc == S3D_OK)
			rc = s3d_buf_putc(out, '\n');
	}
	return rc;
}

static int canonical_query(const struct entries *q, s3d_buf *out)
{
	size_t i;
	int rc = S3D_OK;

	for (i = 0; rc == S3D_OK && i < q->n; i++) {
		if (i)
			rc = s3d_buf_putc(out, '&');
		if (rc == S3D_OK)
			rc = s3d_buf_put(out, q->base + q->e[i].name, q->e[i].name_len);
		if (rc == S3D_OK)
			rc = s3d_buf_putc(out, '=');
		if (rc == S3D_OK)
			rc = s3d_buf_put(out, q->base + q->e[i].value, q->e[i].value_len);
	}
	return rc;
}

static int check_request(const s3d_sigv4_request *req, int query_form)
{
	const char *m;

	if (!req || !req->method || !*req->method)
		return S3D_E_INVAL;
	for (m = req->method; *m; m++)
		if (*m < 'A' || *m > 'Z')
			return S3D_E_INVAL;
	if (req->path && *req->path && req->path[0] != '/')
		return S3D_E_INVAL;
	if (req->nquery && !req->query)
		return S3D_E_INVAL;
	if (req->nheaders && !req->headers)
		return S3D_E_INVAL;
	if (query_form && (req->expires < S3D_PRESIGN_MIN_EXPIRES ||
			   req->expires > S3D_PRESIGN_MAX_EXPIRES))
		return S3D_E_INVAL;
	return S3D_OK;
}

/* Builds the canonical request, signed headers and (query form) the auth
 * parameters, into r; h and q are scratch owned by the caller. */
static int build_canonical(const s3d_signer *s, const s3d_sigv4_request *req,
			   int query_form, s3d_sigv4_result *r,
			   struct entries *h, struct entries *q)
{
	char expires[24];
	size_t i;
	int rc;

	rc = check_request(req, query_form);
	if (rc == S3D_OK)
		rc = scratch_date(r->scratch, req->when, r->amz_date);
	if (rc == S3D_OK)
		rc = collect_headers(s, req, query_form, r->amz_date, h);
	if (rc != S3D_OK)
		return rc;
	if (h->n == 0 || (!has_header(req, "host") && !req->host))
		return S3D_E_INVAL; /* SigV4 always signs host */
	h->base = s3d_buf_str(&h->text);
	qsort_r(h->e, h->n, sizeof(h->e[0]), cmp_header, (void *)h->base);
	rc = signed_header_list(h, &r->signed_headers);

	for (i = 0; rc == S3D_OK && i < req->nquery; i++) {
		if (!req->query[i].name)
			return S3D_E_INVAL;
		rc = add_query(q, req->query[i].name, req->query[i].value);
	}
	if (rc == S3D_OK && query_form) {
		s3d_buf *credp = &((struct scratch *)r->scratch)->cred;
#define cred (*credp)
		s3d_buf_reset(&cred);
		rc = s3d_buf_put(&cred, s->access_key.ptr, s->access_key.len);
		if (rc == S3D_OK)
			rc = s3d_buf_putc(&cred, '/');
		if (rc == S3D_OK)
			rc = credential_scope(s, r->amz_date, &cred);
		{ /* 1..604800, checked above */
			char digits[24];
			int64_t v = req->expires;
			size_t k = 0, m;

			do {
				digits[k++] = (char)('0' + v % 10);
				v /= 10;
			} while (v && k < sizeof(digits));
			for (m = 0; m < k; m++)
				expires[m] = digits[k - 1 - m];
			expires[k] = 0;
		}
		if (rc == S3D_OK)
			rc = add_query(q, "X-Amz-Algorithm", ALGORITHM);
		if (rc == S3D_OK)
			rc = add_query(q, "X-Amz-Credential", s3d_buf_str(&cred));
		if (rc == S3D_OK)
			rc = add_query(q, "X-Amz-Date", r->amz_date);
		if (rc == S3D_OK)
			rc = add_query(q, "X-Amz-Expires", expires);
		if (rc == S3D_OK)
			rc = add_query(q, "X-Amz-SignedHeaders", s3d_buf_str(&r->signed_headers));
		if (rc == S3D_OK && s->token.len && !(req->flags & S3D_SIGV4_OMIT_SESSION_TOKEN))
			rc = add_query(q, "X-Amz-Security-Token", s3d_buf_str(&s->token));
#undef cred
	}
	if (rc != S3D_OK)
		return rc;
	q->base = s3d_buf_str(&q->text);
	qsort_r(q->e, q->n, sizeof(q->e[0]), cmp_query, (void *)q->base);

	rc = s3d_buf_appendz(&r->canonical_request, req->method);
	if (rc == S3D_OK)
		rc = s3d_buf_putc(&r->canonical_request, '\n');
	if (rc == S3D_OK)
		rc = canonical_uri(req, &r->canonical_request);
	if (rc == S3D_OK)
		rc = s3d_buf_putc(&r->canonical_request, '\n');
	if (rc == S3D_OK)
		rc = canonical_query(q, &r->canonical_request);
	if (rc == S3D_OK)
		rc = s3d_buf_putc(&r->canonical_request, '\n');
	if (rc == S3D_OK)
		rc = canonical_headers(h, &r->canonical_request);
	if (rc == S3D_OK)
		rc = s3d_buf_putc(&r->canonical_request, '\n');
	if (rc == S3D_OK)
		rc = s3d_buf_put(&r->canonical_request, r->signed_headers.ptr,
				    r->signed_headers.len);
	if (rc == S3D_OK)
		rc = s3d_buf_putc(&r->canonical_request, '\n');
	if (rc == S3D_OK)
		rc = s3d_buf_appendz(&r->canonical_request,
				     req->payload_hash ? req->payload_hash : S3D_UNSIGNED_PAYLOAD);
	/* the query form's final query string is the canonical one + signature */
	if (rc == S3D_OK && query_form)
		rc = canonical_query(q, &r->query);
	return rc;
}

int s3d_sigv4_canonical_request(const s3d_signer *s, const s3d_sigv4_request *req,
				int query_form, s3d_sigv4_result *r)
{
	struct scratch *sc;

	if (!s || !r)
		return S3D_E_INVAL;
	result_reset(r);
	sc = scratch_of(r);
	if (!sc)
		return S3D_E_NOMEM;
	sc->h.n = sc->q.n = 0;
	s3d_buf_reset(&sc->h.text);
	s3d_buf_reset(&sc->q.text);
	return build_canonical(s, req, query_form, r, &sc->h, &sc->q);
}

int s3d_sigv4_string_to_sign(const s3d_signer *s, time_t when, s3d_sigv4_result *r)
{
	struct scratch *sc = r ? scratch_of(r) : NULL;
	uint8_t md[32];
	unsigned int mdlen = 0;
	char hash[65];
	int rc;

	if (!s || !r || !r->canonical_request.len)
		return S3D_E_INVAL;
	if (!sc)
		return S3D_E_NOMEM;
	rc = scratch_date(sc, when, r->amz_date);
	if (rc == S3D_OK &&
	    (EVP_DigestInit_ex2(sc->md, md_sha256, NULL) != 1 ||
	     EVP_DigestUpdate(sc->md, r->canonical_request.ptr, r->canonical_request.len) != 1 ||
	     EVP_DigestFinal_ex(sc->md, md, &mdlen) != 1 || mdlen != 32))
		rc = S3D_E_CRYPTO;
	if (rc == S3D_OK)
		s3d_hex(md, 32, hash);
	s3d_buf_reset(&r->string_to_sign);
	if (rc == S3D_OK)
		rc = s3d_buf_put(&r->string_to_sign, ALGORITHM "\n", sizeof(ALGORITHM));
	if (rc == S3D_OK)
		rc = s3d_buf_put(&r->string_to_sign, r->amz_date, 16);
	if (rc == S3D_OK)
		rc = s3d_buf_putc(&r->string_to_sign, '\n');
	if (rc == S3D_OK)
		rc = credential_scope(s, r->amz_date, &r->string_to_sign);
	if (rc == S3D_OK)
		rc = s3d_buf_putc(&r->string_to_sign, '\n');
	if (rc == S3D_OK)
		rc = s3d_buf_put(&r->string_to_sign, hash, 64);
	return rc;
}

int s3d_sigv4_signature(s3d_signer *s, time_t when, s3d_sigv4_result *r)
{
	struct scratch *sc = r ? scratch_of(r) : NULL;
	uint8_t key[32], sig[32];
	size_t outlen = 0;
	char date[17];
	int rc;

	if (!s || !r || !r->string_to_sign.len)
		return S3D_E_INVAL;
	if (!sc)
		return S3D_E_NOMEM;
	rc = scratch_date(sc, when, date);
	date[8] = 0;
	if (rc == S3D_OK)
		rc = signing_key(s, date, key);
	/* The scratch MAC context was set to SHA-256 once. Keying it costs
	 * twice an HMAC; with the same signing key as last time (same signer
	 * and day), re-init without a key restores the keyed state. */
	if (rc == S3D_OK && (!sc->mac_keyed || memcmp(sc->mac_key, key, 32) != 0)) {
		sc->mac_keyed = 0;
		if (EVP_MAC_init(sc->mac, key, 32, NULL) != 1)
			rc = S3D_E_CRYPTO;
		else {
			memcpy(sc->mac_key, key, 32);
			sc->mac_keyed = 1;
		}
	} else if (rc == S3D_OK && EVP_MAC_init(sc->mac, NULL, 0, NULL) != 1) {
		rc = S3D_E_CRYPTO;
	}
	if (rc == S3D_OK &&
	    (EVP_MAC_update(sc->mac, r->string_to_sign.ptr, r->string_to_sign.len) != 1 ||
	     EVP_MAC_final(sc->mac, sig, &outlen, 32) != 1 || outlen != 32))
		rc = S3D_E_CRYPTO;
	if (rc == S3D_OK)
		s3d_hex(sig, 32, r->signature);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

static int sign_all(s3d_signer *s, const s3d_sigv4_request *req, int query_form,
		    s3d_sigv4_result *r)
{
	int rc = s3d_sigv4_canonical_request(s, req, query_form, r);

	if (rc == S3D_OK)
		rc = s3d_sigv4_string_to_sign(s, req->when, r);
	if (rc == S3D_OK)
		rc = s3d_sigv4_signature(s, req->when, r);
	return rc;
}

int s3d_sigv4_sign_headers(s3d_signer *s, const s3d_sigv4_request *req,
			   s3d_sigv4_result *r)
{
	int rc = sign_all(s, req, 0, r);

	s3d_buf *a = &r->authorization;

	if (rc == S3D_OK)
		rc = s3d_buf_put(a, ALGORITHM " Credential=", sizeof(ALGORITHM " Credential=") - 1);
	if (rc == S3D_OK)
		rc = s3d_buf_put(a, s->access_key.ptr, s->access_key.len);
	if (rc == S3D_OK)
		rc = s3d_buf_putc(a, '/');
	if (rc == S3D_OK)
		rc = credential_scope(s, r->amz_date, a);
	if (rc == S3D_OK)
		rc = s3d_buf_put(a, ", SignedHeaders=", 16);
	if (rc == S3D_OK)
		rc = s3d_buf_put(a, r->signed_headers.ptr, r->signed_headers.len);
	if (rc == S3D_OK)
		rc = s3d_buf_put(a, ", Signature=", 12);
	if (rc == S3D_OK)
		rc = s3d_buf_put(a, r->signature, 64);
	return rc;
}

int s3d_sigv4_presign(s3d_signer *s, const s3d_sigv4_request *req,
		      s3d_sigv4_result *r)
{
	int rc = sign_all(s, req, 1, r);

	if (rc == S3D_OK && r->query.len)
		rc = s3d_buf_putc(&r->query, '&');
	if (rc == S3D_OK)
		rc = s3d_buf_put(&r->query, "X-Amz-Signature=", 16);
	if (rc == S3D_OK)
		rc = s3d_buf_put(&r->query, r->signature, 64);
	if (rc == S3D_OK && s->token.len && (req->flags & S3D_SIGV4_OMIT_SESSION_TOKEN)) {
		rc = s3d_buf_appendz(&r->query, "&X-Amz-Security-Token=");
		if (rc == S3D_OK)
			rc = s3d_uri_encode(&r->query, (const char *)s->token.ptr,
					    s->token.len, 0);
	}
	return rc;
}
