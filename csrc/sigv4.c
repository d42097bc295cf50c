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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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

static void to_hex(const uint8_t *in, size_t n, char *out)
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
	to_hex(md, 32, out);
	return S3D_OK;
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

int s3d_sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		return S3D_E_INVAL;
	return S3D_OK;
}

/* ---- result ---- */

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
	struct entry *e;
	const char *p;
	int rc = S3D_OK, pending_space = 0;

	if (!name || !*name || !value || h->n >= S3D_SIGV4_MAX_PARAMS)
		return h->n >= S3D_SIGV4_MAX_PARAMS ? S3D_E_TOOBIG : S3D_E_INVAL;
	e = &h->e[h->n];
	e->name = h->text.len;
	for (p = name; *p && rc == S3D_OK; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c == ':' || c == 0x7f)
			return S3D_E_INVAL;
		rc = s3d_buf_appendc(&h->text, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
	}
	e->name_len = h->text.len - e->name;
	e->value = h->text.len;
	for (p = value; *p && is_space(*p); p++)
		;
	for (; *p && rc == S3D_OK; p++) {
		if (*p == '\r' || *p == '\n')
			return S3D_E_INVAL; /* never let a value split a header */
		if (is_space(*p)) {
			pending_space = 1;
			continue;
		}
		if (pending_space)
			rc = s3d_buf_appendc(&h->text, ' ');
		pending_space = 0;
		if (rc == S3D_OK)
			rc = s3d_buf_appendc(&h->text, *p);
	}
	e->value_len = h->text.len - e->value;
	e->order = h->n++;
	return rc;
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
	return s3d_buf_printf(out, "%.8s/%s/%s/aws4_request", amz_date,
			      s3d_buf_str(&s->region), s3d_buf_str(&s->service));
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
			rc = s3d_buf_appendc(out, ';');
		if (rc == S3D_OK)
			rc = s3d_buf_append(out, h->base + h->e[i].name, h->e[i].name_len);
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
			rc = s3d_buf_appendc(out, ',');
		} else {
			rc = s3d_buf_append(out, h->base + e->name, e->name_len);
			if (rc == S3D_OK)
				rc = s3d_buf_appendc(out, ':');
		}
		if (rc == S3D_OK)
			rc = s3d_buf_append(out, h->base + e->value, e->value_len);
		if (rc == S3D_OK)
			rc = s3d_buf_appendc(out, '\n');
	}
	return rc;
}

static int canonical_query(const struct entries *q, s3d_buf *out)
{
	size_t i;
	int rc = S3D_OK;

	for (i = 0; rc == S3D_OK && i < q->n; i++) {
		if (i)
			rc = s3d_buf_appendc(out, '&');
		if (rc == S3D_OK)
			rc = s3d_buf_append(out, q->base + q->e[i].name, q->e[i].name_len);
		if (rc == S3D_OK)
			rc = s3d_buf_appendc(out, '=');
		if (rc == S3D_OK)
			rc = s3d_buf_append(out, q->base + q->e[i].value, q->e[i].value_len);
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
		rc = s3d_sigv4_amz_date(req->when, r->amz_date);
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
		s3d_buf cred;

		s3d_buf_init(&cred, 1024);
		rc = s3d_buf_printf(&cred, "%s/", s3d_buf_str(&s->access_key));
		if (rc == S3D_OK)
			rc = credential_scope(s, r->amz_date, &cred);
		snprintf(expires, sizeof(expires), "%lld", (long long)req->expires);
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
		s3d_buf_cleanup(&cred);
	}
	if (rc != S3D_OK)
		return rc;
	q->base = s3d_buf_str(&q->text);
	qsort_r(q->e, q->n, sizeof(q->e[0]), cmp_query, (void *)q->base);

	rc = s3d_buf_printf(&r->canonical_request, "%s\n", req->method);
	if (rc == S3D_OK)
		rc = canonical_uri(req, &r->canonical_request);
	if (rc == S3D_OK)
		rc = s3d_buf_appendc(&r->canonical_request, '\n');
	if (rc == S3D_OK)
		rc = canonical_query(q, &r->canonical_request);
	if (rc == S3D_OK)
		rc = s3d_buf_appendc(&r->canonical_request, '\n');
	if (rc == S3D_OK)
		rc = canonical_headers(h, &r->canonical_request);
	if (rc == S3D_OK)
		rc = s3d_buf_printf(&r->canonical_request, "\n%s\n%s",
				    s3d_buf_str(&r->signed_headers),
				    req->payload_hash ? req->payload_hash : S3D_UNSIGNED_PAYLOAD);
	/* the query form's final query string is the canonical one + signature */
	if (rc == S3D_OK && query_form)
		rc = canonical_query(q, &r->query);
	return rc;
}

static struct entries *entries_new(void)
{
	struct entries *e = malloc(sizeof(*e));

	if (!e)
		return NULL;
	e->n = 0;
	e->base = NULL;
	s3d_buf_init(&e->text, S3D_SIGV4_MAX_TEXT);
	return e;
}

static void entries_free(struct entries *e)
{
	if (!e)
		return;
	s3d_buf_cleanup(&e->text);
	free(e);
}

int s3d_sigv4_canonical_request(const s3d_signer *s, const s3d_sigv4_request *req,
				int query_form, s3d_sigv4_result *r)
{
	struct entries *h, *q;
	int rc;

	if (!s || !r)
		return S3D_E_INVAL;
	result_reset(r);
	h = entries_new();
	q = entries_new();
	rc = h && q ? build_canonical(s, req, query_form, r, h, q) : S3D_E_NOMEM;
	entries_free(h);
	entries_free(q);
	return rc;
}

int s3d_sigv4_string_to_sign(const s3d_signer *s, time_t when, s3d_sigv4_result *r)
{
	char hash[65];
	int rc;

	if (!s || !r || !r->canonical_request.len)
		return S3D_E_INVAL;
	rc = s3d_sigv4_amz_date(when, r->amz_date);
	if (rc == S3D_OK)
		rc = s3d_sha256_hex(r->canonical_request.ptr, r->canonical_request.len, hash);
	s3d_buf_reset(&r->string_to_sign);
	if (rc == S3D_OK)
		rc = s3d_buf_printf(&r->string_to_sign, ALGORITHM "\n%s\n", r->amz_date);
	if (rc == S3D_OK)
		rc = credential_scope(s, r->amz_date, &r->string_to_sign);
	if (rc == S3D_OK)
		rc = s3d_buf_printf(&r->string_to_sign, "\n%s", hash);
	return rc;
}

int s3d_sigv4_signature(s3d_signer *s, time_t when, s3d_sigv4_result *r)
{
	uint8_t key[32], sig[32];
	char date[17];
	int rc;

	if (!s || !r || !r->string_to_sign.len)
		return S3D_E_INVAL;
	rc = s3d_sigv4_amz_date(when, date);
	date[8] = 0;
	if (rc == S3D_OK)
		rc = signing_key(s, date, key);
	if (rc == S3D_OK)
		rc = hmac256(key, 32, r->string_to_sign.ptr, r->string_to_sign.len, sig);
	if (rc == S3D_OK)
		to_hex(sig, 32, r->signature);
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

	if (rc == S3D_OK)
		rc = s3d_buf_printf(&r->authorization,
				    ALGORITHM " Credential=%s/", s3d_buf_str(&s->access_key));
	if (rc == S3D_OK)
		rc = credential_scope(s, r->amz_date, &r->authorization);
	if (rc == S3D_OK)
		rc = s3d_buf_printf(&r->authorization, ", SignedHeaders=%s, Signature=%s",
				    s3d_buf_str(&r->signed_headers), r->signature);
	return rc;
}

int s3d_sigv4_presign(s3d_signer *s, const s3d_sigv4_request *req,
		      s3d_sigv4_result *r)
{
	int rc = sign_all(s, req, 1, r);

	if (rc == S3D_OK)
		rc = s3d_buf_printf(&r->query, "%sX-Amz-Signature=%s",
				    r->query.len ? "&" : "", r->signature);
	if (rc == S3D_OK && s->token.len && (req->flags & S3D_SIGV4_OMIT_SESSION_TOKEN)) {
		rc = s3d_buf_appendz(&r->query, "&X-Amz-Security-Token=");
		if (rc == S3D_OK)
			rc = s3d_uri_encode(&r->query, (const char *)s->token.ptr,
					    s->token.len, 0);
	}
	return rc;
}
