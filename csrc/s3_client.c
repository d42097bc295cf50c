/*
 * S3 client on libcurl. One request = build the URL and headers, sign them
 * (header form), send, classify the answer, parse the S3 error body. Retries
 * with capped exponential backoff and full jitter, only where repeating the
 * request is safe, bounded in count and by an overall deadline.
 */
#include "s3_client.h"

#include "buf.h"
#include "err.h"
#include "s3_xml.h"
#include "sigv4.h"
#include "uri.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX 64
#define LIST_PAGES_MAX 1000000 /* bound on pages one list call walks */
#define S3D_MAX_PARTS 10000    /* S3's part numbers */

struct s3d_client {
	char scheme[8];
	char host[256];         /* endpoint host[:port] as sent in Host */
	char region[64];
	s3d_signer *signer;
	s3d_client_config cfg;  /* numeric options; strings below are copies */
	char *user_agent;
	char *ca_file;
	char *token;            /* session token, sent as x-amz-security-token */
	CURLSH *share;
	pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *pool[POOL_MAX];
	int npool;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc = S3D_OK;

static void global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		global_rc = S3D_E_TRANSPORT;
	s3d_xml_global_init();
}

int s3d_client_global_init(void)
{
	pthread_once(&global_once, global_init);
	return global_rc;
}

int64_t s3d_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int s3d_base64(const uint8_t *data, size_t n, char *out, size_t cap)
{
	if (cap < 4 * ((n + 2) / 3) + 1 || n > INT32_MAX)
		return S3D_E_TOOBIG;
	if (EVP_EncodeBlock((unsigned char *)out, data, (int)n) < 0)
		return S3D_E_CRYPTO;
	return S3D_OK;
}

/* ---- client lifecycle ---- */

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *ud)
{
	s3d_client *c = ud;
	(void)h;
	(void)a;
	pthread_mutex_lock(&c->share_lock[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *ud)
{
	s3d_client *c = ud;
	(void)h;
	pthread_mutex_unlock(&c->share_lock[d]);
}

static int parse_endpoint(s3d_client *c, const char *endpoint)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	int rc = S3D_E_INVAL;

	if (!u)
		return S3D_E_NOMEM;
	if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		goto out;
	/* an endpoint is scheme://host[:port] with no path prefix */
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK && path &&
	    strcmp(path, "/") != 0 && path[0])
		goto out;
	curl_url_get(u, CURLUPART_PORT, &port, 0); /* absent = default port */
	snprintf(c->scheme, sizeof(c->scheme), "%s", scheme);
	if ((size_t)snprintf(c->host, sizeof(c->host), "%s%s%s", host,
			     port ? ":" : "", port ? port : "") >= sizeof(c->host))
		goto out;
	rc = S3D_OK;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

int s3d_client_new(const s3d_client_config *cfg, s3d_client **out)
{
	s3d_client *c;
	int rc, i;

	if (!cfg || !out || !cfg->endpoint || !cfg->access_key || !cfg->secret_key)
		return S3D_E_INVAL;
	rc = s3d_client_global_init();
	if (rc != S3D_OK)
		return rc;
	c = calloc(1, sizeof(*c));
	if (!c)
		return S3D_E_NOMEM;
	c->cfg = *cfg;
	c->cfg.endpoint = c->cfg.region = c->cfg.access_key = NULL;
	c->cfg.secret_key = c->cfg.session_token = NULL;
	c->cfg.user_agent = c->cfg.ca_file = NULL;
	if (c->cfg.connect_timeout_ms <= 0)
		c->cfg.connect_timeout_ms = 10000;
	if (c->cfg.low_speed_time_s <= 0)
		c->cfg.low_speed_time_s = 60;
	if (c->cfg.max_retries < 0)
		c->cfg.max_retries = 0;
	else if (c->cfg.max_retries == 0 && cfg->retry_base_ms == 0)
		c->cfg.max_retries = 6; /* zeroed config: defaults */
	if (c->cfg.retry_base_ms <= 0)
		c->cfg.retry_base_ms = 100;
	if (c->cfg.retry_max_ms <= 0)
		c->cfg.retry_max_ms = 5000;
	if (c->cfg.retry_deadline_ms <= 0)
		c->cfg.retry_deadline_ms = 120000;
	pthread_mutex_init(&c->pool_lock, NULL);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_lock[i], NULL);
	snprintf(c->region, sizeof(c->region), "%s",
		 cfg->region && *cfg->region ? cfg->region : "us-east-1");
	rc = parse_endpoint(c, cfg->endpoint);
	if (rc == S3D_OK)
		rc = s3d_signer_new(cfg->access_key, cfg->secret_key, cfg->session_token,
				    c->region, "s3", &c->signer);
	if (rc == S3D_OK && cfg->user_agent && !(c->user_agent = strdup(cfg->user_agent)))
		rc = S3D_E_NOMEM;
	if (rc == S3D_OK && cfg->ca_file && !(c->ca_file = strdup(cfg->ca_file)))
		rc = S3D_E_NOMEM;
	if (rc == S3D_OK && cfg->session_token && *cfg->session_token &&
	    !(c->token = strdup(cfg->session_token)))
		rc = S3D_E_NOMEM;
	if (rc == S3D_OK && !(c->share = curl_share_init()))
		rc = S3D_E_NOMEM;
	if (rc == S3D_OK &&
	    (curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	     curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	     curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) != CURLSHE_OK ||
	     curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	     curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK))
		rc = S3D_E_TRANSPORT;
	if (rc != S3D_OK) {
		s3d_client_free(c);
		return rc;
	}
	*out = c;
	return S3D_OK;
}

void s3d_client_free(s3d_client *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	if (c->share)
		curl_share_cleanup(c->share);
	s3d_signer_free(c->signer);
	free(c->user_agent);
	free(c->ca_file);
	if (c->token) {
		OPENSSL_cleanse(c->token, strlen(c->token));
		free(c->token);
	}
	pthread_mutex_destroy(&c->pool_lock);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_lock[i]);
	free(c);
}

CURL *s3d_client_easy_get(s3d_client *c)
{
	CURL *e = NULL;

	pthread_mutex_lock(&c->pool_lock);
	if (c->npool > 0)
		e = c->pool[--c->npool];
	pthread_mutex_unlock(&c->pool_lock);
	return e ? e : curl_easy_init();
}

void s3d_client_easy_put(s3d_client *c, CURL *easy)
{
	if (!easy)
		return;
	pthread_mutex_lock(&c->pool_lock);
	if (c->npool < POOL_MAX) {
		c->pool[c->npool++] = easy;
		easy = NULL;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (easy)
		curl_easy_cleanup(easy);
}

int s3d_client_max_retries(const s3d_client *c)
{
	return c->cfg.max_retries;
}

long s3d_backoff_ms(long base_ms, long max_ms, int attempt)
{
	uint32_t r = 0;
	long cap = base_ms;
	int i;

	for (i = 1; i < attempt && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	if (cap < 1)
		cap = 1;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)s3d_now_ms();
	return 1 + (long)(r % (uint32_t)cap); /* full jitter */
}

long s3d_client_backoff_ms(const s3d_client *c, int attempt, int64_t started_ms)
{
	int64_t left = started_ms + c->cfg.retry_deadline_ms - s3d_now_ms();
	long wait = s3d_backoff_ms(c->cfg.retry_base_ms, c->cfg.retry_max_ms, attempt);

	if (left <= wait)
		return 0;
	return wait;
}

/* ---- one transfer ---- */

void s3d_xfer_init(s3d_xfer *x)
{
	memset(x, 0, sizeof(*x));
	s3d_buf_init(&x->url, 16384);
	s3d_buf_init(&x->errbody, S3D_ERR_BODY_MAX);
	x->info.size = -1;
}

void s3d_xfer_cleanup(s3d_xfer *x)
{
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	s3d_buf_cleanup(&x->url);
	s3d_buf_cleanup(&x->errbody);
}

static long status_of(CURL *easy)
{
	long st = 0;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &st);
	return st;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	s3d_xfer *x = ud;
	size_t len = sz * n;

	if (x->status < 200 || x->status > 299) {
		/* keep what fits of an error body; the rest is dropped */
		size_t room = x->errbody.max - x->errbody.len;
		if (s3d_buf_append(&x->errbody, p, len < room ? len : room) != S3D_OK)
			return 0;
		return len;
	}
	if (x->req->write && x->ranged && x->status != 206) {
		x->aborted = 3; /* Range ignored: these bytes would not line up */
		return 0;
	}
	if (x->req->write) {
		int wr = x->req->write(x->req->write_ud, (const uint8_t *)p, len);

		if (wr == S3D_WRITE_PAUSE)
			return CURL_WRITEFUNC_PAUSE; /* curl offers these bytes again */
		if (wr != 0) {
			x->aborted = 1;
			return 0;
		}
		x->delivered += (int64_t)len;
		return sz * n;
	}
	if (x->req->resp) {
		if (s3d_buf_append(x->req->resp, p, len) != S3D_OK) {
			x->aborted = 2; /* too big */
			return 0;
		}
		return sz * n;
	}
	return sz * n; /* body not wanted */
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	s3d_xfer *x = ud;
	size_t len = sz * n;
	int major, minor, st;

	/* the status line of each response (also after 100-continue) */
	if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
		if (sscanf(p, "HTTP/%d.%d %d", &major, &minor, &st) == 3 ||
		    sscanf(p, "HTTP/%d %d", &major, &st) == 2)
			x->status = st;
	}
	return len;
}

static size_t on_read(char *p, size_t sz, size_t n, void *ud)
{
	s3d_xfer *x = ud;
	const s3d_req *r = x->req;
	size_t cap = sz * n, got;

	if (r->body) {
		got = r->body_len - x->body_off;
		if (got > cap)
			got = cap;
		memcpy(p, r->body + x->body_off, got);
		x->body_off += got;
		return got;
	}
	got = r->read(r->read_ud, (uint8_t *)p, cap);
	if (got == (size_t)-1) {
		x->aborted = 1;
		return CURL_READFUNC_ABORT;
	}
	return got;
}

static int add_header(s3d_xfer *x, const char *name, const char *value)
{
	char line[8192];
	struct curl_slist *l;

	if ((size_t)snprintf(line, sizeof(line), "%s: %s", name, value) >= sizeof(line))
		return S3D_E_TOOBIG;
	l = curl_slist_append(x->hdrs, line);
	if (!l)
		return S3D_E_NOMEM;
	x->hdrs = l;
	return S3D_OK;
}

/* URL = scheme://host + encoded path + ?canonical query (same encoding as signed). */
/* Host, raw path and x->url without its query (added once signed). */
static int build_url(s3d_client *c, s3d_xfer *x, const s3d_req *r, s3d_buf *path,
		     char *host, size_t hostcap)
{
	int rc = S3D_OK;

	if (c->cfg.virtual_hosted && r->bucket) {
		if ((size_t)snprintf(host, hostcap, "%s.%s", r->bucket, c->host) >= hostcap)
			return S3D_E_TOOBIG;
	} else {
		snprintf(host, hostcap, "%s", c->host);
		if (r->bucket) {
			rc = s3d_buf_appendc(path, '/');
			if (rc == S3D_OK)
				rc = s3d_uri_encode(path, r->bucket, strlen(r->bucket), 0);
		}
	}
	if (rc == S3D_OK)
		rc = s3d_buf_appendc(path, '/');
	if (rc == S3D_OK && r->key && *r->key)
		rc = s3d_buf_appendz(path, r->key);
	if (rc == S3D_OK)
		rc = s3d_buf_printf(&x->url, "%s://%s", c->scheme, host);
	if (rc == S3D_OK)
		rc = s3d_uri_encode(&x->url, s3d_buf_str(path), path->len, 1);
	return rc;
}

static int has_content_type(const s3d_req *r)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, "Content-Type") == 0)
			return 1;
	return 0;
}

static int sign_request(s3d_client *c, s3d_xfer *x, const s3d_req *r)
{
	s3d_kv hdrs[S3D_MAX_REQ_HEADERS + 4];
	s3d_sigv4_request sr;
	s3d_sigv4_result res;
	s3d_buf path;
	char host[512], range[64], payload[65];
	size_t nh = 0, i;
	int rc;

	if (r->nheaders > S3D_MAX_REQ_HEADERS)
		return S3D_E_TOOBIG;
	for (i = 0; i < r->nheaders; i++)
		hdrs[nh++] = r->headers[i];
	if (r->range_first >= 0 || x->delivered > 0) {
		/* a retried GET resumes after the bytes already delivered */
		int64_t first = (r->range_first < 0 ? 0 : r->range_first) + x->delivered;

		if (r->range_last >= 0)
			snprintf(range, sizeof(range), "bytes=%lld-%lld",
				 (long long)first, (long long)r->range_last);
		else
			snprintf(range, sizeof(range), "bytes=%lld-", (long long)first);
		hdrs[nh].name = "Range";
		hdrs[nh++].value = range;
		x->ranged = 1;
		if (x->delivered > 0 && x->resume_etag[0]) {
			hdrs[nh].name = "If-Match";
			hdrs[nh++].value = x->resume_etag;
		}
	}
	if (c->token) {
		hdrs[nh].name = "x-amz-security-token";
		hdrs[nh++].value = c->token;
	}
	/* small memory bodies are hashed into the signature; data streams are not */
	snprintf(payload, sizeof(payload), "%s", S3D_UNSIGNED_PAYLOAD);
	if (!r->read && r->body_len <= S3D_SIGNED_BODY_MAX) {
		rc = s3d_sha256_hex(r->body ? (const void *)r->body : "", r->body_len, payload);
		if (rc != S3D_OK)
			return rc;
	}

	s3d_buf_init(&path, 4096);
	s3d_sigv4_result_init(&res);
	rc = build_url(c, x, r, &path, host, sizeof(host));
	memset(&sr, 0, sizeof(sr));
	sr.method = r->method;
	sr.host = host;
	sr.path = s3d_buf_str(&path);
	sr.query = r->query;
	sr.nquery = r->nquery;
	sr.headers = hdrs;
	sr.nheaders = nh;
	sr.payload_hash = payload;
	sr.when = time(NULL);
	sr.flags = S3D_SIGV4_CONTENT_SHA256_HEADER;
	if (rc == S3D_OK)
		rc = s3d_sigv4_sign_headers(c->signer, &sr, &res);
	if (rc == S3D_OK) {
		/* the URL's query is exactly the canonical one that was signed */
		const char *creq = s3d_buf_str(&res.canonical_request);
		const char *q = strchr(strchr(creq, '\n') + 1, '\n') + 1;
		const char *qe = strchr(q, '\n');

		if (qe > q) {
			rc = s3d_buf_appendc(&x->url, '?');
			if (rc == S3D_OK)
				rc = s3d_buf_append(&x->url, q, (size_t)(qe - q));
		}
	}
	for (i = 0; rc == S3D_OK && i < nh; i++)
		rc = add_header(x, hdrs[i].name, hdrs[i].value);
	if (rc == S3D_OK)
		rc = add_header(x, "Host", host);
	if (rc == S3D_OK)
		rc = add_header(x, "x-amz-date", res.amz_date);
	if (rc == S3D_OK)
		rc = add_header(x, "x-amz-content-sha256", payload);
	if (rc == S3D_OK)
		rc = add_header(x, "Authorization", s3d_buf_str(&res.authorization));
	/* no 100-continue round trip; no curl-added Content-Type on POST */
	if (rc == S3D_OK)
		rc = add_header(x, "Expect", "");
	if (rc == S3D_OK && !has_content_type(r))
		rc = add_header(x, "Content-Type", "");
	s3d_sigv4_result_cleanup(&res);
	s3d_buf_cleanup(&path);
	return rc;
}

int s3d_xfer_setup(s3d_client *c, s3d_xfer *x, const s3d_req *r, CURL *easy)
{
	CURLcode cc = CURLE_OK;
	int rc;

	x->req = r;
	x->client = c;
	x->ranged = 0;
	x->status = 0;
	x->aborted = 0;
	x->body_off = 0;
	x->errbuf[0] = 0;
	x->request_id[0] = 0;
	memset(&x->info, 0, sizeof(x->info));
	x->info.size = -1;
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	s3d_buf_reset(&x->url);
	s3d_buf_reset(&x->errbody);
	if (r->resp)
		s3d_buf_reset(r->resp);
	if (r->read && r->body)
		return S3D_E_INVAL;
	rc = sign_request(c, x, r);
	if (rc != S3D_OK)
		return rc;

	curl_easy_reset(easy);
#define SET(opt, val)                                          \
	do {                                                   \
		if (cc == CURLE_OK)                            \
			cc = curl_easy_setopt(easy, opt, val); \
	} while (0)
	SET(CURLOPT_URL, s3d_buf_str(&x->url));
	SET(CURLOPT_HTTPHEADER, x->hdrs);
	SET(CURLOPT_PRIVATE, x);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
	SET(CURLOPT_LOW_SPEED_LIMIT, 1024L);
	SET(CURLOPT_LOW_SPEED_TIME, c->cfg.low_speed_time_s);
	if (c->cfg.request_timeout_ms > 0)
		SET(CURLOPT_TIMEOUT_MS, c->cfg.request_timeout_ms);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_NODELAY, 1L);
	SET(CURLOPT_BUFFERSIZE, 512L * 1024L);
	SET(CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024L);
	SET(CURLOPT_SHARE, c->share);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PATH_AS_IS, 1L); /* keys are never normalized: "a/../b" is a key */
	if (c->cfg.skip_verify) {
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->ca_file)
		SET(CURLOPT_CAINFO, c->ca_file);
	if (c->user_agent)
		SET(CURLOPT_USERAGENT, c->user_agent);
	else
		SET(CURLOPT_USERAGENT, "s3direct/" S3D_VERSION);

	if (r->head) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else if (strcmp(r->method, "PUT") == 0) {
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_READFUNCTION, on_read);
		SET(CURLOPT_READDATA, x);
		SET(CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)(r->read ? r->stream_len : (int64_t)r->body_len));
	} else if (strcmp(r->method, "POST") == 0) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_READFUNCTION, on_read);
		SET(CURLOPT_READDATA, x);
		SET(CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)(r->read ? r->stream_len : (int64_t)r->body_len));
	} else {
		SET(CURLOPT_CUSTOMREQUEST, r->method);
	}
#undef SET
	return cc == CURLE_OK ? S3D_OK : S3D_E_TRANSPORT;
}

static const char *header_value(CURL *easy, const char *name)
{
	struct curl_header *h = NULL;

	if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h)
		return NULL;
	return h->value;
}

static void copy_field(char *dst, size_t cap, const char *v)
{
	if (v)
		snprintf(dst, cap, "%s", v);
}

static void read_headers(s3d_xfer *x, CURL *easy)
{
	const char *v;
	long long a, b, total;
	curl_off_t cl = -1;

	copy_field(x->info.etag, sizeof(x->info.etag), header_value(easy, "ETag"));
	copy_field(x->info.checksum_sha256, sizeof(x->info.checksum_sha256),
		   header_value(easy, "x-amz-checksum-sha256"));
	copy_field(x->info.checksum_type, sizeof(x->info.checksum_type),
		   header_value(easy, "x-amz-checksum-type"));
	copy_field(x->info.content_type, sizeof(x->info.content_type),
		   header_value(easy, "Content-Type"));
	copy_field(x->info.version_id, sizeof(x->info.version_id),
		   header_value(easy, "x-amz-version-id"));
	copy_field(x->info.meta_s3direct, sizeof(x->info.meta_s3direct),
		   header_value(easy, "x-amz-meta-s3direct"));
	copy_field(x->request_id, sizeof(x->request_id), header_value(easy, "x-amz-request-id"));
	v = header_value(easy, "Last-Modified");
	if (v) {
		time_t t = curl_getdate(v, NULL);
		x->info.last_modified = t > 0 ? (int64_t)t : 0;
	}
	/* size of the whole object: Content-Range's total on ranged answers */
	v = header_value(easy, "Content-Range");
	if (v && sscanf(v, "bytes %lld-%lld/%lld", &a, &b, &total) == 3)
		x->info.size = total;
	else if (curl_easy_getinfo(easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK)
		x->info.size = cl;
}

static const char *status_code_name(long st)
{
	switch (st) {
	case 400: return "BadRequest";
	case 403: return "Forbidden";
	case 404: return "NotFound";
	case 405: return "MethodNotAllowed";
	case 409: return "Conflict";
	case 412: return "PreconditionFailed";
	case 416: return "InvalidRange";
	case 429: return "SlowDown";
	case 500: return "InternalError";
	case 501: return "NotImplemented";
	case 503: return "ServiceUnavailable";
	default: return "HTTPError";
	}
}

int s3d_s3_code_transient(const char *code)
{
	static const char *const codes[] = { "SlowDown", "RequestTimeout", "InternalError",
					     "ServiceUnavailable", "Throttling",
					     "ThrottlingException", "RequestTimeTooSkewed" };
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(code, codes[i]) == 0)
			return 1;
	return 0;
}

static void set_resource(const s3d_xfer *x, s3d_error *err)
{
	const s3d_req *r = x->req;

	snprintf(err->resource, sizeof(err->resource), "%s %s%s%s", r->method,
		 r->bucket ? r->bucket : "", r->key && *r->key ? "/" : "",
		 r->key ? r->key : "");
}

int s3d_xfer_finish(s3d_xfer *x, CURL *easy, CURLcode cc, s3d_error *err, int *retry)
{
	s3d_error local;
	long st = status_of(easy);

	*retry = 0;
	if (!err)
		err = &local;
	x->status = st;
	read_headers(x, easy);
	if (x->aborted == 1) {
		s3d_error_clear(err);
		set_resource(x, err);
		return s3d_err_set(err, S3D_E_ABORTED, "stopped by the caller");
	}
	if (x->aborted == 3) {
		s3d_error_clear(err);
		err->http_status = (int)st;
		set_resource(x, err);
		return s3d_err_set(err, S3D_E_PROTOCOL, "ranged GET answered %ld, not 206", st);
	}
	if (x->aborted == 2) {
		s3d_error_clear(err);
		set_resource(x, err);
		return s3d_err_set(err, S3D_E_TOOBIG, "response body over its limit");
	}
	if (cc != CURLE_OK) {
		if (x->req->write && !x->resume_etag[0] && st >= 200 && st <= 299)
			copy_field(x->resume_etag, sizeof(x->resume_etag), x->info.etag);
		s3d_error_clear(err);
		err->curl_code = (int)cc;
		err->http_status = (int)st;
		snprintf(err->message, sizeof(err->message), "%s",
			 x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
		copy_field(err->request_id, sizeof(err->request_id), x->request_id);
		set_resource(x, err);
		*retry = x->req->retryable && !s3d_curl_permanent(cc);
		return cc == CURLE_OPERATION_TIMEDOUT ? S3D_E_TIMEOUT : S3D_E_TRANSPORT;
	}
	if (st >= 200 && st <= 299 && x->req->write && x->ranged && st != 206) {
		/* the server ignored Range: its bytes would not line up with ours */
		s3d_error_clear(err);
		err->http_status = (int)st;
		set_resource(x, err);
		return s3d_err_set(err, S3D_E_PROTOCOL, "ranged GET answered %ld, not 206", st);
	}
	if (st >= 200 && st <= 299) {
		if (x->req->write && !x->resume_etag[0])
			copy_field(x->resume_etag, sizeof(x->resume_etag), x->info.etag);
		return S3D_OK;
	}

	s3d_error_clear(err);
	if (x->errbody.len == 0 ||
	    s3d_xml_parse_error((const char *)x->errbody.ptr, x->errbody.len, err) != S3D_OK) {
		s3d_error_clear(err);
		snprintf(err->code, sizeof(err->code), "%s", status_code_name(st));
		snprintf(err->message, sizeof(err->message), "HTTP %ld", st);
	}
	err->http_status = (int)st;
	if (!err->request_id[0])
		copy_field(err->request_id, sizeof(err->request_id), x->request_id);
	set_resource(x, err);
	*retry = x->req->retryable && (st >= 500 || st == 429 || s3d_s3_code_transient(err->code));
	return st == 404 ? S3D_E_NOTFOUND : S3D_E_S3;
}

/* A certificate or URL that is wrong now is wrong on every retry. */
int s3d_curl_permanent(CURLcode cc)
{
	return cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
	       cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_ISSUER_ERROR ||
	       cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL;
}

void s3d_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int s3d_client_perform(s3d_client *c, const s3d_req *r, s3d_obj_info *info,
		       s3d_error *err)
{
	int64_t started = s3d_now_ms();
	CURL *easy = s3d_client_easy_get(c);
	s3d_xfer x;
	int attempt = 0, total = 0, retry = 0, rc = S3D_E_INVAL;
	int64_t before;
	long wait;

	if (!easy)
		return S3D_E_NOMEM;
	s3d_xfer_init(&x);
	for (;;) {
		attempt++;
		total++;
		if (total > 1 && r->read && (!r->rewind || r->rewind(r->read_ud) != 0))
			break; /* keep the previous error */
		rc = s3d_xfer_setup(c, &x, r, easy);
		if (rc != S3D_OK) {
			if (err) {
				s3d_error_clear(err);
				set_resource(&x, err);
				snprintf(err->message, sizeof(err->message),
					 "cannot prepare request: %s", s3d_strerror(rc));
			}
			break;
		}
		before = x.delivered;
		rc = s3d_xfer_finish(&x, easy, curl_easy_perform(easy), err, &retry);
		if (rc == S3D_OK || !retry)
			break;
		if (x.delivered > before) {
			/* a stream that made progress gets a fresh retry budget */
			started = s3d_now_ms();
			attempt = 1;
		}
		if (attempt > c->cfg.max_retries)
			break;
		/* a bounded GET cut after its last byte has nothing left to ask for */
		if (r->write && r->range_last >= 0 &&
		    (r->range_first < 0 ? 0 : r->range_first) + x.delivered > r->range_last) {
			rc = S3D_OK;
			break;
		}
		wait = s3d_client_backoff_ms(c, attempt, started);
		if (wait == 0)
			break;
		s3d_sleep_ms(wait);
	}
	if (err)
		err->attempts = total;
	if (rc == S3D_OK && info)
		*info = x.info;
	s3d_xfer_cleanup(&x);
	s3d_client_easy_put(c, easy);
	return rc;
}

/* ---- operations ---- */

static void req_init(s3d_req *r, const char *method, const char *bucket, const char *key)
{
	memset(r, 0, sizeof(*r));
	r->method = method;
	r->bucket = bucket;
	r->key = key;
	r->retryable = 1;
	r->range_first = -1;
	r->range_last = -1;
}

static int check_names(const char *bucket, const char *key, int key_required)
{
	if (!bucket || !*bucket || strlen(bucket) > 255)
		return S3D_E_INVAL;
	if (key_required && (!key || !*key))
		return S3D_E_INVAL;
	if (key && strlen(key) > 1024)
		return S3D_E_TOOBIG;
	return S3D_OK;
}

static size_t put_headers(const s3d_put_opts *o, s3d_kv *h, size_t cap)
{
	size_t n = 0, i;

	if (!o)
		return 0;
#define ADD(nm, v) \
	if ((v) && *(v) && n < cap) { h[n].name = (nm); h[n++].value = (v); }
	ADD("Content-Type", o->content_type);
	ADD("x-amz-checksum-sha256", o->checksum_sha256);
	ADD("x-amz-checksum-algorithm", o->checksum_algorithm);
	ADD("x-amz-storage-class", o->storage_class);
	ADD("x-amz-acl", o->acl);
	ADD("x-amz-server-side-encryption", o->sse);
	ADD("x-amz-server-side-encryption-aws-kms-key-id", o->sse_kms_key_id);
#undef ADD
	for (i = 0; i < o->nheaders && n < cap; i++)
		h[n++] = o->headers[i];
	return n;
}

int s3d_put_object(s3d_client *c, const char *bucket, const char *key,
		   const void *data, size_t len, const s3d_put_opts *opts,
		   s3d_obj_info *out, s3d_error *err)
{
	s3d_kv h[S3D_MAX_REQ_HEADERS];
	s3d_req r;
	int rc = check_names(bucket, key, 1);

	if (rc != S3D_OK || (!data && len))
		return s3d_err_set(err, rc ? rc : S3D_E_INVAL, "invalid bucket, key or body");
	req_init(&r, "PUT", bucket, key);
	r.body = data ? data : (const uint8_t *)"";
	r.body_len = len;
	r.headers = h;
	r.nheaders = put_headers(opts, h, S3D_MAX_REQ_HEADERS);
	return s3d_client_perform(c, &r, out, err);
}

int s3d_put_object_stream(s3d_client *c, const char *bucket, const char *key,
			  int64_t len, s3d_read_fn read, s3d_rewind_fn rewind,
			  void *ud, const s3d_put_opts *opts, s3d_obj_info *out,
			  s3d_error *err)
{
	s3d_kv h[S3D_MAX_REQ_HEADERS];
	s3d_req r;
	int rc = check_names(bucket, key, 1);

	if (rc != S3D_OK || !read || len < 0)
		return s3d_err_set(err, rc ? rc : S3D_E_INVAL, "invalid bucket, key or stream");
	req_init(&r, "PUT", bucket, key);
	r.read = read;
	r.rewind = rewind;
	r.read_ud = ud;
	r.stream_len = len;
	r.retryable = rewind != NULL;
	r.headers = h;
	r.nheaders = put_headers(opts, h, S3D_MAX_REQ_HEADERS);
	return s3d_client_perform(c, &r, out, err);
}

int s3d_get_object(s3d_client *c, const char *bucket, const char *key,
		   int64_t offset, int64_t length, s3d_write_fn write, void *ud,
		   s3d_obj_info *info, s3d_error *err)
{
	s3d_req r;
	int rc = check_names(bucket, key, 1);

	if (rc != S3D_OK || !write || offset < 0 || length < -1)
		return s3d_err_set(err, rc ? rc : S3D_E_INVAL, "invalid get arguments");
	if (length == 0) /* nothing to read: still report whether it exists */
		return s3d_head_object(c, bucket, key, 0, info, err);
	req_init(&r, "GET", bucket, key);
	r.write = write;
	r.write_ud = ud;
	if (offset > 0 || length > 0) {
		r.range_first = offset;
		r.range_last = length > 0 ? offset + length - 1 : -1;
	}
	return s3d_client_perform(c, &r, info, err);
}

int s3d_head_object(s3d_client *c, const char *bucket, const char *key,
		    int checksum_mode, s3d_obj_info *info, s3d_error *err)
{
	s3d_kv h[] = { { "x-amz-checksum-mode", "ENABLED" } };
	s3d_req r;
	int rc = check_names(bucket, key, 1);

	if (rc != S3D_OK)
		return s3d_err_set(err, rc, "invalid bucket or key");
	req_init(&r, "HEAD", bucket, key);
	r.head = 1;
	if (checksum_mode) {
		r.headers = h;
		r.nheaders = 1;
	}
	return s3d_client_perform(c, &r, info, err);
}

int s3d_delete_object(s3d_client *c, const char *bucket, const char *key, s3d_error *err)
{
	s3d_req r;
	int rc = check_names(bucket, key, 1);

	if (rc != S3D_OK)
		return s3d_err_set(err, rc, "invalid bucket or key");
	req_init(&r, "DELETE", bucket, key);
	return s3d_client_perform(c, &r, NULL, err);
}

static int content_md5(const s3d_buf *body, char out[32])
{
	uint8_t md[16];
	unsigned int n = 0;

	if (EVP_Digest(body->ptr, body->len, md, &n, EVP_md5(), NULL) != 1 || n != 16)
		return S3D_E_CRYPTO;
	return s3d_base64(md, 16, out, 32);
}

int s3d_delete_objects(s3d_client *c, const char *bucket, const char *const *keys,
		       size_t nkeys, s3d_error *err)
{
	s3d_kv q[] = { { "delete", "" } };
	s3d_kv h[] = { { "Content-MD5", NULL }, { "Content-Type", "application/xml" } };
	s3d_buf body, resp;
	s3d_error first;
	char md5[32];
	size_t done, batch;
	int rc = check_names(bucket, NULL, 0), nerr = 0, total_err = 0;
	s3d_req r;

	if (rc != S3D_OK || (!keys && nkeys))
		return s3d_err_set(err, rc ? rc : S3D_E_INVAL, "invalid bucket or keys");
	s3d_buf_init(&body, 8u << 20);
	s3d_buf_init(&resp, S3D_XML_BODY_MAX);
	s3d_error_clear(&first);
	for (done = 0; rc == S3D_OK && done < nkeys; done += batch) {
		s3d_error e;

		batch = nkeys - done > 1000 ? 1000 : nkeys - done;
		s3d_buf_reset(&body);
		rc = s3d_xml_build_delete(keys + done, batch, &body);
		if (rc == S3D_OK)
			rc = content_md5(&body, md5);
		if (rc != S3D_OK)
			break;
		h[0].value = md5;
		req_init(&r, "POST", bucket, NULL);
		r.query = q;
		r.nquery = 1;
		r.headers = h;
		r.nheaders = 2;
		r.body = body.ptr;
		r.body_len = body.len;
		r.resp = &resp;
		rc = s3d_client_perform(c, &r, NULL, err);
		if (rc != S3D_OK)
			break;
		s3d_error_clear(&e);
		rc = s3d_xml_parse_delete_result((const char *)resp.ptr, resp.len, &nerr, &e);
		if (rc == S3D_OK && nerr > 0 && total_err == 0)
			first = e;
		total_err += nerr;
	}
	if (rc == S3D_OK && total_err > 0) {
		if (err)
			*err = first;
		rc = S3D_E_S3;
	}
	s3d_buf_cleanup(&body);
	s3d_buf_cleanup(&resp);
	return rc;
}

/* "/bucket/key" with the key URI-encoded ('/' kept), for x-amz-copy-source. */
static int copy_source(const char *bucket, const char *key, s3d_buf *out)
{
	int rc = s3d_buf_appendc(out, '/');

	if (rc == S3D_OK)
		rc = s3d_uri_encode(out, bucket, strlen(bucket), 0);
	if (rc == S3D_OK)
		rc = s3d_buf_appendc(out, '/');
	if (rc == S3D_OK)
		rc = s3d_uri_encode(out, key, strlen(key), 1);
	return rc;
}

/* CopyObject and UploadPartCopy may answer 200 and still carry an <Error>. */
static int copy_answer(const s3d_buf *resp, char etag[136], int64_t *lm, s3d_error *err)
{
	s3d_error e;

	s3d_error_clear(&e);
	if (resp->len && s3d_xml_parse_error((const char *)resp->ptr, resp->len, &e) == S3D_OK) {
		e.http_status = 200;
		if (err)
			*err = e;
		return S3D_E_S3;
	}
	return s3d_xml_parse_copy_result((const char *)resp->ptr, resp->len, etag, lm);
}

int s3d_copy_object(s3d_client *c, const char *src_bucket, const char *src_key,
		    const char *bucket, const char *key, const s3d_put_opts *opts,
		    s3d_obj_info *out, s3d_error *err)
{
	s3d_kv h[S3D_MAX_REQ_HEADERS];
	s3d_buf src, resp;
	s3d_obj_info info;
	s3d_req r;
	size_t n;
	int rc = check_names(bucket, key, 1);

	if (rc == S3D_OK)
		rc = check_names(src_bucket, src_key, 1);
	if (rc != S3D_OK)
		return s3d_err_set(err, rc, "invalid bucket or key");
	s3d_buf_init(&src, 8192);
	s3d_buf_init(&resp, S3D_XML_BODY_MAX);
	rc = copy_source(src_bucket, src_key, &src);
	n = put_headers(opts, h + 1, S3D_MAX_REQ_HEADERS - 2);
	h[0].name = "x-amz-copy-source";
	h[0].value = s3d_buf_str(&src);
	if (opts) { /* opts replace the source's metadata */
		h[n + 1].name = "x-amz-metadata-directive";
		h[n + 1].value = "REPLACE";
		n++;
	}
	req_init(&r, "PUT", bucket, key);
	r.headers = h;
	r.nheaders = n + 1;
	r.body = (const uint8_t *)"";
	r.resp = &resp;
	memset(&info, 0, sizeof(info));
	if (rc == S3D_OK)
		rc = s3d_client_perform(c, &r, &info, err);
	if (rc == S3D_OK)
		rc = copy_answer(&resp, info.etag, &info.last_modified, err);
	if (rc == S3D_OK && out)
		*out = info;
	s3d_buf_cleanup(&src);
	s3d_buf_cleanup(&resp);
	return rc;
}

int s3d_create_multipart(s3d_client *c, const char *bucket, const char *key,
			 const s3d_put_opts *opts, s3d_buf *upload_id, s3d_error *err)
{
	s3d_kv q[] = { { "uploads", "" } };
	s3d_kv h[S3D_MAX_REQ_HEADERS + 1];
	s3d_buf resp;
	s3d_req r;
	size_t n;
	int rc = check_names(bucket, key, 1);

	if (rc != S3D_OK || !upload_id)
		return s3d_err_set(err, rc ? rc : S3D_E_INVAL, "invalid bucket or key");
	n = put_headers(opts, h, S3D_MAX_REQ_HEADERS);
	s3d_buf_init(&resp, S3D_XML_BODY_MAX);
	req_init(&r, "POST", bucket, key);
	r.query = q;
	r.nquery = 1;
	r.headers = h;
	r.nheaders = n;
	r.body = (const uint8_t *)"";
	r.resp = &resp;
	rc = s3d_client_perform(c, &r, NULL, err);
	if (rc == S3D_OK) {
		s3d_buf_reset(upload_id);
		rc = s3d_xml_parse_initiate((const char *)resp.ptr, resp.len, upload_id);
		if (rc != S3D_OK)
			s3d_err_set(err, rc, "bad InitiateMultipartUploadResult");
	}
	s3d_buf_cleanup(&resp);
	return rc;
}

static int check_upload(const char *bucket, const char *key, const char *upload_id,
			int part_number)
{
	int rc = check_names(bucket, key, 1);

	if (rc == S3D_OK && (!upload_id || !*upload_id))
		rc = S3D_E_INVAL;
	if (rc == S3D_OK && part_number != 0 && (part_number < 1 || part_number > 10000))
		rc = S3D_E_INVAL;
	return rc;
}

int s3d_upload_part(s3d_client *c, const char *bucket, const char *key,
		    const char *upload_id, int part_number, const void *data,
		    size_t len, const char *checksum_sha256, s3d_part *out,
		    s3d_error *err)
{
	char pn[16];
	s3d_kv q[] = { { "partNumber", pn }, { "uploadId", upload_id } };
	s3d_kv h[] = { { "x-amz-checksum-sha256", checksum_sha256 } };
	s3d_obj_info info;
	s3d_req r;
	int rc = check_upload(bucket, key, upload_id, part_number);

	if (rc != S3D_OK || part_number == 0 || (!data && len))
		return s3d_err_set(err, rc ? rc : S3D_E_INVAL, "invalid part arguments");
	snprintf(pn, sizeof(pn), "%d", part_number);
	req_init(&r, "PUT", bucket, key);
	r.query = q;
	r.nquery = 2;
	r.headers = h;
	r.nheaders = checksum_sha256 && *checksum_sha256 ? 1 : 0;
	r.body = data ? data : (const uint8_t *)"";
	r.body_len = len;
	rc = s3d_client_perform(c, &r, &info, err);
	if (rc == S3D_OK && out) {
		memset(out, 0, sizeof(*out));
		out->number = part_number;
		out->size = (int64_t)len;
		snprintf(out->etag, sizeof(out->etag), "%s", info.etag);
		snprintf(out->checksum_sha256, sizeof(out->checksum_sha256), "%s",
			 checksum_sha256 && *checksum_sha256 ? checksum_sha256 : info.checksum_sha256);
	}
	return rc;
}

int s3d_upload_part_copy(s3d_client *c, const char *bucket, const char *key,
			 const char *upload_id, int part_number,
			 const char *src_bucket, const char *src_key,
			 int64_t first, int64_t last, s3d_part *out, s3d_error *err)
{
	char pn[16], range[64];
	s3d_kv q[] = { { "partNumber", pn }, { "uploadId", upload_id } };
	s3d_kv h[2];
	s3d_buf src, resp;
	s3d_req r;
	int64_t lm = 0;
	char etag[136] = "";
	int rc = check_upload(bucket, key, upload_id, part_number);

	if (rc == S3D_OK)
		rc = check_names(src_bucket, src_key, 1);
	if (rc != S3D_OK || part_number == 0 || (first >= 0 && last < first))
		return s3d_err_set(err, rc ? rc : S3D_E_INVAL, "invalid part copy arguments");
	snprintf(pn, sizeof(pn), "%d", part_number);
	s3d_buf_init(&src, 8192);
	s3d_buf_init(&resp, S3D_XML_BODY_MAX);
	rc = copy_source(src_bucket, src_key, &src);
	h[0].name = "x-amz-copy-source";
	h[0].value = s3d_buf_str(&src);
	h[1].name = "x-amz-copy-source-range";
	snprintf(range, sizeof(range), "bytes=%lld-%lld", (long long)first, (long long)last);
	h[1].value = range;
	req_init(&r, "PUT", bucket, key);
	r.query = q;
	r.nquery = 2;
	r.headers = h;
	r.nheaders = first >= 0 ? 2 : 1;
	r.body = (const uint8_t *)"";
	r.resp = &resp;
	if (rc == S3D_OK)
		rc = s3d_client_perform(c, &r, NULL, err);
	if (rc == S3D_OK)
		rc = copy_answer(&resp, etag, &lm, err);
	if (rc == S3D_OK && out) {
		memset(out, 0, sizeof(*out));
		out->number = part_number;
		out->size = first >= 0 ? last - first + 1 : -1;
		out->last_modified = lm;
		snprintf(out->etag, sizeof(out->etag), "%s", etag);
	}
	s3d_buf_cleanup(&src);
	s3d_buf_cleanup(&resp);
	return rc;
}

int s3d_complete_multipart(s3d_client *c, const char *bucket, const char *key,
			   const char *upload_id, const s3d_part *parts,
			   size_t nparts, s3d_obj_info *out, s3d_error *err)
{
	s3d_kv q[] = { { "uploadId", upload_id } };
	s3d_kv h[] = { { "Content-Type", "application/xml" } };
	s3d_buf body, resp;
	s3d_obj_info info;
	s3d_req r;
	size_t i;
	int rc = check_upload(bucket, key, upload_id, 0);

	if (rc != S3D_OK || !parts || nparts == 0 || nparts > 10000)
		return s3d_err_set(err, rc ? rc : S3D_E_INVAL, "invalid complete arguments");
	for (i = 1; i < nparts; i++)
		if (parts[i].number <= parts[i - 1].number)
			return s3d_err_set(err, S3D_E_INVAL, "parts not in ascending order");
	s3d_buf_init(&body, 4u << 20);
	s3d_buf_init(&resp, S3D_XML_BODY_MAX);
	rc = s3d_xml_build_complete(parts, nparts, &body);
	req_init(&r, "POST", bucket, key);
	r.query = q;
	r.nquery = 1;
	r.headers = h;
	r.nheaders = 1;
	r.body = body.ptr;
	r.body_len = body.len;
	r.resp = &resp;
	memset(&info, 0, sizeof(info));
	if (rc == S3D_OK)
		rc = s3d_client_perform(c, &r, &info, err);
	if (rc == S3D_OK) {
		rc = s3d_xml_parse_complete((const char *)resp.ptr, resp.len, &info, err);
		if (rc == S3D_E_S3 && err)
			err->http_status = 200; /* an <Error> inside a 200 answer */
	}
	if (rc == S3D_OK && out)
		*out = info;
	s3d_buf_cleanup(&body);
	s3d_buf_cleanup(&resp);
	return rc;
}

int s3d_abort_multipart(s3d_client *c, const char *bucket, const char *key,
			const char *upload_id, s3d_error *err)
{
	s3d_kv q[] = { { "uploadId", upload_id } };
	s3d_req r;
	int rc = check_upload(bucket, key, upload_id, 0);

	if (rc != S3D_OK)
		return s3d_err_set(err, rc, "invalid abort arguments");
	req_init(&r, "DELETE", bucket, key);
	r.query = q;
	r.nquery = 1;
	return s3d_client_perform(c, &r, NULL, err);
}

/* ---- listing: pages until done, stopped, or one page when asked ---- */

struct list_call {
	const char *bucket, *key;
	int kind;
	s3d_kv q[8];
	size_t nq;
};

static void list_add(struct list_call *l, const char *name, const char *value)
{
	if (value && l->nq < 8) {
		l->q[l->nq].name = name;
		l->q[l->nq++].value = value;
	}
}

static int list_pages(s3d_client *c, struct list_call *l, const s3d_list_opts *o,
		      s3d_list_fn fn, void *ud, s3d_error *err)
{
	s3d_buf resp, token, uid_marker;
	s3d_xml_page page;
	char maxk[16], pnm[16];
	size_t base = l->nq;
	long pages = 0;
	int rc = S3D_OK, part_marker = o ? o->part_number_marker : 0;
	s3d_req r;

	s3d_buf_init(&resp, S3D_XML_BODY_MAX);
	s3d_buf_init(&token, 8192);
	s3d_buf_init(&uid_marker, 8192);
	if (o && o->continuation && o->continuation->len)
		rc = s3d_buf_append(&token, o->continuation->ptr, o->continuation->len);
	else if (o && l->kind == S3D_ENTRY_UPLOAD && o->key_marker)
		rc = s3d_buf_appendz(&token, o->key_marker);
	if (rc == S3D_OK && o && o->upload_id_marker)
		rc = s3d_buf_appendz(&uid_marker, o->upload_id_marker);
	snprintf(maxk, sizeof(maxk), "%d", o && o->max_keys > 0 ? o->max_keys : 1000);
	s3d_xml_page_init(&page);
	while (rc == S3D_OK && pages++ < LIST_PAGES_MAX) {
		l->nq = base;
		if (l->kind == S3D_ENTRY_OBJECT) {
			list_add(l, "max-keys", maxk);
			if (token.len)
				list_add(l, "continuation-token", s3d_buf_str(&token));
		} else if (l->kind == S3D_ENTRY_UPLOAD) {
			list_add(l, "max-uploads", maxk);
			if (token.len)
				list_add(l, "key-marker", s3d_buf_str(&token));
			if (uid_marker.len)
				list_add(l, "upload-id-marker", s3d_buf_str(&uid_marker));
		} else {
			list_add(l, "max-parts", maxk);
			snprintf(pnm, sizeof(pnm), "%d", part_marker);
			if (part_marker > 0)
				list_add(l, "part-number-marker", pnm);
		}
		req_init(&r, "GET", l->bucket, l->key);
		r.query = l->q;
		r.nquery = l->nq;
		r.resp = &resp;
		rc = s3d_client_perform(c, &r, NULL, err);
		if (rc != S3D_OK)
			break;
		s3d_xml_page_cleanup(&page);
		s3d_xml_page_init(&page);
		rc = s3d_xml_parse_list((const char *)resp.ptr, resp.len, l->kind, fn, ud, &page);
		if (rc != S3D_OK) {
			s3d_err_set(err, rc, "malformed list response");
			break;
		}
		s3d_buf_reset(&token);
		s3d_buf_reset(&uid_marker);
		if (!page.truncated)
			break;
		if (l->kind == S3D_ENTRY_PART) {
			if (page.next_part_number_marker <= part_marker) {
				rc = s3d_err_set(err, S3D_E_PROTOCOL, "list parts did not advance");
				break;
			}
			part_marker = page.next_part_number_marker;
		} else {
			if (!page.next_token.len) {
				rc = s3d_err_set(err, S3D_E_PROTOCOL, "truncated list without a marker");
				break;
			}
			rc = s3d_buf_append(&token, page.next_token.ptr, page.next_token.len);
			if (rc == S3D_OK && page.next_upload_id_marker.len)
				rc = s3d_buf_append(&uid_marker, page.next_upload_id_marker.ptr,
						    page.next_upload_id_marker.len);
		}
		if (page.stopped || (o && o->single_page))
			break;
	}
	/* hand the resume point back: token, or the part number as text */
	if (rc == S3D_OK && o && o->continuation) {
		s3d_buf_reset(o->continuation);
		if (page.truncated && l->kind == S3D_ENTRY_PART)
			rc = s3d_buf_printf(o->continuation, "%d", part_marker);
		else if (page.truncated)
			rc = s3d_buf_append(o->continuation, token.ptr, token.len);
	}
	s3d_xml_page_cleanup(&page);
	s3d_buf_cleanup(&resp);
	s3d_buf_cleanup(&token);
	s3d_buf_cleanup(&uid_marker);
	return rc;
}

int s3d_list_objects(s3d_client *c, const char *bucket, const s3d_list_opts *o,
		     s3d_list_fn fn, void *ud, s3d_error *err)
{
	struct list_call l = { .bucket = bucket, .kind = S3D_ENTRY_OBJECT };
	int rc = check_names(bucket, NULL, 0);

	if (rc != S3D_OK || !fn)
		return s3d_err_set(err, rc ? rc : S3D_E_INVAL, "invalid list arguments");
	list_add(&l, "list-type", "2");
	/* keys with bytes XML cannot carry come back percent-encoded */
	list_add(&l, "encoding-type", "url");
	if (o) {
		list_add(&l, "prefix", o->prefix);
		list_add(&l, "delimiter", o->delimiter);
		list_add(&l, "start-after", o->start_after);
	}
	return list_pages(c, &l, o, fn, ud, err);
}

int s3d_list_multipart_uploads(s3d_client *c, const char *bucket,
			       const s3d_list_opts *o, s3d_list_fn fn, void *ud,
			       s3d_error *err)
{
	struct list_call l = { .bucket = bucket, .kind = S3D_ENTRY_UPLOAD };
	int rc = check_names(bucket, NULL, 0);

	if (rc != S3D_OK || !fn)
		return s3d_err_set(err, rc ? rc : S3D_E_INVAL, "invalid list arguments");
	list_add(&l, "uploads", "");
	list_add(&l, "encoding-type", "url");
	if (o) {
		list_add(&l, "prefix", o->prefix);
		list_add(&l, "delimiter", o->delimiter);
	}
	return list_pages(c, &l, o, fn, ud, err);
}

int s3d_list_parts(s3d_client *c, const char *bucket, const char *key,
		   const char *upload_id, const s3d_list_opts *o,
		   s3d_list_fn fn, void *ud, s3d_error *err)
{
	struct list_call l = { .bucket = bucket, .key = key, .kind = S3D_ENTRY_PART };
	s3d_list_opts local;
	int rc = check_upload(bucket, key, upload_id, 0);

	if (rc != S3D_OK || !fn)
		return s3d_err_set(err, rc ? rc : S3D_E_INVAL, "invalid list arguments");
	list_add(&l, "uploadId", upload_id);
	/* a continuation from a previous call is the part number marker */
	if (o && o->continuation && o->continuation->len) {
		local = *o;
		local.part_number_marker = atoi(s3d_buf_str(o->continuation));
		s3d_buf_reset(local.continuation);
		o = &local;
	}
	return list_pages(c, &l, o, fn, ud, err);
}

struct part_acc {
	s3d_part *v;
	size_t n, cap;
	int rc;
};

static int acc_part(void *ud, const s3d_list_entry *e)
{
	struct part_acc *a = ud;
	s3d_part *p;

	if (e->kind != S3D_ENTRY_PART)
		return 0;
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 16;

		if (ncap > S3D_MAX_PARTS)
			ncap = S3D_MAX_PARTS;
		if (ncap <= a->n) {
			a->rc = S3D_E_TOOBIG;
			return 1;
		}
		p = realloc(a->v, ncap * sizeof(*p));
		if (!p) {
			a->rc = S3D_E_NOMEM;
			return 1;
		}
		a->v = p;
		a->cap = ncap;
	}
	p = &a->v[a->n++];
	memset(p, 0, sizeof(*p));
	p->number = e->part_number;
	p->size = e->size;
	p->last_modified = e->last_modified;
	snprintf(p->etag, sizeof(p->etag), "%s", e->etag ? e->etag : "");
	snprintf(p->checksum_sha256, sizeof(p->checksum_sha256), "%s",
		 e->checksum_sha256 ? e->checksum_sha256 : "");
	return 0;
}

static int part_number_cmp(const void *x, const void *y)
{
	const s3d_part *a = x, *b = y;

	return (a->number > b->number) - (a->number < b->number);
}

int s3d_list_parts_all(s3d_client *c, const char *bucket, const char *key,
		       const char *upload_id, s3d_part **parts, size_t *nparts,
		       s3d_error *err)
{
	struct part_acc a;
	int rc;

	if (!parts || !nparts)
		return s3d_err_set(err, S3D_E_INVAL, "missing argument");
	*parts = NULL;
	*nparts = 0;
	memset(&a, 0, sizeof(a));
	rc = s3d_list_parts(c, bucket, key, upload_id, NULL, acc_part, &a, err);
	if (rc == S3D_OK && a.rc != S3D_OK)
		rc = s3d_err_set(err, a.rc, "%s", a.rc == S3D_E_NOMEM ? "out of memory"
								 : "more than 10000 parts listed");
	if (rc != S3D_OK) {
		free(a.v);
		return rc;
	}
	if (a.n > 1)
		qsort(a.v, a.n, sizeof(*a.v), part_number_cmp);
	*parts = a.v;
	*nparts = a.n;
	return S3D_OK;
}

int s3d_client_presign_query(s3d_client *c, const char *method, const char *bucket,
			     const char *key, const s3d_kv *query, size_t nquery,
			     const s3d_kv *headers, size_t nheaders, time_t when,
			     int64_t expires, s3d_buf *url_out)
{
	s3d_sigv4_request sr;
	s3d_sigv4_result res;
	s3d_xfer x;
	s3d_buf path;
	s3d_req r;
	char host[512];
	int rc = check_names(bucket, key, 1);

	if (rc != S3D_OK || !method || !url_out)
		return rc ? rc : S3D_E_INVAL;
	req_init(&r, method, bucket, key);
	s3d_xfer_init(&x);
	s3d_buf_init(&path, 4096);
	s3d_sigv4_result_init(&res);
	rc = build_url(c, &x, &r, &path, host, sizeof(host));
	memset(&sr, 0, sizeof(sr));
	sr.method = method;
	sr.host = host;
	sr.path = s3d_buf_str(&path);
	sr.query = query;
	sr.nquery = nquery;
	sr.headers = headers;
	sr.nheaders = nheaders;
	sr.when = when ? when : time(NULL);
	sr.expires = expires;
	if (rc == S3D_OK)
		rc = s3d_sigv4_presign(c->signer, &sr, &res);
	if (rc == S3D_OK)
		rc = s3d_buf_printf(url_out, "%s?%s", s3d_buf_str(&x.url), s3d_buf_str(&res.query));
	s3d_sigv4_result_cleanup(&res);
	s3d_buf_cleanup(&path);
	s3d_xfer_cleanup(&x);
	return rc;
}

int s3d_client_presign(s3d_client *c, const char *method, const char *bucket,
		       const char *key, const s3d_kv *headers, size_t nheaders,
		       time_t when, int64_t expires, s3d_buf *url_out)
{
	return s3d_client_presign_query(c, method, bucket, key, NULL, 0, headers, nheaders,
					when, expires, url_out);
}

int s3d_create_bucket(s3d_client *c, const char *bucket, s3d_error *err)
{
	s3d_buf body;
	s3d_req r;
	s3d_error e;
	int rc = check_names(bucket, NULL, 0);

	if (rc != S3D_OK)
		return s3d_err_set(err, rc, "invalid bucket");
	s3d_buf_init(&body, 1024);
	/* us-east-1 is the default location and takes no configuration */
	if (strcmp(c->region, "us-east-1") != 0)
		rc = s3d_buf_printf(&body,
				    "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
				    "<LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>",
				    c->region);
	req_init(&r, "PUT", bucket, NULL);
	r.body = body.ptr ? body.ptr : (const uint8_t *)"";
	r.body_len = body.len;
	s3d_error_clear(&e);
	if (rc == S3D_OK)
		rc = s3d_client_perform(c, &r, NULL, &e);
	if (rc == S3D_E_S3 && strcmp(e.code, "BucketAlreadyOwnedByYou") == 0)
		rc = S3D_OK;
	if (rc != S3D_OK && err)
		*err = e;
	s3d_buf_cleanup(&body);
	return rc;
}
