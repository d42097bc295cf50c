/*
 * Registry client of s3d (see regclient.h): pure parsers first (jansson for
 * JSON, a small RFC 7235 scanner for WWW-Authenticate, curl's URL API for
 * URLs), then the HTTP side on libcurl: registry calls one at a time on one
 * easy handle, presigned S3 PUTs in parallel on a multi handle, every byte
 * read from the file with pread when curl asks for it.
 */
#include "regclient.h"

#include "buf.h"
#include "err.h"
#include "s3_client.h"
#include "s3_xml.h"
#include "service.h"
#include "sigv4.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

#define MAX_PART_SIZE (5LL << 30)   /* S3's largest part and single PUT */
#define MIN_THRESHOLD (5LL << 20)
#define HEADER_NAME_MAX 128
#define HEADER_VALUE_MAX 8192
#define CHALLENGE_PARAMS_MAX 32     /* parameters of one challenge */
#define REPO_MAX 255
#define TAG_MAX 128
#define PROGRESS_MS 200
#define POLL_MS 200
#define BACKOFF_CAP_MS 10000

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

/*
 * n bytes of src into dst (cap >= 1), control characters replaced with '?',
 * cut on a UTF-8 character boundary when it does not fit.
 */
static void copy_clean(char *dst, size_t cap, const char *src, size_t n)
{
	size_t i;

	if (cap == 0)
		return;
	if (n > cap - 1) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	dst[n] = 0;
}

/* Appends src (NUL-terminated) to the string in dst, as copy_clean. */
static void append_clean(char *dst, size_t cap, const char *src)
{
	size_t len = strnlen(dst, cap);

	if (len + 1 < cap)
		copy_clean(dst + len, cap - len, src, strlen(src));
}

/* Replaces the control characters of a NUL-terminated field in place. */
static void clean_in_place(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* s3d_err_set whose message is cleaned (formats may carry answer bytes). */
static int perr(s3d_error *err, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int perr(s3d_error *err, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	s3d_err_vset(err, rc, fmt, ap);
	va_end(ap);
	if (err)
		clean_in_place(err->message);
	return rc;
}

static int is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
	return is_alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* RFC 7235 token68 characters (without the trailing '='). */
static int is_t68(unsigned char c)
{
	return is_alnum(c) || (c && strchr("-._~+/", c));
}

static int is_token(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

/* A header field value: HTAB, SP, VCHAR, obs-text; no CR, LF, NUL. */
static int is_field_value(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 0;
	}
	return 1;
}

/* Visible ASCII only (tokens, media types). */
static int is_vchar_ascii(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* WWW-Authenticate                                                         */
/* ------------------------------------------------------------------------ */

struct chal {
	s3d_reg_challenge c;
	int toobig;             /* a kept value did not fit its field */
	size_t names[CHALLENGE_PARAMS_MAX][2]; /* offset, length of each name */
	int nnames;
};

static void skip_ws(const char *v, size_t n, size_t *i)
{
	while (*i < n && (v[*i] == ' ' || v[*i] == '\t'))
		(*i)++;
}

/* Where a parameter's value goes (NULL: dropped). */
static char *param_field(struct chal *ch, const char *name, size_t len, size_t *cap)
{
	static const struct {
		const char *name;
		size_t off, cap;
	} known[] = {
		{ "realm", offsetof(s3d_reg_challenge, realm), sizeof(((s3d_reg_challenge *)0)->realm) },
		{ "service", offsetof(s3d_reg_challenge, service),
		  sizeof(((s3d_reg_challenge *)0)->service) },
		{ "scope", offsetof(s3d_reg_challenge, scope), sizeof(((s3d_reg_challenge *)0)->scope) },
		{ "error", offsetof(s3d_reg_challenge, error), sizeof(((s3d_reg_challenge *)0)->error) },
	};
	size_t k;

	if (ch->c.scheme == S3D_REG_AUTH_NONE)
		return NULL;
	for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
		if (strlen(known[k].name) == len && strncasecmp(known[k].name, name, len) == 0) {
			*cap = known[k].cap;
			return (char *)&ch->c + known[k].off;
		}
	return NULL;
}

/*
 * One auth-param at v[*i] (its name already read: v[start..start+len), *i
 * after the '='): BWS, then a token or a quoted-string, into its field.
 */
static int parse_param(const char *v, size_t n, size_t *i, size_t start, size_t len,
		       struct chal *ch)
{
	size_t cap = 0, out = 0;
	char *dst;
	int k;

	for (k = 0; k < ch->nnames; k++)
		if (ch->names[k][1] == len && strncasecmp(v + ch->names[k][0], v + start, len) == 0)
			return S3D_E_PROTOCOL; /* a repeated parameter */
	if (ch->nnames == CHALLENGE_PARAMS_MAX)
		return S3D_E_PROTOCOL;
	ch->names[ch->nnames][0] = start;
	ch->names[ch->nnames++][1] = len;
	dst = param_field(ch, v + start, len, &cap);
	skip_ws(v, n, i);
	if (*i < n && v[*i] == '"') {
		for ((*i)++;; (*i)++) {
			unsigned char c;

			if (*i >= n)
				return S3D_E_PROTOCOL; /* unterminated */
			c = (unsigned char)v[*i];
			if (c == '"')
				break;
			if (c == '\\') {
				if (++(*i) >= n)
					return S3D_E_PROTOCOL;
				c = (unsigned char)v[*i];
			}
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return S3D_E_PROTOCOL;
			if (dst) {
				if (out + 1 < cap)
					dst[out++] = (char)c;
				else
					ch->toobig = 1;
			}
		}
		(*i)++;
	} else {
		size_t s = *i;

		while (*i < n && is_tchar((unsigned char)v[*i]))
			(*i)++;
		if (*i == s)
			return S3D_E_PROTOCOL;
		if (dst) {
			if (*i - s < cap)
				out = *i - s;
			else
				ch->toobig = 1;
			memcpy(dst, v + s, out);
		}
	}
	if (dst)
		dst[out] = 0;
	return S3D_OK;
}

/* After an element: OWS, then a comma or the end. */
static int element_end(const char *v, size_t n, size_t *i)
{
	skip_ws(v, n, i);
	return *i == n || v[*i] == ',' ? S3D_OK : S3D_E_PROTOCOL;
}

/* The first Bearer challenge wins, else the first Basic one. */
static void keep_best(const struct chal *cur, struct chal *best)
{
	if (cur->c.scheme == S3D_REG_AUTH_BEARER && best->c.scheme != S3D_REG_AUTH_BEARER)
		*best = *cur;
	else if (cur->c.scheme == S3D_REG_AUTH_BASIC && best->c.scheme == S3D_REG_AUTH_NONE)
		*best = *cur;
}

/* A new challenge at v[*i] whose scheme is v[s..e) and *i after its blanks. */
static int parse_scheme_rest(const char *v, size_t n, size_t *i, size_t e, struct chal *cur)
{
	size_t k, t68end, m, ts, te;

	if (*i == n || v[*i] == ',')
		return S3D_OK; /* scheme alone */
	if (*i == e)
		return S3D_E_PROTOCOL; /* no blank after the scheme */
	k = *i;
	while (k < n && is_t68((unsigned char)v[k]))
		k++;
	t68end = k;
	while (k < n && v[k] == '=')
		k++;
	m = k;
	skip_ws(v, n, &m);
	if (t68end > *i && (m == n || v[m] == ',')) {
		*i = m; /* token68: nothing we use */
		return S3D_OK;
	}
	/* the first auth-param */
	ts = *i;
	while (*i < n && is_tchar((unsigned char)v[*i]))
		(*i)++;
	te = *i;
	skip_ws(v, n, i);
	if (te == ts || *i == n || v[*i] != '=')
		return S3D_E_PROTOCOL;
	(*i)++;
	if (parse_param(v, n, i, ts, te - ts, cur) != S3D_OK)
		return S3D_E_PROTOCOL;
	return element_end(v, n, i);
}

int s3d_reg_parse_challenge(const char *v, size_t n, s3d_reg_challenge *out)
{
	struct chal *cur = NULL, *best = NULL;
	size_t i = 0, s, e;
	int have = 0, rc = S3D_OK;

	if (!out || (!v && n))
		return S3D_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (n > S3D_REG_HEADER_MAX)
		return S3D_E_TOOBIG;
	cur = calloc(1, sizeof(*cur));
	best = calloc(1, sizeof(*best));
	if (!cur || !best) {
		rc = S3D_E_NOMEM;
		goto out;
	}
	while (rc == S3D_OK) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		if (i == n)
			break;
		s = i;
		while (i < n && is_tchar((unsigned char)v[i]))
			i++;
		e = i;
		if (e == s) {
			rc = S3D_E_PROTOCOL;
			break;
		}
		skip_ws(v, n, &i);
		if (i < n && v[i] == '=') {
			/* an auth-param of the current challenge */
			i++;
			if (!have)
				rc = S3D_E_PROTOCOL; /* a parameter before any scheme */
			else
				rc = parse_param(v, n, &i, s, e - s, cur);
			if (rc == S3D_OK)
				rc = element_end(v, n, &i);
			continue;
		}
		if (have)
			keep_best(cur, best);
		memset(cur, 0, sizeof(*cur));
		have = 1;
		if (e - s == 6 && strncasecmp(v + s, "bearer", 6) == 0)
			cur->c.scheme = S3D_REG_AUTH_BEARER;
		else if (e - s == 5 && strncasecmp(v + s, "basic", 5) == 0)
			cur->c.scheme = S3D_REG_AUTH_BASIC;
		rc = parse_scheme_rest(v, n, &i, e, cur);
	}
	if (rc == S3D_OK && have)
		keep_best(cur, best);
	if (rc == S3D_OK && best->c.scheme == S3D_REG_AUTH_NONE)
		rc = S3D_E_PROTOCOL;
	if (rc == S3D_OK && best->toobig)
		rc = S3D_E_TOOBIG;
	if (rc == S3D_OK)
		*out = best->c;
out:
	free(cur);
	free(best);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* JSON answers                                                             */
/* ------------------------------------------------------------------------ */

/* The object at the root of p, or NULL with *rc and err set. */
static json_t *load_object(const uint8_t *p, size_t n, const char *what, int *rc,
			   s3d_error *err)
{
	json_error_t je;
	json_t *root;

	if (!p && n) {
		*rc = perr(err, S3D_E_INVAL, "%s: no body", what);
		return NULL;
	}
	if (n > S3D_REG_JSON_MAX) {
		*rc = perr(err, S3D_E_TOOBIG, "%s: over %u bytes", what, S3D_REG_JSON_MAX);
		return NULL;
	}
	root = json_loadb(n ? (const char *)p : "", n, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		*rc = perr(err, S3D_E_PROTOCOL, "%s: not JSON (%s at byte %d)", what, je.text,
			   je.position);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		*rc = perr(err, S3D_E_PROTOCOL, "%s: not a JSON object", what);
		return NULL;
	}
	*rc = S3D_OK;
	return root;
}

/* A string member without NUL, or NULL (absent or another type: *bad). */
static const char *get_string(json_t *o, const char *name, size_t *len, int *bad)
{
	json_t *v = json_object_get(o, name);
	const char *s;

	*bad = 0;
	if (!v)
		return NULL;
	if (!json_is_string(v)) {
		*bad = 1;
		return NULL;
	}
	s = json_string_value(v);
	*len = json_string_length(v);
	if (strlen(s) != *len) {
		*bad = 1;
		return NULL;
	}
	return s;
}

/* An absolute http(s) URL of at most S3D_REG_URL_MAX bytes with a host,
 * spelled "http://" or "https://" (curl alone would take "http:/h"). */
static int check_abs_url(const char *s, size_t n)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL;
	int ok;

	if (n == 0 || n > S3D_REG_URL_MAX || !is_vchar_ascii(s, n) ||
	    (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0))
		return 0;
	u = curl_url();
	if (!u)
		return 0;
	ok = curl_url_set(u, CURLUPART_URL, s, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] &&
	     (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

void s3d_reg_presign_init(s3d_reg_presign *p)
{
	memset(p, 0, sizeof(*p));
}

void s3d_reg_presign_cleanup(s3d_reg_presign *p)
{
	size_t i;
	int k;

	if (!p)
		return;
	free(p->url);
	for (i = 0; i < p->nheaders; i++) {
		free((char *)p->headers[i].name);
		free((char *)p->headers[i].value);
	}
	free(p->headers);
	for (k = 0; p->part_urls && k < p->nparts; k++)
		free(p->part_urls[k]);
	free(p->part_urls);
	memset(p, 0, sizeof(*p));
}

/* method (absent, null or "PUT") and headers of a presign answer. */
static int parse_method_headers(json_t *root, s3d_reg_presign *out, s3d_error *err)
{
	json_t *h = json_object_get(root, "method"), *v;
	const char *key;
	size_t i, len;

	if (h && !json_is_null(h) &&
	    (!json_is_string(h) || strcmp(json_string_value(h), "PUT") != 0))
		return perr(err, S3D_E_PROTOCOL, "presign answer: method is not PUT");
	h = json_object_get(root, "headers");
	if (!h || json_is_null(h))
		return S3D_OK;
	if (!json_is_object(h))
		return perr(err, S3D_E_PROTOCOL, "presign answer: headers is not an object");
	if (json_object_size(h) > S3D_REG_MAX_HEADERS)
		return perr(err, S3D_E_TOOBIG, "presign answer: more than %d headers",
			    S3D_REG_MAX_HEADERS);
	out->headers = calloc(json_object_size(h) + 1, sizeof(*out->headers));
	if (!out->headers)
		return S3D_E_NOMEM;
	json_object_foreach(h, key, v) {
		const char *val;

		len = strlen(key);
		if (len > HEADER_NAME_MAX || !is_token(key, len))
			return perr(err, S3D_E_PROTOCOL, "presign answer: bad header name");
		for (i = 0; i < out->nheaders; i++)
			if (strcasecmp(out->headers[i].name, key) == 0)
				return perr(err, S3D_E_PROTOCOL,
					    "presign answer: header %s given twice", key);
		if (!json_is_string(v))
			return perr(err, S3D_E_PROTOCOL, "presign answer: header %s is not a string",
				    key);
		val = json_string_value(v);
		len = json_string_length(v);
		if (strlen(val) != len || len > HEADER_VALUE_MAX || !is_field_value(val, len))
			return perr(err, S3D_E_PROTOCOL, "presign answer: bad value of header %s",
				    key);
		out->headers[out->nheaders].name = strdup(key);
		out->headers[out->nheaders].value = strdup(val);
		if (!out->headers[out->nheaders].name || !out->headers[out->nheaders].value) {
			free((char *)out->headers[out->nheaders].name);
			free((char *)out->headers[out->nheaders].value);
			return S3D_E_NOMEM;
		}
		out->nheaders++;
	}
	return S3D_OK;
}

int s3d_reg_parse_presign_single(const uint8_t *p, size_t n, s3d_reg_presign *out,
				 s3d_error *err)
{
	json_t *root;
	const char *url;
	size_t len = 0;
	int rc, bad;

	if (!out)
		return S3D_E_INVAL;
	s3d_reg_presign_cleanup(out);
	root = load_object(p, n, "presign answer", &rc, err);
	if (!root)
		return rc;
	url = get_string(root, "presigned_url", &len, &bad);
	if (!url || !check_abs_url(url, len)) {
		rc = perr(err, S3D_E_PROTOCOL,
			  "presign answer: presigned_url is not an absolute http(s) URL");
		goto out;
	}
	rc = parse_method_headers(root, out, err);
	if (rc == S3D_OK && !(out->url = strdup(url)))
		rc = S3D_E_NOMEM;
out:
	json_decref(root);
	if (rc != S3D_OK)
		s3d_reg_presign_cleanup(out);
	return rc;
}

static int parse_parts_array(json_t *parts, int first, int count, s3d_reg_presign *out,
			     s3d_error *err)
{
	json_t *e, *num;
	const char *url;
	size_t i, len = 0;
	int bad, k;

	if (!json_is_array(parts) || json_array_size(parts) != (size_t)count)
		return perr(err, S3D_E_PROTOCOL, "presign answer: parts is not an array of %d URLs",
			    count);
	out->part_urls = calloc((size_t)count, sizeof(*out->part_urls));
	if (!out->part_urls)
		return S3D_E_NOMEM;
	out->nparts = count;
	out->first_part = first;
	json_array_foreach(parts, i, e) {
		num = json_object_get(e, "part_number");
		if (!json_is_object(e) || !json_is_integer(num) ||
		    json_integer_value(num) < first ||
		    json_integer_value(num) > (json_int_t)first + count - 1)
			return perr(err, S3D_E_PROTOCOL,
				    "presign answer: part %zu has no part number in %d..%d", i,
				    first, first + count - 1);
		k = (int)(json_integer_value(num) - first);
		if (out->part_urls[k])
			return perr(err, S3D_E_PROTOCOL, "presign answer: part %d given twice",
				    first + k);
		url = get_string(e, "url", &len, &bad);
		if (!url || !check_abs_url(url, len))
			return perr(err, S3D_E_PROTOCOL,
				    "presign answer: the URL of part %d is not an absolute http(s) URL",
				    first + k);
		out->part_urls[k] = strdup(url);
		if (!out->part_urls[k])
			return S3D_E_NOMEM;
	}
	return S3D_OK;
}

int s3d_reg_parse_presign_parts(const uint8_t *p, size_t n, int first, int count,
				s3d_reg_presign *out, s3d_error *err)
{
	json_t *root, *ps;
	int rc;

	if (!out || first < 1 || first > S3D_REG_MAX_PARTS || count < 1 ||
	    count > S3D_REG_MAX_PART_URLS || first - 1 > S3D_REG_MAX_PARTS - count)
		return S3D_E_INVAL;
	s3d_reg_presign_cleanup(out);
	root = load_object(p, n, "presign answer", &rc, err);
	if (!root)
		return rc;
	ps = json_object_get(root, "part_size");
	if (!json_is_integer(ps) || json_integer_value(ps) < 1 ||
	    json_integer_value(ps) > MAX_PART_SIZE) {
		rc = perr(err, S3D_E_PROTOCOL, "presign answer: part_size is not 1..5 GiB");
		goto out;
	}
	out->part_size = (int64_t)json_integer_value(ps);
	rc = parse_parts_array(json_object_get(root, "parts"), first, count, out, err);
	if (rc == S3D_OK)
		rc = parse_method_headers(root, out, err);
out:
	json_decref(root);
	if (rc != S3D_OK)
		s3d_reg_presign_cleanup(out);
	return rc;
}

int s3d_reg_parse_token(const uint8_t *p, size_t n, s3d_buf *token, s3d_error *err)
{
	const char *t;
	size_t len = 0;
	json_t *root;
	int rc, bad;

	if (!token)
		return S3D_E_INVAL;
	s3d_buf_reset(token);
	root = load_object(p, n, "token answer", &rc, err);
	if (!root)
		return rc;
	t = get_string(root, "token", &len, &bad);
	if (!t || len == 0)
		t = get_string(root, "access_token", &len, &bad);
	if (!t || len == 0)
		rc = perr(err, S3D_E_PROTOCOL, "token answer: no token");
	else if (len > S3D_REG_TOKEN_MAX)
		rc = perr(err, S3D_E_TOOBIG, "token answer: token over %u bytes", S3D_REG_TOKEN_MAX);
	else if (!is_vchar_ascii(t, len))
		rc = perr(err, S3D_E_PROTOCOL, "token answer: the token is not visible ASCII");
	else
		rc = s3d_buf_append(token, t, len);
	json_decref(root);
	return rc;
}

/* The first present string member of names. */
static const char *first_string(json_t *o, const char *const *names, size_t nn)
{
	const char *s;
	size_t i, len = 0;
	int bad;

	for (i = 0; i < nn; i++) {
		s = get_string(o, names[i], &len, &bad);
		if (s && len)
			return s;
	}
	return NULL;
}

/* The S3 part of an error's detail (our middleware sends a string; other
 * servers an object with the S3 code, message and request id). */
static void error_detail(json_t *detail, s3d_error *e)
{
	static const char *const codes[] = { "code", "Code", "s3_code" };
	static const char *const msgs[] = { "message", "Message", "s3_message" };
	static const char *const ids[] = { "request_id", "RequestId", "requestId",
					   "RequestID", "request-id" };
	const char *c, *m, *id;
	char part[256];

	if (json_is_string(detail) && json_string_length(detail) > 0) {
		snprintf(part, sizeof(part), " (%s)", json_string_value(detail));
		append_clean(e->message, sizeof(e->message), part);
		return;
	}
	if (!json_is_object(detail))
		return;
	c = first_string(detail, codes, 3);
	m = first_string(detail, msgs, 3);
	id = first_string(detail, ids, 5);
	if (c || m) {
		snprintf(part, sizeof(part), " (S3 %s%s%s)", c ? c : "", c && m ? ": " : "",
			 m ? m : "");
		append_clean(e->message, sizeof(e->message), part);
	}
	if (id)
		copy_clean(e->request_id, sizeof(e->request_id), id, strlen(id));
}

int s3d_reg_parse_error(const uint8_t *p, size_t n, s3d_error *err)
{
	json_t *root, *errors, *first;
	const char *code, *msg;
	size_t len = 0, count;
	s3d_error e;
	char more[32];
	int rc, bad;

	root = load_object(p, n, "error", &rc, NULL);
	if (!root)
		return rc == S3D_E_INVAL ? rc : S3D_E_PROTOCOL;
	rc = S3D_E_PROTOCOL;
	errors = json_object_get(root, "errors");
	if (!json_is_array(errors) || json_array_size(errors) == 0)
		goto out;
	first = json_array_get(errors, 0);
	code = json_is_object(first) ? get_string(first, "code", &len, &bad) : NULL;
	if (!code || len == 0)
		goto out;
	if (err) {
		e = *err;
		copy_clean(e.code, sizeof(e.code), code, len);
		e.message[0] = 0;
		msg = get_string(first, "message", &len, &bad);
		if (msg)
			copy_clean(e.message, sizeof(e.message), msg, len);
		error_detail(json_object_get(first, "detail"), &e);
		count = json_array_size(errors);
		if (count > 1) {
			snprintf(more, sizeof(more), " (+%zu more)", count - 1);
			append_clean(e.message, sizeof(e.message), more);
		}
		*err = e;
	}
	rc = S3D_OK;
out:
	json_decref(root);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Manifests and layouts                                                    */
/* ------------------------------------------------------------------------ */

int s3d_reg_is_index_type(const char *mt)
{
	return mt && (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0);
}

static int is_manifest_type(const char *mt)
{
	return strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0;
}

static int is_schema1_type(const char *mt)
{
	return strcmp(mt, MT_DOCKER_V1) == 0 || strcmp(mt, MT_DOCKER_V1_SIGNED) == 0;
}

int s3d_reg_valid_digest(const char *d)
{
	return s3d_svc_parse_digest(d, NULL, NULL) == S3D_OK;
}

/*
 * OCI digest grammar: algorithm ":" encoded (any algorithm). Not
 * s3d_svc_parse_digest's test: a descriptor's digest of another algorithm
 * is S3D_E_UNSUPPORTED only when it follows the whole grammar (its
 * encoded part too), else the manifest is malformed (S3D_E_PROTOCOL).
 */
static int digest_shape(const char *d, size_t n)
{
	size_t i = 0, s;

	for (;;) {
		s = i;
		while (i < n && ((d[i] >= 'a' && d[i] <= 'z') || (d[i] >= '0' && d[i] <= '9')))
			i++;
		if (i == s || i == n)
			return 0;
		if (d[i] == ':')
			break;
		if (!strchr("+._-", d[i]))
			return 0;
		i++;
	}
	if (++i == n)
		return 0;
	for (; i < n; i++)
		if (!is_alnum((unsigned char)d[i]) && !strchr("=_-", d[i]))
			return 0;
	return 1;
}

/* A media type: visible ASCII with one '/', at most 255 bytes. */
static int media_type_ok(const char *s, size_t n)
{
	const char *slash = memchr(s, '/', n);

	return n > 2 && n < sizeof(((s3d_reg_desc *)0)->media_type) && is_vchar_ascii(s, n) &&
	       slash && slash != s && slash != s + n - 1;
}

static int parse_desc(json_t *d, const char *what, s3d_reg_desc *out, s3d_error *err)
{
	const char *mt, *dg;
	size_t mlen = 0, dlen = 0, i;
	json_t *size, *urls, *u;
	int bad;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(d))
		return perr(err, S3D_E_PROTOCOL, "%s is not an object", what);
	mt = get_string(d, "mediaType", &mlen, &bad);
	if (!mt || !media_type_ok(mt, mlen))
		return perr(err, S3D_E_PROTOCOL, "%s: missing or bad mediaType", what);
	dg = get_string(d, "digest", &dlen, &bad);
	if (!dg || !digest_shape(dg, dlen))
		return perr(err, S3D_E_PROTOCOL, "%s: missing or bad digest", what);
	if (!s3d_reg_valid_digest(dg))
		return perr(err, strncmp(dg, "sha256:", 7) == 0 ? S3D_E_PROTOCOL : S3D_E_UNSUPPORTED,
			    "%s: digest %.80s is not sha256:<64 lower-case hex digits>", what, dg);
	size = json_object_get(d, "size");
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return perr(err, S3D_E_PROTOCOL, "%s: missing or negative size", what);
	urls = json_object_get(d, "urls");
	if (urls && !json_is_null(urls)) {
		if (!json_is_array(urls))
			return perr(err, S3D_E_PROTOCOL, "%s: urls is not an array", what);
		json_array_foreach(urls, i, u)
			if (!json_is_string(u))
				return perr(err, S3D_E_PROTOCOL, "%s: urls holds a non-string", what);
		out->foreign = json_array_size(urls) > 0;
	}
	memcpy(out->media_type, mt, mlen + 1);
	memcpy(out->digest, dg, dlen + 1);
	out->size = (int64_t)json_integer_value(size);
	out->is_manifest = is_manifest_type(mt) || s3d_reg_is_index_type(mt);
	if (strstr(mt, "nondistributable") || strstr(mt, ".foreign."))
		out->foreign = 1;
	return S3D_OK;
}

void s3d_reg_manifest_init(s3d_reg_manifest *m)
{
	memset(m, 0, sizeof(*m));
}

void s3d_reg_manifest_cleanup(s3d_reg_manifest *m)
{
	if (!m)
		return;
	free(m->descs);
	memset(m, 0, sizeof(*m));
}

static int parse_desc_array(json_t *a, const char *what, s3d_reg_manifest *out,
			    s3d_error *err)
{
	char name[48];
	json_t *d;
	size_t i;
	int rc;

	json_array_foreach(a, i, d) {
		snprintf(name, sizeof(name), "%s[%zu]", what, i);
		rc = parse_desc(d, name, &out->descs[out->ndescs], err);
		if (rc != S3D_OK)
			return rc;
		out->ndescs++;
	}
	return S3D_OK;
}

/* schemaVersion and mediaType of a manifest document. */
static int check_header(json_t *root, s3d_reg_manifest *out, s3d_error *err)
{
	json_t *sv = json_object_get(root, "schemaVersion");
	const char *mt;
	size_t len = 0;
	int bad;

	if (sv && !json_is_integer(sv))
		return perr(err, S3D_E_PROTOCOL, "manifest: schemaVersion is not a number");
	if (sv && json_integer_value(sv) == 1)
		return perr(err, S3D_E_UNSUPPORTED, "manifest: schema 1 is not supported");
	if (sv && json_integer_value(sv) != 2)
		return perr(err, S3D_E_PROTOCOL, "manifest: schemaVersion is not 2");
	mt = get_string(root, "mediaType", &len, &bad);
	if (bad)
		return perr(err, S3D_E_PROTOCOL, "manifest: mediaType is not a string");
	if (mt && !media_type_ok(mt, len))
		return perr(err, S3D_E_PROTOCOL, "manifest: bad mediaType");
	if (mt && is_schema1_type(mt))
		return perr(err, S3D_E_UNSUPPORTED, "manifest: schema 1 is not supported");
	if (mt)
		memcpy(out->media_type, mt, len + 1);
	return S3D_OK;
}

int s3d_reg_parse_manifest(const uint8_t *p, size_t n, s3d_reg_manifest *out, s3d_error *err)
{
	json_t *root, *manifests, *config, *layers;
	size_t count;
	int rc;

	if (!out)
		return S3D_E_INVAL;
	s3d_reg_manifest_cleanup(out);
	root = load_object(p, n, "manifest", &rc, err);
	if (!root)
		return rc;
	rc = check_header(root, out, err);
	if (rc != S3D_OK)
		goto out;
	manifests = json_object_get(root, "manifests");
	config = json_object_get(root, "config");
	layers = json_object_get(root, "layers");
	if (!manifests == !config) {
		rc = perr(err, S3D_E_PROTOCOL, "manifest: %s",
			  manifests ? "both manifests and config" : "neither manifests nor config");
		goto out;
	}
	if ((manifests && !json_is_array(manifests)) || (config && !json_is_object(config)) ||
	    (layers && !json_is_null(layers) && !json_is_array(layers)) || (manifests && layers)) {
		rc = perr(err, S3D_E_PROTOCOL, "manifest: manifests, config or layers malformed");
		goto out;
	}
	out->is_index = manifests != NULL;
	if (out->media_type[0] &&
	    ((out->is_index && is_manifest_type(out->media_type)) ||
	     (!out->is_index && s3d_reg_is_index_type(out->media_type)))) {
		rc = perr(err, S3D_E_PROTOCOL, "manifest: mediaType %s does not fit its content",
			  out->media_type);
		goto out;
	}
	count = manifests ? json_array_size(manifests)
			  : 1 + (json_is_array(layers) ? json_array_size(layers) : 0);
	if (count > S3D_REG_MAX_DESCS) {
		rc = perr(err, S3D_E_TOOBIG, "manifest: more than %d descriptors", S3D_REG_MAX_DESCS);
		goto out;
	}
	out->descs = calloc(count ? count : 1, sizeof(*out->descs));
	if (!out->descs) {
		rc = S3D_E_NOMEM;
		goto out;
	}
	if (manifests) {
		rc = parse_desc_array(manifests, "manifests", out, err);
	} else {
		rc = parse_desc(config, "config", &out->descs[0], err);
		if (rc == S3D_OK) {
			out->ndescs = 1;
			if (json_is_array(layers))
				rc = parse_desc_array(layers, "layers", out, err);
		}
	}
out:
	json_decref(root);
	if (rc != S3D_OK)
		s3d_reg_manifest_cleanup(out);
	return rc;
}

int s3d_reg_parse_oci_layout(const uint8_t *p, size_t n, s3d_error *err)
{
	const char *v;
	size_t len = 0;
	json_t *root;
	int rc, bad;

	root = load_object(p, n, "oci-layout", &rc, err);
	if (!root)
		return rc;
	v = get_string(root, "imageLayoutVersion", &len, &bad);
	if (!v)
		rc = perr(err, S3D_E_PROTOCOL, "oci-layout: no imageLayoutVersion");
	else if (strncmp(v, "1.", 2) != 0)
		rc = perr(err, S3D_E_UNSUPPORTED, "oci-layout: version %.32s is not 1.x", v);
	json_decref(root);
	return rc;
}

int s3d_reg_build_index(const uint8_t *p, size_t n, s3d_buf *out, s3d_error *err)
{
	s3d_reg_manifest m;
	json_t *root = NULL;
	size_t need;
	int rc;

	if (!out)
		return S3D_E_INVAL;
	s3d_reg_manifest_init(&m);
	rc = s3d_reg_parse_manifest(p, n, &m, err);
	if (rc == S3D_OK && !m.is_index)
		rc = perr(err, S3D_E_PROTOCOL, "index.json has no manifests");
	if (rc == S3D_OK && m.media_type[0] && !s3d_reg_is_index_type(m.media_type))
		rc = perr(err, S3D_E_PROTOCOL, "index.json: mediaType %s is not an index",
			  m.media_type);
	if (rc == S3D_OK)
		root = load_object(p, n, "index.json", &rc, err);
	if (rc != S3D_OK)
		goto out;
	if ((!m.media_type[0] &&
	     json_object_set_new(root, "mediaType", json_string(MT_OCI_INDEX)) != 0) ||
	    json_object_set_new(root, "schemaVersion", json_integer(2)) != 0) {
		rc = S3D_E_NOMEM;
		goto out;
	}
	need = json_dumpb(root, NULL, 0, JSON_COMPACT);
	if (need == 0) {
		rc = S3D_E_NOMEM;
		goto out;
	}
	s3d_buf_reset(out);
	rc = s3d_buf_reserve(out, need);
	if (rc == S3D_OK && json_dumpb(root, (char *)out->ptr, need, JSON_COMPACT) != need)
		rc = S3D_E_NOMEM;
	if (rc == S3D_OK) {
		out->len = need;
		out->ptr[need] = 0;
	}
out:
	json_decref(root);
	s3d_reg_manifest_cleanup(&m);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Names and URLs                                                           */
/* ------------------------------------------------------------------------ */

int s3d_reg_valid_repo(const char *repo)
{
	return s3d_svc_check_repo(repo, NULL) == S3D_OK;
}

int s3d_reg_valid_tag(const char *tag)
{
	size_t i, n;

	if (!tag)
		return 0;
	n = strlen(tag);
	if (n == 0 || n > TAG_MAX || !(is_alnum((unsigned char)tag[0]) || tag[0] == '_'))
		return 0;
	for (i = 1; i < n; i++)
		if (!is_alnum((unsigned char)tag[i]) && !strchr("_.-", tag[i]))
			return 0;
	return 1;
}

/* Scheme of a parsed URL is http or https. */
static int url_http(CURLU *u)
{
	char *scheme = NULL;
	int ok = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		 (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);

	curl_free(scheme);
	return ok;
}

int s3d_reg_url_append(const char *base, const char *url, const s3d_kv *q, size_t nq,
		       s3d_buf *out)
{
	CURLU *u = NULL;
	char *full = NULL, *pair = NULL;
	size_t i, len;
	int rc = S3D_E_INVAL;

	if (!url || !out || (nq && !q))
		return S3D_E_INVAL;
	if (strlen(url) > S3D_REG_URL_MAX || (base && strlen(base) > S3D_REG_URL_MAX))
		return S3D_E_TOOBIG;
	u = curl_url();
	if (!u)
		return S3D_E_NOMEM;
	/* a relative url resolves against the URL already held */
	if (base && curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
		goto out;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK || !url_http(u))
		goto out;
	for (i = 0; i < nq; i++) {
		if (!q[i].name || !q[i].value || !q[i].name[0])
			goto out;
		len = strlen(q[i].name) + strlen(q[i].value) + 2;
		pair = malloc(len);
		if (!pair) {
			rc = S3D_E_NOMEM;
			goto out;
		}
		snprintf(pair, len, "%s=%s", q[i].name, q[i].value);
		if (curl_url_set(u, CURLUPART_QUERY, pair, CURLU_APPENDQUERY | CURLU_URLENCODE) !=
		    CURLUE_OK)
			goto out;
		free(pair);
		pair = NULL;
	}
	if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK)
		goto out;
	len = strlen(full);
	if (len > S3D_REG_URL_MAX) {
		rc = S3D_E_TOOBIG;
		goto out;
	}
	s3d_buf_reset(out);
	rc = s3d_buf_append(out, full, len);
out:
	free(pair);
	curl_free(full);
	curl_url_cleanup(u);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* HTTP: registry calls                                                     */
/* ------------------------------------------------------------------------ */

struct s3d_reg {
	CURL *easy;
	char *base;             /* scheme://host[:port][/prefix], no trailing '/' */
	char *ca_file;
	s3d_buf user;           /* "user:password", wiped on close */
	s3d_buf token;          /* the Bearer token, wiped on close */
	char repo[REPO_MAX + 1]; /* of the last call naming one: the scope of a
				   token asked for on an upload URL */
	int mode;               /* credentials sent: enum s3d_reg_auth_scheme */
	s3d_reg_config cfg;     /* numbers; the strings above are copies */
};

/* One registry (or token server) call. */
struct rcall {
	const char *method;     /* GET HEAD POST PUT DELETE */
	const char *url;        /* absolute */
	const char *repo;       /* scope of a token to ask for (NULL: none) */
	const uint8_t *body;    /* POST / PUT body (may be NULL with body_len 0) */
	size_t body_len;
	size_t body_off;
	const char *content_type;
	s3d_buf *resp;          /* the answer's body, bounded by its max */
	int token_call;         /* to the token server: Basic credentials when
				   we have them, no 401 handling */
	int no_retry;           /* one attempt, whatever the failure */
	int toobig;
	long status;
	s3d_buf url_buf;        /* rcall_init/rcall_cleanup: the URL built */
	s3d_buf resp_buf;       /*   and the answer kept (wiped) */
	char errbuf[CURL_ERROR_SIZE];
};

/* c zeroed for method, with its URL buffer and (resp_max > 0) an answer buffer. */
static void rcall_init(struct rcall *c, const char *method, size_t resp_max)
{
	memset(c, 0, sizeof(*c));
	c->method = method;
	s3d_buf_init(&c->url_buf, S3D_REG_URL_MAX);
	s3d_buf_init(&c->resp_buf, resp_max);
	c->resp = resp_max ? &c->resp_buf : NULL;
}

/* The answer is wiped: a presign answer's URLs are credentials. */
static void rcall_cleanup(struct rcall *c)
{
	s3d_buf_cleanup(&c->url_buf);
	s3d_buf_cleanup_wipe(&c->resp_buf);
}

static size_t on_call_body(char *p, size_t sz, size_t n, void *ud)
{
	struct rcall *c = ud;

	if (c->resp && s3d_buf_append(c->resp, p, sz * n) != S3D_OK) {
		c->toobig = 1;
		return 0;
	}
	return sz * n;
}

static size_t on_call_read(char *p, size_t sz, size_t n, void *ud)
{
	struct rcall *c = ud;
	size_t got = c->body_len - c->body_off;

	if (got > sz * n)
		got = sz * n;
	if (got)
		memcpy(p, c->body + c->body_off, got);
	c->body_off += got;
	return got;
}

static int on_call_seek(void *ud, curl_off_t off, int origin)
{
	struct rcall *c = ud;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > c->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	c->body_off = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* The value of header name in the last answer of easy (NULL: absent). */
static const char *answer_header(CURL *easy, const char *name)
{
	struct curl_header *h = NULL;

	if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h)
		return NULL;
	return h->value;
}

/* Appends "Authorization: ..." for mode to *h; the temporary is wiped. */
static int add_auth(s3d_reg *r, int mode, struct curl_slist **h)
{
	s3d_buf line;
	char *b64 = NULL;
	size_t cap;
	struct curl_slist *n;
	int rc = S3D_OK;

	if (mode == S3D_REG_AUTH_NONE || (mode == S3D_REG_AUTH_BASIC && r->user.len == 0) ||
	    (mode == S3D_REG_AUTH_BEARER && r->token.len == 0))
		return S3D_OK;
	s3d_buf_init(&line, 64 * 1024);
	if (mode == S3D_REG_AUTH_BASIC) {
		cap = 4 * ((r->user.len + 2) / 3) + 1;
		b64 = malloc(cap);
		rc = b64 ? s3d_base64(r->user.ptr, r->user.len, b64, cap) : S3D_E_NOMEM;
		if (rc == S3D_OK)
			rc = s3d_buf_printf(&line, "Authorization: Basic %s", b64);
		if (b64) {
			OPENSSL_cleanse(b64, cap);
			free(b64);
		}
	} else {
		rc = s3d_buf_printf(&line, "Authorization: Bearer %s", s3d_buf_str(&r->token));
	}
	if (rc == S3D_OK) {
		n = curl_slist_append(*h, s3d_buf_str(&line));
		if (n)
			*h = n;
		else
			rc = S3D_E_NOMEM;
	}
	s3d_buf_cleanup_wipe(&line);
	return rc;
}

/* Frees a header list after wiping every entry (one carries credentials). */
static void free_headers(struct curl_slist *h)
{
	struct curl_slist *p;

	for (p = h; p; p = p->next)
		OPENSSL_cleanse(p->data, strlen(p->data));
	curl_slist_free_all(h);
}

static CURLcode tls_options(CURL *easy, const s3d_reg *r)
{
	CURLcode cc = CURLE_OK;

	if (r->cfg.skip_verify) {
		cc = curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (cc == CURLE_OK && r->ca_file)
		cc = curl_easy_setopt(easy, CURLOPT_CAINFO, r->ca_file);
	return cc;
}

/* Options every transfer of ours shares. */
static CURLcode common_options(CURL *easy, const s3d_reg *r, char *errbuf)
{
	CURLcode cc = CURLE_OK;

#define SET(opt, val)                                          \
	do {                                                   \
		if (cc == CURLE_OK)                            \
			cc = curl_easy_setopt(easy, opt, val); \
	} while (0)
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_CONNECTTIMEOUT_MS, r->cfg.connect_timeout_ms);
	SET(CURLOPT_LOW_SPEED_LIMIT, 1024L);
	SET(CURLOPT_LOW_SPEED_TIME, r->cfg.low_speed_time_s);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_USERAGENT, "s3d/" S3D_VERSION);
	if (cc == CURLE_OK)
		cc = tls_options(easy, r);
	errbuf[0] = 0;
	return cc;
}

/* One attempt of c with the credentials of mode. */
static CURLcode call_once(s3d_reg *r, struct rcall *c, int mode, int *rc)
{
	struct curl_slist *h = NULL, *n;
	CURL *easy = r->easy;
	CURLcode cc;

	*rc = add_auth(r, mode, &h);
	if (*rc == S3D_OK) {
		char ct[320];

		/* "Content-Type:" alone stops curl's form type on an empty POST */
		snprintf(ct, sizeof(ct), "Content-Type:%s%s", c->content_type ? " " : "",
			 c->content_type ? c->content_type : "");
		n = curl_slist_append(h, ct);
		*rc = n ? (h = n, S3D_OK) : S3D_E_NOMEM;
	}
	if (*rc == S3D_OK) {
		n = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
		*rc = n ? (h = n, S3D_OK) : S3D_E_NOMEM;
	}
	if (*rc != S3D_OK) {
		free_headers(h);
		return CURLE_OK;
	}
	if (c->resp)
		s3d_buf_reset(c->resp);
	c->toobig = 0;
	c->body_off = 0;
	c->status = 0;
	curl_easy_reset(easy);
	cc = common_options(easy, r, c->errbuf);
	SET(CURLOPT_URL, c->url);
	SET(CURLOPT_HTTPHEADER, h);
	SET(CURLOPT_WRITEFUNCTION, on_call_body);
	SET(CURLOPT_WRITEDATA, c);
	if (strcmp(c->method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (strcmp(c->method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else if (strcmp(c->method, "POST") == 0) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
		SET(CURLOPT_POSTFIELDS, c->body_len ? (const char *)c->body : "");
	} else if (strcmp(c->method, "PUT") == 0) {
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_READFUNCTION, on_call_read);
		SET(CURLOPT_READDATA, c);
		SET(CURLOPT_SEEKFUNCTION, on_call_seek);
		SET(CURLOPT_SEEKDATA, c);
		SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->body_len);
	} else {
		SET(CURLOPT_CUSTOMREQUEST, c->method);
	}
	if (cc == CURLE_OK)
		cc = curl_easy_perform(easy);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &c->status);
	/* the easy handle keeps a pointer to the list until its next reset */
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
	free_headers(h);
	return cc;
}

/* "registry METHOD url" without the query (a Location's _state). */
static void call_resource(const struct rcall *c, const char *who, s3d_error *e)
{
	size_t n = strcspn(c->url, "?#");
	char line[sizeof(e->resource)];

	snprintf(line, sizeof(line), "%s %s %.*s", who, c->method, (int)n, c->url);
	copy_clean(e->resource, sizeof(e->resource), line, strlen(line));
}

static const char *status_code(long st)
{
	switch (st) {
	case 400: return "BAD_REQUEST";
	case 401: return "UNAUTHORIZED";
	case 403: return "DENIED";
	case 404: return "NOT_FOUND";
	case 405: return "UNSUPPORTED";
	case 409: return "CONFLICT";
	case 410: return "GONE";
	case 413: return "TOO_LARGE";
	case 416: return "RANGE_INVALID";
	case 429: return "TOOMANYREQUESTS";
	default: return st >= 500 ? "SERVER_ERROR" : "HTTP_ERROR";
	}
}

/* err from an error answer: the OCI body, else a code for the status and the
 * start of the body. The return code for the status (regclient.h). */
static int answer_error(const struct rcall *c, const char *who, s3d_error *err)
{
	s3d_error e;
	size_t n;

	memset(&e, 0, sizeof(e));
	if (!c->resp || c->resp->len == 0 ||
	    s3d_reg_parse_error(c->resp->ptr, c->resp->len, &e) != S3D_OK) {
		memset(&e, 0, sizeof(e));
		snprintf(e.code, sizeof(e.code), "%s", status_code(c->status));
		n = c->resp ? c->resp->len : 0;
		if (n > 160)
			n = 160;
		if (n) /* the start of a body that is no OCI error (a proxy's page) */
			copy_clean(e.message, sizeof(e.message), (const char *)c->resp->ptr, n);
	}
	e.http_status = (int)c->status;
	call_resource(c, who, &e);
	if (err) {
		e.attempts = err->attempts;
		*err = e;
	}
	if (c->status == 404)
		return S3D_E_NOTFOUND;
	if (c->status == 409)
		return S3D_E_CONFLICT;
	if (c->status == 410)
		return S3D_E_EXPIRED;
	if (strcmp(e.code, "DIGEST_INVALID") == 0)
		return S3D_E_DIGEST;
	if (strcmp(e.code, "UNSUPPORTED") == 0)
		return S3D_E_UNSUPPORTED;
	return S3D_E_S3;
}

/* answer_error with a sentence of ours in front of the server's message. */
static int auth_error(const struct rcall *c, const char *who, const char *why, s3d_error *err)
{
	s3d_error e;
	char msg[2 * sizeof(e.message)];
	int rc;

	memset(&e, 0, sizeof(e));
	rc = answer_error(c, who, &e);
	snprintf(msg, sizeof(msg), "%s%s%s", why, e.message[0] ? "; the server says: " : "",
		 e.message);
	copy_clean(e.message, sizeof(e.message), msg, strlen(msg));
	if (err)
		*err = e;
	return rc;
}

static int transport_error(const struct rcall *c, CURLcode cc, const char *who,
			   s3d_error *err)
{
	if (err) {
		int attempts = err->attempts;

		memset(err, 0, sizeof(*err));
		err->attempts = attempts;
		err->curl_code = (int)cc;
		copy_clean(err->message, sizeof(err->message),
			   c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc),
			   strlen(c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc)));
		call_resource(c, who, err);
	}
	return cc == CURLE_OPERATION_TIMEDOUT ? S3D_E_TIMEOUT : S3D_E_TRANSPORT;
}

/* A failure that is the same on every attempt: s3d_curl_permanent's, or
 * one of our callbacks stopped the transfer (out of memory, the file). */
static int permanent_cc(CURLcode cc)
{
	return s3d_curl_permanent(cc) || cc == CURLE_ABORTED_BY_CALLBACK ||
	       cc == CURLE_WRITE_ERROR || cc == CURLE_READ_ERROR;
}

static int call(s3d_reg *r, struct rcall *c, s3d_error *err);

/* GET realm?service=..&scope=repository:<repo>:pull,push, with Basic
 * credentials when we have them; the token into r->token. */
static int fetch_token(s3d_reg *r, const s3d_reg_challenge *ch, const char *repo,
		       s3d_error *err)
{
	s3d_kv q[2];
	s3d_buf scope;
	struct rcall t;
	size_t nq = 0;
	int rc;

	rcall_init(&t, "GET", S3D_REG_JSON_MAX);
	t.token_call = 1;
	s3d_buf_init(&scope, 2048);
	if (repo)
		rc = s3d_buf_printf(&scope, "repository:%s:pull,push", repo);
	else
		rc = s3d_buf_appendz(&scope, ch->scope);
	if (ch->service[0])
		q[nq++] = (s3d_kv){ "service", ch->service };
	if (scope.len)
		q[nq++] = (s3d_kv){ "scope", s3d_buf_str(&scope) };
	if (rc == S3D_OK && s3d_reg_url_append(NULL, ch->realm, q, nq, &t.url_buf) != S3D_OK)
		rc = perr(err, S3D_E_PROTOCOL, "the Bearer challenge's realm is not an http(s) URL");
	if (rc != S3D_OK)
		goto out;
	t.url = s3d_buf_str(&t.url_buf);
	rc = call(r, &t, err);
	if (rc == S3D_OK && t.status != 200)
		rc = auth_error(&t, "token", t.status == 401 || t.status == 403
					? "the token server refused the credentials"
					: "the token request failed", err);
	if (rc == S3D_OK) {
		OPENSSL_cleanse(r->token.ptr ? r->token.ptr : (uint8_t *)"", r->token.len);
		rc = s3d_reg_parse_token(t.resp->ptr, t.resp->len, &r->token, err);
		if (rc != S3D_OK && err)
			call_resource(&t, "token", err);
	}
	if (rc == S3D_OK)
		r->mode = S3D_REG_AUTH_BEARER;
out:
	rcall_cleanup(&t);
	s3d_buf_cleanup(&scope);
	return rc;
}

/* The best challenge of the WWW-Authenticate headers of the last answer. */
static int last_challenge(s3d_reg *r, s3d_reg_challenge *out)
{
	s3d_reg_challenge ch;
	struct curl_header *h = NULL;
	size_t i, amount = 1;
	int found = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < amount && i < 16; i++) {
		if (curl_easy_header(r->easy, "WWW-Authenticate", i, CURLH_HEADER, -1, &h) !=
			    CURLHE_OK ||
		    !h)
			break;
		amount = h->amount;
		if (s3d_reg_parse_challenge(h->value, strlen(h->value), &ch) != S3D_OK)
			continue;
		if (!found || (ch.scheme == S3D_REG_AUTH_BEARER &&
			       out->scheme != S3D_REG_AUTH_BEARER)) {
			*out = ch;
			found = 1;
		}
	}
	return found;
}

/* A 401 to c sent with the credentials of sent: learn what to send next. */
static int on_unauthorized(s3d_reg *r, struct rcall *c, int sent, int fetched,
			   s3d_error *err)
{
	s3d_reg_challenge ch;

	if (!last_challenge(r, &ch))
		return auth_error(c, "registry",
				  "authentication required, but the registry sent no usable "
				  "WWW-Authenticate challenge",
				  err);
	if (ch.scheme == S3D_REG_AUTH_BASIC) {
		if (r->user.len == 0)
			return auth_error(c, "registry",
					  "the registry requires credentials (HTTP Basic)", err);
		if (sent == S3D_REG_AUTH_BASIC)
			return auth_error(c, "registry",
					  "authentication failed: the registry refused the credentials",
					  err);
		r->mode = S3D_REG_AUTH_BASIC;
		return S3D_OK;
	}
	if (fetched) {
		if (strcmp(ch.error, "insufficient_scope") == 0)
			return auth_error(c, "registry",
					  "the token does not grant pull and push on the repository",
					  err);
		return auth_error(c, "registry", "the registry refused the token", err);
	}
	return fetch_token(r, &ch, c->repo, err);
}

/*
 * Runs c to an HTTP answer: retries transport failures and 502/503/504,
 * answers a 401 with credentials (at most twice). S3D_OK with c->status set
 * for any other answer; the answer's headers stay readable on r->easy.
 */
static int call(s3d_reg *r, struct rcall *c, s3d_error *err)
{
	const char *who = c->token_call ? "token" : "registry";
	int retries = c->no_retry ? 0 : r->cfg.max_retries;
	int attempt = 0, rounds = 0, fetched = 0, sent, rc;
	CURLcode cc;

	if (c->repo)
		snprintf(r->repo, sizeof(r->repo), "%s", c->repo);
	else if (!c->token_call && r->repo[0])
		c->repo = r->repo;

	for (;;) {
		if (c->token_call)
			sent = r->user.len ? S3D_REG_AUTH_BASIC : S3D_REG_AUTH_NONE;
		else
			sent = r->mode;
		attempt++;
		cc = call_once(r, c, sent, &rc);
		if (err)
			err->attempts = attempt;
		if (rc != S3D_OK)
			return rc;
		if (c->toobig)
			return perr(err, S3D_E_TOOBIG, "the answer to %s is over %zu bytes", c->method,
				    c->resp->max);
		if (cc != CURLE_OK) {
			if (permanent_cc(cc) || attempt > retries)
				return transport_error(c, cc, who, err);
			s3d_sleep_ms(s3d_backoff_ms(r->cfg.retry_base_ms, BACKOFF_CAP_MS, attempt));
			continue;
		}
		if (c->status == 401 && !c->token_call && rounds < 2) {
			rounds++;
			rc = on_unauthorized(r, c, sent, fetched, err);
			if (rc != S3D_OK)
				return rc;
			fetched = r->mode == S3D_REG_AUTH_BEARER;
			attempt = 0;
			continue;
		}
		if ((c->status == 502 || c->status == 503 || c->status == 504) &&
		    attempt <= retries) {
			s3d_sleep_ms(s3d_backoff_ms(r->cfg.retry_base_ms, BACKOFF_CAP_MS, attempt));
			continue;
		}
		return S3D_OK;
	}
}

int s3d_reg_open(const s3d_reg_config *cfg, s3d_reg **out, s3d_error *err)
{
	CURLU *u = NULL;
	char *part = NULL, *full = NULL;
	s3d_reg *r = NULL;
	size_t len;
	int rc = S3D_E_INVAL;

	if (!out || !cfg || !cfg->url)
		return perr(err, S3D_E_INVAL, "no registry URL");
	*out = NULL;
	rc = s3d_client_global_init();
	if (rc != S3D_OK)
		return perr(err, rc, "libcurl did not initialize");
	rc = S3D_E_INVAL;
	u = curl_url();
	r = calloc(1, sizeof(*r));
	if (!u || !r) {
		rc = S3D_E_NOMEM;
		goto fail;
	}
	if (strlen(cfg->url) > 2048 || curl_url_set(u, CURLUPART_URL, cfg->url, 0) != CURLUE_OK ||
	    !url_http(u)) {
		rc = perr(err, S3D_E_INVAL, "the registry URL is not an http(s) URL");
		goto fail;
	}
	if (curl_url_get(u, CURLUPART_USER, &part, 0) != CURLUE_NO_USER ||
	    curl_url_get(u, CURLUPART_QUERY, &part, 0) != CURLUE_NO_QUERY ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) != CURLUE_NO_FRAGMENT) {
		rc = perr(err, S3D_E_INVAL,
			  "the registry URL must have no user, query or fragment (credentials go "
			  "in the configuration)");
		goto fail;
	}
	if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
		rc = S3D_E_NOMEM;
		goto fail;
	}
	len = strlen(full);
	while (len > 0 && full[len - 1] == '/')
		len--;
	r->base = strndup(full, len);
	r->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
	r->easy = curl_easy_init();
	s3d_buf_init(&r->user, 4096);
	s3d_buf_init(&r->token, S3D_REG_TOKEN_MAX);
	if (!r->base || (cfg->ca_file && !r->ca_file) || !r->easy) {
		rc = S3D_E_NOMEM;
		goto fail;
	}
	if (cfg->user && (!strchr(cfg->user, ':') || !is_field_value(cfg->user, strlen(cfg->user)) ||
			  s3d_buf_appendz(&r->user, cfg->user) != S3D_OK)) {
		rc = perr(err, S3D_E_INVAL, "credentials must be USER:PASSWORD (at most 4096 bytes)");
		goto fail;
	}
	r->cfg = *cfg;
	r->cfg.url = r->cfg.user = r->cfg.ca_file = NULL;
	if (r->cfg.connect_timeout_ms <= 0)
		r->cfg.connect_timeout_ms = 10000;
	if (r->cfg.low_speed_time_s <= 0)
		r->cfg.low_speed_time_s = 60;
	if (r->cfg.max_retries == 0)
		r->cfg.max_retries = 3;
	if (r->cfg.max_retries < 0)
		r->cfg.max_retries = 0;
	if (r->cfg.retry_base_ms <= 0)
		r->cfg.retry_base_ms = 500;
	curl_free(full);
	curl_url_cleanup(u);
	*out = r;
	return S3D_OK;
fail:
	curl_free(part);
	curl_free(full);
	curl_url_cleanup(u);
	s3d_reg_close(r);
	return rc;
}

void s3d_reg_close(s3d_reg *r)
{
	if (!r)
		return;
	if (r->easy)
		curl_easy_cleanup(r->easy);
	free(r->base);
	free(r->ca_file);
	s3d_buf_cleanup_wipe(&r->user);
	s3d_buf_cleanup_wipe(&r->token);
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
}

/* base/v2/<repo>/<tail> */
static int repo_url(s3d_reg *r, const char *repo, const char *tail, const char *ref,
		    s3d_buf *out)
{
	s3d_buf_reset(out);
	return s3d_buf_printf(out, "%s/v2/%s/%s%s", r->base, repo, tail, ref ? ref : "");
}

#define ANY_2XX 2 /* in a list of accepted statuses: 200 .. 299 */

/*
 * Runs c (to c->url, else to the URL built in c->url_buf) through call():
 * S3D_OK when the answer's status is one of ok (0-terminated), else the
 * registry's error (answer_error). The answer's body stays in c->resp, its
 * headers on r->easy.
 */
static int request(s3d_reg *r, struct rcall *c, const long *ok, s3d_error *err)
{
	int rc;

	if (!c->url)
		c->url = s3d_buf_str(&c->url_buf);
	rc = call(r, c, err);
	if (rc != S3D_OK)
		return rc;
	for (; *ok; ok++)
		if (c->status == *ok || (*ok == ANY_2XX && c->status >= 200 && c->status <= 299))
			return S3D_OK;
	return answer_error(c, "registry", err);
}

/* The answer's Docker-Content-Digest, when it has one, is want. */
static int answer_digest_is(s3d_reg *r, const struct rcall *c, const char *want,
			    int manifest, s3d_error *err)
{
	const char *got = answer_header(r->easy, "Docker-Content-Digest");

	if (!got || strcmp(got, want) == 0)
		return S3D_OK;
	if (manifest)
		perr(err, S3D_E_DIGEST, "the registry answered digest %.80s for %s", got, want);
	else
		perr(err, S3D_E_DIGEST, "the registry stored %.80s, not %s", got, want);
	if (err)
		call_resource(c, "registry", err);
	return S3D_E_DIGEST;
}

int s3d_reg_start_upload(s3d_reg *r, const char *repo, s3d_buf *location, s3d_error *err)
{
	static const long ok[] = { 202, 0 };
	struct rcall c;
	const char *loc;
	int rc;

	if (!r || !location || !s3d_reg_valid_repo(repo))
		return perr(err, S3D_E_INVAL, "invalid repository name");
	rcall_init(&c, "POST", S3D_REG_ERR_BODY_MAX);
	c.repo = repo;
	rc = repo_url(r, repo, "blobs/uploads/", NULL, &c.url_buf);
	if (rc == S3D_OK)
		rc = request(r, &c, ok, err);
	if (rc == S3D_OK) {
		loc = answer_header(r->easy, "Location");
		if (!loc || !loc[0] || !is_vchar_ascii(loc, strlen(loc)) ||
		    s3d_reg_url_append(c.url, loc, NULL, 0, location) != S3D_OK) {
			rc = perr(err, S3D_E_PROTOCOL,
				  "the registry answered 202 without a usable Location");
			if (err)
				call_resource(&c, "registry", err);
		}
	}
	rcall_cleanup(&c);
	return rc;
}

/* GET location?presigned=true&... into out (parts: first, count; else single). */
static int presign_call(s3d_reg *r, const char *location, const char *digest, int64_t size,
			int first, int count, s3d_reg_presign *out, s3d_error *err)
{
	static const long ok[] = { 200, 0 };
	char sz[24], fp[16], np[16];
	s3d_kv q[5];
	size_t nq = 0;
	struct rcall c;
	int rc;

	if (!r || !location || !out || (digest && !s3d_reg_valid_digest(digest)))
		return perr(err, S3D_E_INVAL, "invalid presign request");
	q[nq++] = (s3d_kv){ "presigned", "true" };
	if (count > 0) {
		snprintf(np, sizeof(np), "%d", count);
		snprintf(fp, sizeof(fp), "%d", first);
		q[nq++] = (s3d_kv){ "parts", np };
		q[nq++] = (s3d_kv){ "first_part", fp };
	}
	if (size >= 0) {
		snprintf(sz, sizeof(sz), "%lld", (long long)size);
		q[nq++] = (s3d_kv){ "size", sz };
	}
	if (digest)
		q[nq++] = (s3d_kv){ "digest", digest };
	rcall_init(&c, "GET", S3D_REG_JSON_MAX);
	rc = s3d_reg_url_append(NULL, location, q, nq, &c.url_buf);
	if (rc != S3D_OK)
		rc = perr(err, rc, "the upload location is not a usable URL");
	if (rc == S3D_OK)
		rc = request(r, &c, ok, err);
	if (rc == S3D_OK) {
		rc = count > 0 ? s3d_reg_parse_presign_parts(c.resp->ptr, c.resp->len, first, count,
							     out, err)
			       : s3d_reg_parse_presign_single(c.resp->ptr, c.resp->len, out, err);
		if (rc != S3D_OK && err) {
			err->http_status = (int)c.status;
			call_resource(&c, "registry", err);
		}
	}
	rcall_cleanup(&c);
	return rc;
}

int s3d_reg_presign_single(s3d_reg *r, const char *location, const char *digest,
			   int64_t size, s3d_reg_presign *out, s3d_error *err)
{
	return presign_call(r, location, digest, size, 0, 0, out, err);
}

int s3d_reg_presign_parts(s3d_reg *r, const char *location, const char *digest,
			  int64_t size, int first, int count, s3d_reg_presign *out,
			  s3d_error *err)
{
	if (first < 1 || count < 1 || count > S3D_REG_MAX_PART_URLS ||
	    first > S3D_REG_MAX_PARTS - count + 1)
		return perr(err, S3D_E_INVAL, "part numbers out of range");
	return presign_call(r, location, digest, size, first, count, out, err);
}

int s3d_reg_finalize(s3d_reg *r, const char *location, const char *digest, s3d_error *err)
{
	static const long ok[] = { 201, 0 };
	s3d_kv q = { "digest", digest };
	struct rcall c;
	int rc;

	if (!r || !location || !s3d_reg_valid_digest(digest))
		return perr(err, S3D_E_INVAL, "invalid finalize request");
	rcall_init(&c, "PUT", S3D_REG_ERR_BODY_MAX);
	rc = s3d_reg_url_append(NULL, location, &q, 1, &c.url_buf);
	if (rc == S3D_OK)
		rc = request(r, &c, ok, err);
	if (rc == S3D_OK)
		rc = answer_digest_is(r, &c, digest, 0, err);
	rcall_cleanup(&c);
	return rc;
}

/* DELETE location; no_retry: one attempt (a best-effort cleanup). */
/* One DELETE, not retried: it runs while the push is being given up. */
static int cancel_call(s3d_reg *r, const char *location, s3d_error *err)
{
	static const long ok[] = { ANY_2XX, 404, 0 };
	struct rcall c;
	int rc;

	rcall_init(&c, "DELETE", S3D_REG_ERR_BODY_MAX);
	c.url = location;
	c.no_retry = 1;
	rc = request(r, &c, ok, err);
	rcall_cleanup(&c);
	return rc;
}

int s3d_reg_blob_exists(s3d_reg *r, const char *repo, const char *digest, int *exists,
			s3d_error *err)
{
	/* a redirect (storage.redirect) is only sent for a blob that exists */
	static const long ok[] = { 200, 302, 307, 404, 0 };
	struct rcall c;
	int rc;

	if (!r || !exists || !s3d_reg_valid_repo(repo) || !s3d_reg_valid_digest(digest))
		return perr(err, S3D_E_INVAL, "invalid repository or digest");
	*exists = 0;
	rcall_init(&c, "HEAD", 0);
	c.repo = repo;
	rc = repo_url(r, repo, "blobs/", digest, &c.url_buf);
	if (rc == S3D_OK)
		rc = request(r, &c, ok, err);
	if (rc == S3D_OK)
		*exists = c.status != 404;
	rcall_cleanup(&c);
	return rc;
}

int s3d_reg_digest_fd(int fd, char digest[80], int64_t *size)
{
	uint8_t md[32];
	int rc = s3d_sha256_fd(fd, -1, md, size, NULL);

	if (rc == S3D_OK) {
		memcpy(digest, "sha256:", 7);
		s3d_hex(md, 32, digest + 7);
	}
	return rc;
}

int s3d_reg_put_manifest_as(s3d_reg *r, const char *repo, const char *ref,
			    const char *media_type, const void *body, size_t len,
			    const char *digest, s3d_error *err)
{
	static const long ok[] = { 201, 0 };
	struct rcall c;
	int rc;

	if (!r || !s3d_reg_valid_repo(repo) || !ref ||
	    !(s3d_reg_valid_tag(ref) || s3d_reg_valid_digest(ref)) || !media_type ||
	    !media_type_ok(media_type, strlen(media_type)) || (!body && len) ||
	    len > S3D_REG_JSON_MAX || !s3d_reg_valid_digest(digest))
		return perr(err, S3D_E_INVAL, "invalid manifest request");
	rcall_init(&c, "PUT", S3D_REG_ERR_BODY_MAX);
	c.repo = repo;
	c.body = body;
	c.body_len = len;
	c.content_type = media_type;
	rc = repo_url(r, repo, "manifests/", ref, &c.url_buf);
	if (rc == S3D_OK)
		rc = request(r, &c, ok, err);
	if (rc == S3D_OK)
		rc = answer_digest_is(r, &c, digest, 1, err);
	rcall_cleanup(&c);
	return rc;
}

int s3d_reg_put_manifest(s3d_reg *r, const char *repo, const char *ref,
			 const char *media_type, const void *body, size_t len,
			 char *digest_out, s3d_error *err)
{
	char computed[80];
	int rc;

	if ((!body && len) || len > S3D_REG_JSON_MAX)
		return perr(err, S3D_E_INVAL, "invalid manifest request");
	memcpy(computed, "sha256:", 7);
	rc = s3d_sha256_hex(len ? body : (const void *)"", len, computed + 7);
	if (rc != S3D_OK)
		return rc;
	rc = s3d_reg_put_manifest_as(r, repo, ref, media_type, body, len, computed, err);
	if (rc == S3D_OK && digest_out)
		memcpy(digest_out, computed, sizeof(computed));
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Upload to presigned URLs                                                 */
/* ------------------------------------------------------------------------ */

enum { SLOT_IDLE, SLOT_RUNNING, SLOT_WAIT };

struct up;

/* One part in flight (or waiting to be tried again) on its own easy handle. */
struct slot {
	struct up *up;
	CURL *easy;
	int state;
	int part;               /* 1-based */
	int64_t off, len;       /* the part's bytes in the file */
	int64_t pos;            /* bytes handed to curl in this attempt */
	int attempts;           /* failed attempts so far */
	int64_t not_before;     /* SLOT_WAIT: monotonic ms */
	int io_errno;           /* pread failed (or -1: the file ended early) */
	s3d_buf errbody;
	char errbuf[CURL_ERROR_SIZE];
};

struct up {
	s3d_reg *r;
	const char *location, *digest;
	int fd;
	int64_t size, part_size;
	int nparts;
	int single;             /* one presigned PUT (no part numbers) */
	char **urls;            /* [nparts]: the URL of each part not done yet */
	unsigned char *done;    /* [nparts] */
	struct curl_slist *hdrs;
	int next_part;          /* next part never started */
	int ndone;
	int64_t done_bytes;
	CURLM *multi;
	struct slot *slots;
	int nslots;
	s3d_reg_push_opts o;
	int64_t last_progress;
};

static size_t on_part_read(char *p, size_t sz, size_t n, void *ud)
{
	struct slot *s = ud;
	int64_t left = s->len - s->pos;
	size_t cap = sz * n;
	ssize_t got;

	if (left <= 0)
		return 0;
	if ((int64_t)cap > left)
		cap = (size_t)left;
	do
		got = pread(s->up->fd, p, cap, (off_t)(s->off + s->pos));
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		s->io_errno = got < 0 ? errno : -1;
		return CURL_READFUNC_ABORT;
	}
	s->pos += got;
	return (size_t)got;
}

static int on_part_seek(void *ud, curl_off_t off, int origin)
{
	struct slot *s = ud;

	if (origin != SEEK_SET || off < 0 || off > s->len)
		return CURL_SEEKFUNC_CANTSEEK;
	s->pos = off;
	return CURL_SEEKFUNC_OK;
}

/* Keeps what fits of an error body (a 2xx body is dropped). */
static size_t on_part_body(char *p, size_t sz, size_t n, void *ud)
{
	struct slot *s = ud;
	size_t len = sz * n, room = s->errbody.max - s->errbody.len;

	if (s3d_buf_append(&s->errbody, p, len < room ? len : room) != S3D_OK)
		return 0;
	return len;
}

/* Headers of every PUT: the presign answer's (content-length is curl's,
 * checked against the bytes we send) and no 100-continue. */
static int build_put_headers(struct up *up, const s3d_reg_presign *ps, s3d_error *err)
{
	struct curl_slist *n;
	s3d_buf line;
	size_t i;
	int rc = S3D_OK;
	char *end;

	s3d_buf_init(&line, HEADER_NAME_MAX + HEADER_VALUE_MAX + 8);
	for (i = 0; rc == S3D_OK && i < ps->nheaders; i++) {
		const s3d_kv *h = &ps->headers[i];

		if (strcasecmp(h->name, "content-length") == 0) {
			if (!up->single || strtoll(h->value, &end, 10) != up->size || *end ||
			    !h->value[0])
				rc = perr(err, S3D_E_PROTOCOL,
					  "the registry signed a content-length of %.24s for %lld bytes",
					  h->value, (long long)up->size);
			continue;
		}
		s3d_buf_reset(&line);
		rc = s3d_buf_printf(&line, "%s: %s", h->name, h->value);
		if (rc == S3D_OK) {
			n = curl_slist_append(up->hdrs, s3d_buf_str(&line));
			rc = n ? (up->hdrs = n, S3D_OK) : S3D_E_NOMEM;
		}
	}
	if (rc == S3D_OK) {
		n = curl_slist_append(up->hdrs, "Expect:");
		rc = n ? (up->hdrs = n, S3D_OK) : S3D_E_NOMEM;
	}
	s3d_buf_cleanup(&line);
	return rc;
}

/* Fresh URLs for the parts from part on that are not done (up to a batch). */
static int fetch_urls(struct up *up, int part, s3d_error *err)
{
	s3d_reg_presign ps;
	int count = up->nparts - part + 1, k, rc;

	if (count > up->o.url_batch)
		count = up->o.url_batch;
	s3d_reg_presign_init(&ps);
	if (up->single) {
		rc = s3d_reg_presign_single(up->r, up->location, up->digest, up->size, &ps, err);
		if (rc == S3D_OK) {
			free(up->urls[0]);
			up->urls[0] = ps.url;
			ps.url = NULL;
		}
	} else {
		rc = s3d_reg_presign_parts(up->r, up->location, up->digest, up->size, part, count,
					   &ps, err);
		if (rc == S3D_OK && ps.part_size != up->part_size)
			rc = perr(err, S3D_E_PROTOCOL, "the part size changed from %lld to %lld",
				  (long long)up->part_size, (long long)ps.part_size);
		for (k = 0; rc == S3D_OK && k < count; k++) {
			if (up->done[part - 1 + k])
				continue;
			free(up->urls[part - 1 + k]);
			up->urls[part - 1 + k] = ps.part_urls[k];
			ps.part_urls[k] = NULL;
		}
	}
	s3d_reg_presign_cleanup(&ps);
	return rc;
}

static int start_slot(struct up *up, struct slot *s, s3d_error *err)
{
	CURL *easy = s->easy;
	CURLcode cc;
	int rc;

	if (!up->urls[s->part - 1]) {
		rc = fetch_urls(up, s->part, err);
		if (rc != S3D_OK)
			return rc;
	}
	s->off = (int64_t)(s->part - 1) * up->part_size;
	s->len = up->size - s->off < up->part_size ? up->size - s->off : up->part_size;
	s->pos = 0;
	s->io_errno = 0;
	s3d_buf_reset(&s->errbody);
	curl_easy_reset(easy);
	cc = common_options(easy, up->r, s->errbuf);
	SET(CURLOPT_URL, up->urls[s->part - 1]);
	SET(CURLOPT_HTTPHEADER, up->hdrs);
	SET(CURLOPT_PRIVATE, s);
	SET(CURLOPT_UPLOAD, 1L);
	SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->len);
	SET(CURLOPT_READFUNCTION, on_part_read);
	SET(CURLOPT_READDATA, s);
	SET(CURLOPT_SEEKFUNCTION, on_part_seek);
	SET(CURLOPT_SEEKDATA, s);
	SET(CURLOPT_WRITEFUNCTION, on_part_body);
	SET(CURLOPT_WRITEDATA, s);
	SET(CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024L);
	if (cc != CURLE_OK)
		return perr(err, S3D_E_TRANSPORT, "cannot set up the upload: %s",
			    curl_easy_strerror(cc));
	if (curl_multi_add_handle(up->multi, easy) != CURLM_OK)
		return perr(err, S3D_E_TRANSPORT, "cannot start the upload");
	s->state = SLOT_RUNNING;
	return S3D_OK;
}

/* "S3 PUT host/path" of the part's URL: never the query (its signature). */
static void part_resource(const struct up *up, const struct slot *s, s3d_error *e)
{
	CURLU *u = curl_url();
	char *host = NULL, *path = NULL, line[sizeof(e->resource)];

	if (u && up->urls[s->part - 1] &&
	    curl_url_set(u, CURLUPART_URL, up->urls[s->part - 1], 0) == CURLUE_OK)
		curl_url_get(u, CURLUPART_HOST, &host, 0), curl_url_get(u, CURLUPART_PATH, &path, 0);
	if (up->single)
		snprintf(line, sizeof(line), "S3 PUT %s%s", host ? host : "", path ? path : "");
	else
		snprintf(line, sizeof(line), "S3 PUT %s%s part %d", host ? host : "",
			 path ? path : "", s->part);
	copy_clean(e->resource, sizeof(e->resource), line, strlen(line));
	curl_free(host);
	curl_free(path);
	curl_url_cleanup(u);
}

/*
 * Why the part's attempt failed, into e: the file, the transport, or an S3
 * error answer. *retry when another attempt may do better, *refresh when
 * it needs a fresh URL (403: the URL expired, or was refused).
 */
static int part_error(struct up *up, struct slot *s, CURLcode cc, long st, s3d_error *e,
		      int *retry, int *refresh)
{
	const char *id;
	int rc;

	memset(e, 0, sizeof(*e));
	*retry = *refresh = 0;
	part_resource(up, s, e);
	e->attempts = s->attempts + 1;
	if (s->io_errno) {
		e->sys_errno = s->io_errno > 0 ? s->io_errno : 0;
		snprintf(e->message, sizeof(e->message), "reading the file: %s",
			 s->io_errno > 0 ? strerror(s->io_errno) : "it ended early (truncated?)");
		return S3D_E_IO;
	}
	if (cc != CURLE_OK) {
		e->curl_code = (int)cc;
		copy_clean(e->message, sizeof(e->message),
			   s->errbuf[0] ? s->errbuf : curl_easy_strerror(cc),
			   strlen(s->errbuf[0] ? s->errbuf : curl_easy_strerror(cc)));
		*retry = !permanent_cc(cc);
		return cc == CURLE_OPERATION_TIMEDOUT ? S3D_E_TIMEOUT : S3D_E_TRANSPORT;
	}
	if (s->errbody.len == 0 ||
	    s3d_xml_parse_error((const char *)s->errbody.ptr, s->errbody.len, e) != S3D_OK) {
		snprintf(e->code, sizeof(e->code), "%s", st == 403 ? "AccessDenied" : "HTTPError");
		snprintf(e->message, sizeof(e->message), "HTTP %ld", st);
	}
	clean_in_place(e->code);
	clean_in_place(e->message);
	clean_in_place(e->request_id);
	if (!e->request_id[0] && (id = answer_header(s->easy, "x-amz-request-id")))
		copy_clean(e->request_id, sizeof(e->request_id), id, strlen(id));
	e->http_status = (int)st;
	*retry = st >= 500 || st == 408 || st == 429 || st == 403 ||
		 s3d_s3_code_transient(e->code);
	*refresh = st == 403;
	rc = S3D_E_S3;
	return rc;
}

/* A transfer ended: the part is done, waits for another attempt, or fails. */
static int finish_slot(struct up *up, struct slot *s, CURLcode cc, s3d_error *err)
{
	long st = 0;
	int retry, refresh, rc;

	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &st);
	curl_multi_remove_handle(up->multi, s->easy);
	s->state = SLOT_IDLE;
	if (cc == CURLE_OK && !s->io_errno && st >= 200 && st <= 299) {
		up->done[s->part - 1] = 1;
		free(up->urls[s->part - 1]);
		up->urls[s->part - 1] = NULL;
		up->done_bytes += s->len;
		up->ndone++;
		return S3D_OK;
	}
	rc = part_error(up, s, cc, st, err, &retry, &refresh);
	if (!retry || s->attempts >= up->o.max_retries)
		return rc;
	s->attempts++;
	if (refresh) {
		free(up->urls[s->part - 1]);
		up->urls[s->part - 1] = NULL;
	}
	s->state = SLOT_WAIT;
	s->not_before = s3d_now_ms() + s3d_backoff_ms(up->o.retry_base_ms, BACKOFF_CAP_MS,
						      s->attempts);
	return S3D_OK;
}

static void report(struct up *up, int force)
{
	int64_t now = s3d_now_ms(), sent = up->done_bytes;
	int i;

	if (!up->o.progress || (!force && now - up->last_progress < PROGRESS_MS))
		return;
	up->last_progress = now;
	for (i = 0; i < up->nslots; i++)
		if (up->slots[i].state == SLOT_RUNNING)
			sent += up->slots[i].pos;
	up->o.progress(up->o.progress_ud, sent > up->size ? up->size : sent, up->size);
}

/* Starts every slot that can start; the time to wait for the next one. */
static int fill_slots(struct up *up, long *wait_ms, s3d_error *err)
{
	int64_t now = s3d_now_ms();
	struct slot *s;
	int i, rc;

	*wait_ms = POLL_MS;
	for (i = 0; i < up->nslots; i++) {
		s = &up->slots[i];
		if (s->state == SLOT_IDLE && up->next_part <= up->nparts) {
			s->part = up->next_part++;
			s->attempts = 0;
			s->state = SLOT_WAIT;
			s->not_before = now;
		}
		if (s->state != SLOT_WAIT)
			continue;
		if (s->not_before > now) {
			if (s->not_before - now < *wait_ms)
				*wait_ms = (long)(s->not_before - now);
			continue;
		}
		rc = start_slot(up, s, err);
		if (rc != S3D_OK)
			return rc;
	}
	return S3D_OK;
}

/* The caller's stop flag is set: S3D_E_ABORTED. */
static int stop_asked(const s3d_reg_push_opts *o, s3d_error *err)
{
	if (!o->stop || !*o->stop)
		return S3D_OK;
	if (err)
		s3d_error_clear(err);
	return perr(err, S3D_E_ABORTED, "interrupted");
}

/* Runs the multi handle until every part is stored, one fails for good, or
 * the caller asks to stop (looked at every POLL_MS at least). */
static int run_upload(struct up *up, s3d_error *err)
{
	struct CURLMsg *msg;
	int running = 0, left, i, rc = S3D_OK;
	long wait;
	CURLMcode mc;

	while (rc == S3D_OK && up->ndone < up->nparts) {
		rc = stop_asked(&up->o, err);
		if (rc != S3D_OK)
			break;
		rc = fill_slots(up, &wait, err);
		if (rc != S3D_OK)
			break;
		mc = curl_multi_perform(up->multi, &running);
		if (mc != CURLM_OK) {
			rc = perr(err, S3D_E_TRANSPORT, "curl: %s", curl_multi_strerror(mc));
			break;
		}
		while (rc == S3D_OK && (msg = curl_multi_info_read(up->multi, &left))) {
			struct slot *s = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			if (s)
				rc = finish_slot(up, s, msg->data.result, err);
		}
		report(up, 0);
		if (rc != S3D_OK || up->ndone == up->nparts)
			break;
		mc = curl_multi_poll(up->multi, NULL, 0, (int)(wait > 0 ? wait : 0), NULL);
		if (mc != CURLM_OK)
			rc = perr(err, S3D_E_TRANSPORT, "curl: %s", curl_multi_strerror(mc));
	}
	for (i = 0; i < up->nslots; i++)
		if (up->slots[i].state == SLOT_RUNNING) {
			curl_multi_remove_handle(up->multi, up->slots[i].easy);
			up->slots[i].state = SLOT_IDLE;
		}
	if (rc == S3D_OK)
		report(up, 1);
	return rc;
}

static void up_cleanup(struct up *up)
{
	int i;

	for (i = 0; up->slots && i < up->nslots; i++) {
		if (up->slots[i].easy)
			curl_easy_cleanup(up->slots[i].easy);
		s3d_buf_cleanup(&up->slots[i].errbody);
	}
	free(up->slots);
	if (up->multi)
		curl_multi_cleanup(up->multi);
	for (i = 0; up->urls && i < up->nparts; i++)
		if (up->urls[i]) {
			OPENSSL_cleanse(up->urls[i], strlen(up->urls[i]));
			free(up->urls[i]);
		}
	free(up->urls);
	free(up->done);
	curl_slist_free_all(up->hdrs);
}

static void push_defaults(const s3d_reg_push_opts *in, s3d_reg_push_opts *o)
{
	if (in)
		*o = *in;
	else
		memset(o, 0, sizeof(*o));
	if (o->threshold <= 0)
		o->threshold = 64LL << 20;
	if (o->threshold < MIN_THRESHOLD)
		o->threshold = MIN_THRESHOLD;
	if (o->threshold > MAX_PART_SIZE)
		o->threshold = MAX_PART_SIZE;
	if (o->concurrency <= 0)
		o->concurrency = 4;
	if (o->concurrency > 64)
		o->concurrency = 64;
	if (o->max_retries == 0)
		o->max_retries = 5;
	if (o->max_retries < 0)
		o->max_retries = 0;
	if (o->url_batch <= 0 || o->url_batch > S3D_REG_MAX_PART_URLS)
		o->url_batch = S3D_REG_MAX_PART_URLS;
	if (o->retry_base_ms <= 0)
		o->retry_base_ms = 500;
}

/* The first presign call (it fixes the session's mode), then the transfers. */
static int upload(struct up *up, s3d_error *err)
{
	s3d_reg_presign ps;
	int64_t n;
	int i, rc;

	s3d_reg_presign_init(&ps);
	if (up->single)
		rc = s3d_reg_presign_single(up->r, up->location, up->digest, up->size, &ps, err);
	else
		rc = s3d_reg_presign_parts(up->r, up->location, up->digest, up->size, 1, 1, &ps,
					   err);
	if (rc != S3D_OK)
		goto out;
	up->part_size = up->single ? (up->size > 0 ? up->size : 1) : ps.part_size;
	n = (up->size + up->part_size - 1) / up->part_size;
	if (n < 1)
		n = 1;
	if (n > S3D_REG_MAX_PARTS) {
		rc = perr(err, S3D_E_PROTOCOL,
			  "part size %lld needs %lld parts for %lld bytes (at most 10000)",
			  (long long)up->part_size, (long long)n, (long long)up->size);
		goto out;
	}
	up->nparts = (int)n;
	up->nslots = up->o.concurrency < up->nparts ? up->o.concurrency : up->nparts;
	up->urls = calloc((size_t)up->nparts, sizeof(*up->urls));
	up->done = calloc((size_t)up->nparts, 1);
	up->slots = calloc((size_t)up->nslots, sizeof(*up->slots));
	up->multi = curl_multi_init();
	if (!up->urls || !up->done || !up->slots || !up->multi) {
		rc = S3D_E_NOMEM;
		goto out;
	}
	for (i = 0; i < up->nslots; i++) {
		up->slots[i].up = up;
		s3d_buf_init(&up->slots[i].errbody, S3D_REG_ERR_BODY_MAX);
		up->slots[i].easy = curl_easy_init();
		if (!up->slots[i].easy) {
			rc = S3D_E_NOMEM;
			goto out;
		}
	}
	if (up->single) {
		up->urls[0] = ps.url;
		ps.url = NULL;
	} else {
		up->urls[0] = ps.part_urls[0];
		ps.part_urls[0] = NULL;
	}
	rc = build_put_headers(up, &ps, err);
	up->next_part = 1;
	if (rc == S3D_OK)
		rc = run_upload(up, err);
out:
	s3d_reg_presign_cleanup(&ps);
	return rc;
}

int s3d_reg_push_blob(s3d_reg *r, const char *repo, int fd, int64_t size,
		      const char *digest, const s3d_reg_push_opts *opts, s3d_error *err)
{
	s3d_buf location;
	s3d_error ignored;
	struct up up;
	int rc;

	if (!r || fd < 0 || size < 0 || !s3d_reg_valid_repo(repo) || !s3d_reg_valid_digest(digest))
		return perr(err, S3D_E_INVAL, "invalid push request");
	memset(&up, 0, sizeof(up));
	push_defaults(opts, &up.o);
	s3d_buf_init(&location, S3D_REG_URL_MAX);
	rc = stop_asked(&up.o, err);
	if (rc == S3D_OK)
		rc = s3d_reg_start_upload(r, repo, &location, err);
	if (rc != S3D_OK)
		goto out;
	up.r = r;
	up.location = s3d_buf_str(&location);
	up.digest = digest;
	up.fd = fd;
	up.size = size;
	up.single = size <= up.o.threshold;
	rc = stop_asked(&up.o, err);
	if (rc == S3D_OK)
		rc = upload(&up, err);
	if (rc == S3D_OK)
		rc = stop_asked(&up.o, err);
	if (rc == S3D_OK)
		rc = s3d_reg_finalize(r, up.location, digest, err);
	if (rc != S3D_OK) {
		/* best effort, one attempt (after Ctrl-C nobody waits for retries):
		   the registry's sweeper cleans what this leaves */
		s3d_error_clear(&ignored);
		cancel_call(r, up.location, &ignored);
	}
out:
	up_cleanup(&up);
	s3d_buf_cleanup(&location);
	return rc;
}
