/*
 * Streaming SHA-256 of an S3 object: HEAD for the size (and ETag), then
 * ranged GETs, up to max_in_flight at once on one curl multi handle driven
 * in the caller's thread. Each range lands in its slot's own buffer; a
 * hashing thread takes ranges strictly in order, so receiving and hashing
 * overlap, and a slot is refilled with the next range to fetch only once its
 * range has been hashed. Memory is max_in_flight * range_size, whatever the
 * object's size. The lock guards slot states and the shared counters; the
 * hashing itself and curl's transfers run outside it.
 */
#include "verify.h"

#include "buf.h"
#include "err.h"
#include "s3_client.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_MAX_MS 1000

enum vslot_state { VS_FREE, VS_RUNNING, VS_WAITING, VS_DONE, VS_HASHING };

struct vslot {
	s3d_xfer x;             /* CURLOPT_PRIVATE points here */
	CURL *easy;
	s3d_req req;
	s3d_kv hdr[1];
	uint8_t *buf;           /* range_size bytes (or the object's size if smaller) */
	size_t fill;            /* bytes of this attempt received */
	size_t want;            /* bytes in the range */
	int64_t index;          /* which range */
	int state;
	int overflow;           /* the server sent more than the range */
	int attempt;
	int64_t started_ms;
	int64_t not_before_ms;
};

struct verify {
	s3d_client *c;
	const char *bucket;
	const char *key;
	char etag[136];
	int64_t size;
	size_t range_size;
	int nslots;
	struct vslot *slots;
	CURLM *multi;
	EVP_MD_CTX *md;
	int64_t nranges;
	int64_t next_fetch;
	int64_t next_hash;
	int64_t hashed;
	int rc;
	s3d_error err;
	s3d_verify_stats st;
	pthread_mutex_t lock;
	pthread_cond_t ready;   /* a range is done, or stop */
	int stop;
};

static int vfail(struct verify *v, int rc, const s3d_error *e)
{
	if (v->rc == S3D_OK) {
		v->rc = rc;
		if (e)
			v->err = *e;
	}
	return rc;
}

static int vfail_local(struct verify *v, int rc, const char *what)
{
	s3d_error e;

	s3d_error_clear(&e);
	snprintf(e.resource, sizeof(e.resource), "GET %s/%s", v->bucket, v->key);
	s3d_err_set(&e, rc, "%s", what);
	return vfail(v, rc, &e);
}

static int range_write(void *ud, const uint8_t *p, size_t n)
{
	struct vslot *s = ud;

	if (n > s->want - s->fill) {
		s->overflow = 1;
		return 1;
	}
	memcpy(s->buf + s->fill, p, n);
	s->fill += n;
	return 0;
}

/* One attempt at the slot's range, from its first byte. */
static int range_start(struct verify *v, struct vslot *s)
{
	int rc, i, running = 0;

	s->fill = 0;
	s->overflow = 0;
	s->x.delivered = 0; /* else the request would resume after delivered */
	if (!s->easy && !(s->easy = s3d_client_easy_get(v->c)))
		return S3D_E_NOMEM;
	rc = s3d_xfer_setup(v->c, &s->x, &s->req, s->easy);
	if (rc != S3D_OK)
		return rc;
	if (curl_multi_add_handle(v->multi, s->easy) != CURLM_OK)
		return S3D_E_TRANSPORT;
	s->state = VS_RUNNING;
	v->st.attempts++;
	for (i = 0; i < v->nslots; i++)
		running += v->slots[i].state == VS_RUNNING;
	if (running > v->st.in_flight_peak)
		v->st.in_flight_peak = running;
	return S3D_OK;
}

static void range_assign(struct verify *v, struct vslot *s)
{
	int64_t first = v->next_fetch * (int64_t)v->range_size;
	int64_t left = v->size - first;

	s->index = v->next_fetch++;
	s->want = left < (int64_t)v->range_size ? (size_t)left : v->range_size;
	memset(&s->req, 0, sizeof(s->req));
	s->req.method = "GET";
	s->req.bucket = v->bucket;
	s->req.key = v->key;
	s->req.write = range_write;
	s->req.write_ud = s;
	s->req.retryable = 1;
	s->req.range_first = first;
	s->req.range_last = first + (int64_t)s->want - 1;
	if (v->etag[0]) { /* every range from the object HEAD saw */
		s->hdr[0].name = "If-Match";
		s->hdr[0].value = v->etag;
		s->req.headers = s->hdr;
		s->req.nheaders = 1;
	}
	s->attempt = 1;
	s->started_ms = s3d_now_ms();
}

static void start_free(struct verify *v)
{
	int i, rc;

	for (i = 0; i < v->nslots && v->next_fetch < v->nranges && v->rc == S3D_OK; i++) {
		struct vslot *s = &v->slots[i];

		if (s->state != VS_FREE)
			continue;
		range_assign(v, s);
		rc = range_start(v, s);
		if (rc != S3D_OK) {
			s->state = VS_FREE;
			vfail_local(v, rc, "cannot start a ranged GET");
		}
	}
}

static struct vslot *slot_of_easy(struct verify *v, CURL *easy)
{
	char *priv = NULL;
	int i;

	if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv)
		return NULL;
	for (i = 0; i < v->nslots; i++)
		if ((char *)&v->slots[i].x == priv)
			return &v->slots[i];
	return NULL;
}

static int range_check(struct verify *v, struct vslot *s, s3d_error *e)
{
	if (s->fill != s->want)
		return s3d_err_set(e, S3D_E_PROTOCOL, "range %lld: %zu bytes instead of %zu",
				   (long long)s->index, s->fill, s->want);
	if (s->x.info.size >= 0 && s->x.info.size != v->size)
		return s3d_err_set(e, S3D_E_PROTOCOL, "object is now %lld bytes, was %lld",
				   (long long)s->x.info.size, (long long)v->size);
	return S3D_OK;
}

static void range_done(struct verify *v, CURL *easy, CURLcode cc)
{
	struct vslot *s = slot_of_easy(v, easy);
	s3d_error e;
	long wait;
	int retry = 0, rc;

	curl_multi_remove_handle(v->multi, easy);
	if (!s || s->state != VS_RUNNING) {
		vfail_local(v, S3D_E_PROTOCOL, "finished transfer without a slot");
		return;
	}
	s3d_error_clear(&e);
	rc = s3d_xfer_finish(&s->x, easy, cc, &e, &retry);
	if (rc == S3D_E_ABORTED && s->overflow) {
		retry = 0;
		rc = s3d_err_set(&e, S3D_E_PROTOCOL, "range %lld: more bytes than asked",
				 (long long)s->index);
	}
	if (rc == S3D_OK)
		rc = range_check(v, s, &e);
	if (rc == S3D_OK) {
		s->state = VS_DONE;
		return;
	}
	if (retry && s->attempt <= s3d_client_max_retries(v->c)) {
		wait = s3d_client_backoff_ms(v->c, s->attempt, s->started_ms);
		if (wait > 0) {
			s->attempt++;
			s->not_before_ms = s3d_now_ms() + wait;
			s->state = VS_WAITING;
			return;
		}
	}
	e.attempts = s->attempt;
	s->state = VS_FREE;
	vfail(v, rc, &e);
}

static long start_due(struct verify *v)
{
	int64_t now = s3d_now_ms();
	long next = POLL_MAX_MS;
	int i, rc;

	for (i = 0; i < v->nslots; i++) {
		struct vslot *s = &v->slots[i];

		if (s->state != VS_WAITING)
			continue;
		if (s->not_before_ms > now) {
			if (s->not_before_ms - now < next)
				next = (long)(s->not_before_ms - now);
			continue;
		}
		rc = range_start(v, s);
		if (rc != S3D_OK) {
			s->state = VS_FREE;
			vfail_local(v, rc, "cannot restart a ranged GET");
		}
		next = 0;
	}
	return next;
}

static long pump(struct verify *v)
{
	CURLMsg *msg;
	CURLMcode mc;
	int running = 0, left = 0;

	mc = curl_multi_perform(v->multi, &running);
	if (mc != CURLM_OK) {
		vfail_local(v, S3D_E_TRANSPORT, curl_multi_strerror(mc));
		return 0;
	}
	while ((msg = curl_multi_info_read(v->multi, &left)) != NULL) {
		if (msg->msg == CURLMSG_DONE) {
			CURL *easy = msg->easy_handle;
			CURLcode cc = msg->data.result;

			range_done(v, easy, cc); /* msg is invalid after the removal */
		}
	}
	return start_due(v);
}

static struct vslot *next_in_order(struct verify *v)
{
	int i;

	for (i = 0; i < v->nslots; i++)
		if (v->slots[i].state == VS_DONE && v->slots[i].index == v->next_hash)
			return &v->slots[i];
	return NULL;
}

/* The hashing thread: ranges in order, the digest update outside the lock. */
static void *hasher(void *arg)
{
	struct verify *v = arg;
	struct vslot *s;
	int ok;

	pthread_mutex_lock(&v->lock);
	for (;;) {
		while (!v->stop && v->rc == S3D_OK && !(s = next_in_order(v)))
			pthread_cond_wait(&v->ready, &v->lock);
		if (v->stop || v->rc != S3D_OK)
			break;
		s->state = VS_HASHING;
		pthread_mutex_unlock(&v->lock);
		ok = EVP_DigestUpdate(v->md, s->buf, s->fill) == 1;
		pthread_mutex_lock(&v->lock);
		if (!ok) {
			vfail_local(v, S3D_E_CRYPTO, "EVP_DigestUpdate failed");
		} else {
			v->hashed += (int64_t)s->fill;
			v->next_hash++;
			v->st.ranges++;
			s->state = VS_FREE;
		}
		curl_multi_wakeup(v->multi); /* the fetch loop may refill the slot */
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

static void run(struct verify *v)
{
	pthread_t th;
	long timeout;
	CURLMcode mc;

	if (pthread_create(&th, NULL, hasher, v) != 0) {
		vfail_local(v, S3D_E_NOMEM, "cannot start the hashing thread");
		return;
	}
	pthread_mutex_lock(&v->lock);
	while (v->rc == S3D_OK && v->next_hash < v->nranges) {
		start_free(v);
		if (v->rc != S3D_OK)
			break;
		timeout = pump(v);
		pthread_cond_signal(&v->ready);
		if (v->rc != S3D_OK || v->next_hash >= v->nranges)
			break;
		pthread_mutex_unlock(&v->lock);
		mc = curl_multi_poll(v->multi, NULL, 0, (int)timeout, NULL);
		pthread_mutex_lock(&v->lock);
		if (mc != CURLM_OK)
			vfail_local(v, S3D_E_TRANSPORT, curl_multi_strerror(mc));
	}
	v->stop = 1;
	pthread_cond_signal(&v->ready);
	pthread_mutex_unlock(&v->lock);
	pthread_join(th, NULL);
}

static int setup(struct verify *v, const s3d_verify_config *cfg)
{
	size_t rs = cfg && cfg->range_size ? cfg->range_size : S3D_VERIFY_DEFAULT_RANGE;
	int n = cfg && cfg->max_in_flight ? cfg->max_in_flight : S3D_VERIFY_DEFAULT_IN_FLIGHT;
	size_t bufsize;
	int i;

	v->range_size = rs;
	v->nranges = (v->size + (int64_t)rs - 1) / (int64_t)rs;
	v->nslots = (int64_t)n < v->nranges ? n : (int)v->nranges;
	bufsize = (int64_t)rs < v->size ? rs : (size_t)v->size;
	v->slots = calloc((size_t)v->nslots, sizeof(*v->slots));
	v->multi = curl_multi_init();
	if (!v->slots || !v->multi)
		return S3D_E_NOMEM;
	for (i = 0; i < v->nslots; i++) {
		s3d_xfer_init(&v->slots[i].x);
		v->slots[i].buf = malloc(bufsize);
		if (!v->slots[i].buf)
			return S3D_E_NOMEM;
		v->st.peak_memory += bufsize;
	}
	return S3D_OK;
}

static void teardown(struct verify *v)
{
	int i;

	for (i = 0; v->slots && i < v->nslots; i++) {
		struct vslot *s = &v->slots[i];

		if (s->state == VS_RUNNING)
			curl_multi_remove_handle(v->multi, s->easy);
		s3d_xfer_cleanup(&s->x);
		s3d_client_easy_put(v->c, s->easy);
		free(s->buf);
	}
	if (v->multi)
		curl_multi_cleanup(v->multi);
	free(v->slots);
	EVP_MD_CTX_free(v->md);
}

static int check_config(const s3d_verify_config *cfg)
{
	if (!cfg)
		return S3D_OK;
	if (cfg->range_size > S3D_VERIFY_MAX_RANGE)
		return S3D_E_INVAL;
	if (cfg->max_in_flight < 0 || cfg->max_in_flight > S3D_VERIFY_MAX_IN_FLIGHT)
		return S3D_E_INVAL;
	return S3D_OK;
}

/* The object is known (size and ETag) when known is not NULL, else HEADed. */
static int verify_object(s3d_client *c, const char *bucket, const char *key,
			 const s3d_verify_config *cfg, const s3d_obj_info *known,
			 uint8_t digest[32], int64_t *size_out, s3d_verify_stats *stats,
			 s3d_error *err)
{
	struct verify v;
	s3d_obj_info info;
	unsigned int mdlen = 0;
	int rc;

	memset(&v, 0, sizeof(v));
	pthread_mutex_init(&v.lock, NULL);
	pthread_cond_init(&v.ready, NULL);
	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!c || !bucket || !key || !digest)
		return s3d_err_set(err, S3D_E_INVAL, "missing client, bucket, key or digest");
	if (check_config(cfg) != S3D_OK)
		return s3d_err_set(err, S3D_E_INVAL, "range_size must be at most 1 GiB and "
				   "max_in_flight 0..%d", S3D_VERIFY_MAX_IN_FLIGHT);
	if (known) {
		info = *known;
	} else if ((rc = s3d_head_object(c, bucket, key, 0, &info, err)) != S3D_OK) {
		return rc;
	}
	if (info.size < 0)
		return s3d_err_set(err, S3D_E_PROTOCOL, "HEAD %s/%s gave no size", bucket, key);
	v.c = c;
	v.bucket = bucket;
	v.key = key;
	v.size = info.size;
	snprintf(v.etag, sizeof(v.etag), "%s", info.etag);
	v.md = EVP_MD_CTX_new();
	if (!v.md)
		rc = vfail_local(&v, S3D_E_NOMEM, "out of memory");
	else if (EVP_DigestInit_ex(v.md, EVP_sha256(), NULL) != 1)
		rc = vfail_local(&v, S3D_E_CRYPTO, "EVP_DigestInit_ex failed");
	if (rc == S3D_OK && v.size > 0 && (rc = setup(&v, cfg)) != S3D_OK)
		vfail_local(&v, rc, "out of memory");
	if (rc == S3D_OK)
		run(&v);
	rc = v.rc;
	if (rc == S3D_OK && v.hashed != v.size)
		rc = vfail_local(&v, S3D_E_PROTOCOL, "hashed byte count differs from the size");
	if (rc == S3D_OK && (EVP_DigestFinal_ex(v.md, digest, &mdlen) != 1 || mdlen != 32))
		rc = vfail_local(&v, S3D_E_CRYPTO, "EVP_DigestFinal_ex failed");
	if (rc == S3D_OK && size_out)
		*size_out = v.hashed;
	if (rc != S3D_OK && err)
		*err = v.err;
	if (stats)
		*stats = v.st;
	teardown(&v);
	pthread_mutex_destroy(&v.lock);
	pthread_cond_destroy(&v.ready);
	return rc;
}

int s3d_verify_sha256_stats(s3d_client *c, const char *bucket, const char *key,
			    const s3d_verify_config *cfg, uint8_t digest[32],
			    int64_t *size_out, s3d_verify_stats *stats,
			    s3d_error *err)
{
	return verify_object(c, bucket, key, cfg, NULL, digest, size_out, stats, err);
}

int s3d_verify_sha256_of(s3d_client *c, const char *bucket, const char *key,
			 const s3d_verify_config *cfg, const s3d_obj_info *info,
			 uint8_t digest[32], int64_t *size_out, s3d_error *err)
{
	if (!info)
		return s3d_err_set(err, S3D_E_INVAL, "missing object information");
	return verify_object(c, bucket, key, cfg, info, digest, size_out, NULL, err);
}

int s3d_verify_sha256(s3d_client *c, const char *bucket, const char *key,
		      const s3d_verify_config *cfg, uint8_t digest[32],
		      int64_t *size_out, s3d_error *err)
{
	return verify_object(c, bucket, key, cfg, NULL, digest, size_out, NULL, err);
}
