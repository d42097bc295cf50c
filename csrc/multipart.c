/*
 * Parallel multipart upload. One curl multi handle, driven in the caller's
 * thread whenever it calls in: no threads of our own. max_in_flight part
 * slots each own an easy handle and an s3d_xfer; one more buffer fills while
 * the slots send. Buffers are allocated on first use and then recycled, so
 * memory stays at (max_in_flight + 1) * part_size however long the upload.
 * With a shared budget (s3d_part_budget) only the first buffer is the
 * upload's own: each further one is taken from the budget, and when the
 * budget is spent the upload waits for one of its own parts to finish
 * (it then sends one part at a time), never for another upload.
 */
#include "multipart.h"

#include "buf.h"
#include "err.h"
#include "s3_client.h"
#include "sigv4.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define UPLOAD_ID_MAX 4096
#define POLL_MAX_MS 1000

enum slot_state { SLOT_FREE, SLOT_RUNNING, SLOT_WAITING };
enum mpu_state { MPU_OPEN, MPU_COMPLETED, MPU_ABORTED };

struct slot {
	s3d_xfer x;              /* CURLOPT_PRIVATE points here */
	CURL *easy;              /* from the client's pool, taken on first use */
	s3d_req req;
	s3d_kv query[2];
	s3d_kv hdr[1];
	char pn[16];
	char checksum[64];       /* base64 SHA-256 of the part */
	uint8_t *buf;            /* the part's bytes (a pool buffer or NULL) */
	size_t len;
	int number;
	int state;
	int attempt;             /* 1-based, of the attempt running or due */
	int64_t started_ms;      /* first attempt: the retry deadline counts from here */
	int64_t not_before_ms;   /* SLOT_WAITING: when to try again */
};

struct s3d_mpu {
	s3d_client *c;
	char *bucket;
	char *key;
	s3d_buf upload_id;
	size_t part_size;
	int nslots;
	int checksum;
	int state;
	int next_number;
	int submitted;           /* parts handed to slots by this handle */
	CURLM *multi;
	struct slot *slots;
	int in_flight_peak;
	uint8_t **pool;          /* free part buffers */
	int npool;
	int nalloc;              /* buffers allocated (at most nslots + 1) */
	s3d_part_budget *budget; /* NULL: none */
	int nshared;             /* buffers taken from the budget */
	uint8_t *fill;           /* the buffer being filled, or NULL */
	size_t fill_len;
	size_t mem, peak;
	s3d_part *parts;         /* sent parts, in completion order until sorted */
	size_t nparts, cap_parts;
	int rc;                  /* first failure: every later call returns it */
	s3d_error err;
};

/* ---- configuration ---- */

static int mpu_config(const s3d_mpu_config *cfg, size_t *part_size, int *nslots)
{
	size_t ps = cfg && cfg->part_size ? cfg->part_size : S3D_MPU_DEFAULT_PART;
	int n = cfg && cfg->max_in_flight ? cfg->max_in_flight : S3D_MPU_DEFAULT_IN_FLIGHT;

	if (ps < S3D_MPU_MIN_PART || (uint64_t)ps > S3D_MPU_MAX_PART)
		return S3D_E_INVAL;
	if (n < 1 || n > S3D_MPU_MAX_IN_FLIGHT)
		return S3D_E_INVAL;
	if (ps > SIZE_MAX / (size_t)(n + 1))
		return S3D_E_TOOBIG;
	*part_size = ps;
	*nslots = n;
	return S3D_OK;
}

/* ---- errors: the first one sticks ---- */

static int mpu_fail(s3d_mpu *m, int rc, const s3d_error *e)
{
	if (m->rc == S3D_OK) {
		m->rc = rc;
		if (e)
			m->err = *e;
		else
			s3d_error_clear(&m->err);
	}
	return rc;
}

static int mpu_fail_local(s3d_mpu *m, int rc, const char *what)
{
	s3d_error e;

	s3d_error_clear(&e);
	snprintf(e.resource, sizeof(e.resource), "PUT %s/%s", m->bucket, m->key);
	s3d_err_set(&e, rc, "%s", what);
	return mpu_fail(m, rc, &e);
}

static int mpu_error(const s3d_mpu *m, s3d_error *err)
{
	if (err)
		*err = m->err;
	return m->rc;
}

/* ---- the shared budget ---- */

struct s3d_part_budget {
	pthread_mutex_t lock;
	size_t avail;
};

int s3d_part_budget_new(size_t bytes, s3d_part_budget **out)
{
	s3d_part_budget *b;

	if (!out)
		return S3D_E_INVAL;
	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return S3D_E_NOMEM;
	if (pthread_mutex_init(&b->lock, NULL) != 0) {
		free(b);
		return S3D_E_NOMEM;
	}
	b->avail = bytes;
	*out = b;
	return S3D_OK;
}

void s3d_part_budget_free(s3d_part_budget *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->lock);
	free(b);
}

size_t s3d_part_budget_available(s3d_part_budget *b)
{
	size_t n;

	if (!b)
		return 0;
	pthread_mutex_lock(&b->lock);
	n = b->avail;
	pthread_mutex_unlock(&b->lock);
	return n;
}

static int budget_take(s3d_part_budget *b, size_t n)
{
	int ok;

	pthread_mutex_lock(&b->lock);
	ok = b->avail >= n;
	if (ok)
		b->avail -= n;
	pthread_mutex_unlock(&b->lock);
	return ok;
}

static void budget_give(s3d_part_budget *b, size_t n)
{
	pthread_mutex_lock(&b->lock);
	b->avail += n;
	pthread_mutex_unlock(&b->lock);
}

/* ---- part buffers: allocated lazily, then recycled ---- */

/*
 * Part buffers are mapped and unmapped whole. Through malloc, glibc raises
 * its mmap threshold after the first large free and then keeps freed part
 * buffers in its arenas: a registry serving many short writers would hold
 * their peak forever.
 */
/*
 * Part buffers are filled once per part, so the page faults of fresh memory
 * (one per 4 KiB: a quarter of the registry's CPU when PATCH writers come and
 * go) are worth avoiding: the buffer is aligned to 2 MiB so that it can be
 * offered to the kernel for transparent huge pages (s3d_part_buf_huge; best
 * effort: a kernel without them, or set to "never", keeps 4 KiB pages).
 * Pages become resident only as they are written; with huge pages, 2 MiB at
 * a time, which is why a writer offers its first buffer only once it holds
 * more than that (a small blob costs 4 KiB pages, not 2 MiB).
 */

uint8_t *s3d_part_buf_new(size_t n)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t head, rn;
	uint8_t *p, *a;

	if (pg <= 0 || n == 0 || n > SIZE_MAX - S3D_HUGE_PAGE - (size_t)pg)
		return NULL;
	rn = (n + (size_t)pg - 1) / (size_t)pg * (size_t)pg; /* what the kernel maps */
	p = mmap(NULL, rn + S3D_HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	a = (uint8_t *)(((uintptr_t)p + S3D_HUGE_PAGE - 1) & ~(uintptr_t)(S3D_HUGE_PAGE - 1));
	head = (size_t)(a - p);
	if (head)
		munmap(p, head);
	if (S3D_HUGE_PAGE - head)
		munmap(a + rn, S3D_HUGE_PAGE - head);
	return a;
}

void s3d_part_buf_huge(uint8_t *p, size_t n)
{
	if (p && n)
		(void)madvise(p, n, MADV_HUGEPAGE);
}

void s3d_part_buf_free(uint8_t *p, size_t n)
{
	if (p)
		munmap(p, n);
}

static void buf_count(s3d_mpu *m)
{
	m->nalloc++;
	m->mem += m->part_size;
	if (m->mem > m->peak)
		m->peak = m->mem;
}

#define NO_SHARE 1 /* buf_get: the budget is spent, wait for a part of ours */

static int buf_get(s3d_mpu *m, uint8_t **out)
{
	int shared;
	uint8_t *p;

	if (m->npool > 0) {
		*out = m->pool[--m->npool];
		return S3D_OK;
	}
	if (m->nalloc >= m->nslots + 1)
		return S3D_E_TOOBIG; /* cannot happen: one filling + nslots sending */
	shared = m->budget && m->nalloc > 0;
	if (shared && !budget_take(m->budget, m->part_size))
		return NO_SHARE;
	p = s3d_part_buf_new(m->part_size);
	s3d_part_buf_huge(p, m->part_size); /* an upload's buffers fill whole */
	if (!p) {
		if (shared)
			budget_give(m->budget, m->part_size);
		return S3D_E_NOMEM;
	}
	m->nshared += shared;
	buf_count(m);
	*out = p;
	return S3D_OK;
}

/* A buffer back from a part: kept for the next one, or, when one is kept
 * already and this upload holds shares, returned to the budget. */
static void buf_put(s3d_mpu *m, uint8_t *p)
{
	if (!p)
		return;
	if (m->nshared > 0 && m->npool > 0) {
		s3d_part_buf_free(p, m->part_size);
		m->nalloc--;
		m->nshared--;
		m->mem -= m->part_size;
		budget_give(m->budget, m->part_size);
		return;
	}
	m->pool[m->npool++] = p;
}

/* ---- slots ---- */

static int slot_busy(const struct slot *s)
{
	return s->state != SLOT_FREE;
}

static void slot_release(s3d_mpu *m, struct slot *s)
{
	buf_put(m, s->buf);
	s->buf = NULL;
	s->len = 0;
	s->state = SLOT_FREE;
}

static struct slot *slot_free(s3d_mpu *m)
{
	int i;

	for (i = 0; i < m->nslots; i++)
		if (!slot_busy(&m->slots[i]))
			return &m->slots[i];
	return NULL;
}

static int any_busy(const s3d_mpu *m)
{
	int i;

	for (i = 0; i < m->nslots; i++)
		if (slot_busy(&m->slots[i]))
			return 1;
	return 0;
}

/* Signs the attempt now and adds it to the multi handle. */
static int slot_start(s3d_mpu *m, struct slot *s)
{
	int rc, i, running = 0;

	if (!s->easy && !(s->easy = s3d_client_easy_get(m->c)))
		return S3D_E_NOMEM;
	rc = s3d_xfer_setup(m->c, &s->x, &s->req, s->easy);
	if (rc != S3D_OK)
		return rc;
	if (curl_multi_add_handle(m->multi, s->easy) != CURLM_OK)
		return S3D_E_TRANSPORT;
	s->state = SLOT_RUNNING;
	for (i = 0; i < m->nslots; i++)
		running += m->slots[i].state == SLOT_RUNNING;
	if (running > m->in_flight_peak)
		m->in_flight_peak = running;
	return S3D_OK;
}

/* Stops every transfer; their buffers go back to the pool. */
static void slots_stop(s3d_mpu *m)
{
	int i;

	for (i = 0; i < m->nslots; i++) {
		struct slot *s = &m->slots[i];

		if (s->state == SLOT_RUNNING)
			curl_multi_remove_handle(m->multi, s->easy);
		if (slot_busy(s))
			slot_release(m, s);
	}
}

static int sha256_b64(const uint8_t *p, size_t n, char *out, size_t cap)
{
	uint8_t md[32];
	unsigned int mdlen = 0;

	if (EVP_Digest(n ? p : (const uint8_t *)"", n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md))
		return S3D_E_CRYPTO;
	return s3d_base64(md, sizeof(md), out, cap);
}

static int part_cmp(const void *a, const void *b)
{
	const s3d_part *x = a, *y = b;

	return (x->number > y->number) - (x->number < y->number);
}

static int record_part(s3d_mpu *m, const struct slot *s, s3d_error *e)
{
	s3d_part *p;

	if (!s->x.info.etag[0]) {
		s3d_err_set(e, S3D_E_PROTOCOL, "UploadPart answer without an ETag");
		return S3D_E_PROTOCOL;
	}
	if (m->nparts == m->cap_parts) {
		size_t ncap = m->cap_parts ? m->cap_parts * 2 : 16;

		if (ncap > S3D_MPU_MAX_PARTS)
			ncap = S3D_MPU_MAX_PARTS;
		if (ncap <= m->nparts)
			return s3d_err_set(e, S3D_E_TOOBIG, "more than %d parts", S3D_MPU_MAX_PARTS);
		p = realloc(m->parts, ncap * sizeof(*p));
		if (!p)
			return s3d_err_set(e, S3D_E_NOMEM, "out of memory for the part list");
		m->parts = p;
		m->cap_parts = ncap;
	}
	p = &m->parts[m->nparts++];
	memset(p, 0, sizeof(*p));
	p->number = s->number;
	p->size = (int64_t)s->len;
	snprintf(p->etag, sizeof(p->etag), "%s", s->x.info.etag);
	if (m->checksum)
		snprintf(p->checksum_sha256, sizeof(p->checksum_sha256), "%s", s->checksum);
	return S3D_OK;
}

static struct slot *slot_of_easy(s3d_mpu *m, CURL *easy)
{
	char *priv = NULL;
	int i;

	if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv)
		return NULL;
	for (i = 0; i < m->nslots; i++)
		if ((char *)&m->slots[i].x == priv)
			return &m->slots[i];
	return NULL;
}

/* A transfer ended: record the part, schedule a retry, or fail the upload. */
static void slot_done(s3d_mpu *m, CURL *easy, CURLcode cc)
{
	struct slot *s = slot_of_easy(m, easy);
	s3d_error e;
	long wait;
	int retry = 0, rc;

	curl_multi_remove_handle(m->multi, easy);
	if (!s || s->state != SLOT_RUNNING) {
		mpu_fail_local(m, S3D_E_PROTOCOL, "finished transfer without a slot");
		return;
	}
	s3d_error_clear(&e);
	rc = s3d_xfer_finish(&s->x, easy, cc, &e, &retry);
	if (rc == S3D_OK)
		rc = record_part(m, s, &e);
	if (rc != S3D_OK && retry && s->attempt <= s3d_client_max_retries(m->c)) {
		wait = s3d_client_backoff_ms(m->c, s->attempt, s->started_ms);
		if (wait > 0) {
			s->attempt++;
			s->not_before_ms = s3d_now_ms() + wait;
			s->state = SLOT_WAITING;
			return;
		}
	}
	if (rc != S3D_OK) {
		e.attempts = s->attempt;
		mpu_fail(m, rc, &e);
	}
	slot_release(m, s);
}

/* Starts the retries that are due; returns how long until the next one. */
static long start_due(s3d_mpu *m)
{
	int64_t now = s3d_now_ms();
	long next = POLL_MAX_MS;
	int i, rc;

	for (i = 0; i < m->nslots; i++) {
		struct slot *s = &m->slots[i];

		if (s->state != SLOT_WAITING)
			continue;
		if (s->not_before_ms > now) {
			if (s->not_before_ms - now < next)
				next = (long)(s->not_before_ms - now);
			continue;
		}
		rc = slot_start(m, s);
		if (rc != S3D_OK) {
			slot_release(m, s);
			mpu_fail_local(m, rc, "cannot restart a part upload");
		}
		next = 0;
	}
	return next;
}

/* One non-blocking round: transfer what can be, collect finished parts. */
static long mpu_pump(s3d_mpu *m)
{
	CURLMsg *msg;
	CURLMcode mc;
	int running = 0, left = 0;

	mc = curl_multi_perform(m->multi, &running);
	if (mc != CURLM_OK) {
		mpu_fail_local(m, S3D_E_TRANSPORT, curl_multi_strerror(mc));
		return 0;
	}
	while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
		if (msg->msg == CURLMSG_DONE) {
			CURL *easy = msg->easy_handle;
			CURLcode cc = msg->data.result;

			slot_done(m, easy, cc); /* msg is invalid after the removal */
		}
	}
	return start_due(m);
}

static void mpu_poll(s3d_mpu *m, long timeout_ms)
{
	CURLMcode mc = curl_multi_poll(m->multi, NULL, 0, (int)timeout_ms, NULL);

	if (mc != CURLM_OK)
		mpu_fail_local(m, S3D_E_TRANSPORT, curl_multi_strerror(mc));
}

/* Until a slot is free (NULL on failure). Bounded by the transfers' own
 * timeouts and the retry deadline. */
static struct slot *wait_slot(s3d_mpu *m)
{
	struct slot *s = NULL;
	long timeout;

	while (m->rc == S3D_OK) {
		timeout = mpu_pump(m);
		if (m->rc != S3D_OK || (s = slot_free(m)) != NULL)
			break;
		mpu_poll(m, timeout);
	}
	return m->rc == S3D_OK ? s : NULL;
}

static int wait_all(s3d_mpu *m)
{
	long timeout;

	while (m->rc == S3D_OK && any_busy(m)) {
		timeout = mpu_pump(m);
		if (m->rc != S3D_OK || !any_busy(m))
			break;
		mpu_poll(m, timeout);
	}
	return m->rc;
}

/* Hands the filling buffer (maybe NULL and empty) to a slot as the next part. */
static int mpu_submit(s3d_mpu *m, s3d_error *err)
{
	struct slot *s;
	int rc;

	if (m->next_number > S3D_MPU_MAX_PARTS) {
		mpu_fail_local(m, S3D_E_TOOBIG, "more than 10000 parts");
		return mpu_error(m, err);
	}
	s = wait_slot(m);
	if (!s)
		return mpu_error(m, err);
	s->buf = m->fill;
	s->len = m->fill_len;
	s->number = m->next_number++;
	m->fill = NULL;
	m->fill_len = 0;
	m->submitted++;
	snprintf(s->pn, sizeof(s->pn), "%d", s->number);
	s->query[0].name = "partNumber";
	s->query[0].value = s->pn;
	s->query[1].name = "uploadId";
	s->query[1].value = s3d_buf_str(&m->upload_id);
	memset(&s->req, 0, sizeof(s->req));
	s->req.method = "PUT";
	s->req.bucket = m->bucket;
	s->req.key = m->key;
	s->req.query = s->query;
	s->req.nquery = 2;
	s->req.body = s->buf ? s->buf : (const uint8_t *)"";
	s->req.body_len = s->len;
	s->req.retryable = 1;
	s->req.range_first = -1;
	s->req.range_last = -1;
	rc = S3D_OK;
	if (m->checksum) {
		rc = sha256_b64(s->buf, s->len, s->checksum, sizeof(s->checksum));
		s->hdr[0].name = "x-amz-checksum-sha256";
		s->hdr[0].value = s->checksum;
		s->req.headers = s->hdr;
		s->req.nheaders = 1;
	}
	s->attempt = 1;
	s->started_ms = s3d_now_ms();
	if (rc == S3D_OK)
		rc = slot_start(m, s);
	if (rc != S3D_OK) {
		slot_release(m, s);
		mpu_fail_local(m, rc, "cannot start a part upload");
		return mpu_error(m, err);
	}
	return S3D_OK;
}

static int mpu_usable(s3d_mpu *m, s3d_error *err)
{
	if (!m) {
		s3d_err_set(err, S3D_E_INVAL, "no upload");
		return S3D_E_INVAL;
	}
	if (m->state == MPU_COMPLETED) {
		s3d_err_set(err, S3D_E_INVAL, "upload already completed");
		return S3D_E_INVAL;
	}
	if (m->rc != S3D_OK)
		return mpu_error(m, err);
	return S3D_OK;
}

/* ---- public API ---- */

static int mpu_alloc(s3d_mpu *m, const char *bucket, const char *key)
{
	int i;

	m->bucket = strdup(bucket);
	m->key = strdup(key);
	m->slots = calloc((size_t)m->nslots, sizeof(*m->slots));
	m->pool = calloc((size_t)m->nslots + 1, sizeof(*m->pool));
	m->multi = curl_multi_init();
	if (!m->bucket || !m->key || !m->slots || !m->pool || !m->multi)
		return S3D_E_NOMEM;
	for (i = 0; i < m->nslots; i++)
		s3d_xfer_init(&m->slots[i].x);
	return S3D_OK;
}

static int mpu_create(s3d_mpu *m, const s3d_mpu_config *cfg, s3d_error *err)
{
	s3d_put_opts po;

	memset(&po, 0, sizeof(po));
	if (cfg && cfg->put_opts)
		po = *cfg->put_opts;
	if (m->checksum)
		po.checksum_algorithm = "SHA256";
	return s3d_create_multipart(m->c, m->bucket, m->key, &po, &m->upload_id, err);
}

int s3d_mpu_new(s3d_client *c, const char *bucket, const char *key,
		const char *upload_id, int first_part, const s3d_mpu_config *cfg,
		s3d_mpu **out, s3d_error *err)
{
	s3d_mpu *m;
	size_t ps = 0;
	int n = 0, rc;

	if (!c || !bucket || !*bucket || !key || !*key || !out)
		return s3d_err_set(err, S3D_E_INVAL, "missing client, bucket, key or out");
	*out = NULL;
	rc = mpu_config(cfg, &ps, &n);
	if (rc != S3D_OK)
		return s3d_err_set(err, rc, "part_size must be 5 MiB..5 GiB and "
				   "max_in_flight 1..%d", S3D_MPU_MAX_IN_FLIGHT);
	if (upload_id && (!*upload_id || first_part < 1 || first_part > S3D_MPU_MAX_PARTS))
		return s3d_err_set(err, S3D_E_INVAL, "continuing needs an upload id and first_part 1..10000");
	if (!upload_id && first_part != 0 && first_part != 1)
		return s3d_err_set(err, S3D_E_INVAL, "a new upload starts at part 1");
	m = calloc(1, sizeof(*m));
	if (!m)
		return s3d_err_set(err, S3D_E_NOMEM, "out of memory");
	m->c = c;
	m->part_size = ps;
	m->nslots = n;
	m->checksum = cfg && cfg->checksum_sha256;
	m->budget = cfg ? cfg->budget : NULL;
	m->next_number = upload_id ? first_part : 1;
	s3d_buf_init(&m->upload_id, UPLOAD_ID_MAX);
	rc = mpu_alloc(m, bucket, key);
	if (rc != S3D_OK)
		s3d_err_set(err, rc, "out of memory");
	else if (upload_id && (rc = s3d_buf_appendz(&m->upload_id, upload_id)) != S3D_OK)
		s3d_err_set(err, rc, "upload id too long");
	else if (!upload_id)
		rc = mpu_create(m, cfg, err);
	if (rc != S3D_OK) {
		s3d_mpu_free(m);
		return rc;
	}
	*out = m;
	return S3D_OK;
}

int s3d_mpu_buffer(s3d_mpu *m, uint8_t **p, size_t *room, s3d_error *err)
{
	int rc = mpu_usable(m, err);

	if (rc != S3D_OK)
		return rc;
	if (!p || !room)
		return s3d_err_set(err, S3D_E_INVAL, "missing out parameter");
	if (!m->fill) {
		rc = buf_get(m, &m->fill);
		while (rc == NO_SHARE && m->rc == S3D_OK) {
			/* every buffer of ours is in a slot: one comes back */
			long timeout = mpu_pump(m);

			if (m->rc != S3D_OK || (rc = buf_get(m, &m->fill)) != NO_SHARE)
				break;
			mpu_poll(m, timeout);
		}
		if (m->rc != S3D_OK) {
			if (m->fill)
				buf_put(m, m->fill);
			m->fill = NULL;
			return mpu_error(m, err);
		}
		if (rc != S3D_OK) {
			m->fill = NULL;
			mpu_fail_local(m, rc, "cannot allocate a part buffer");
			return mpu_error(m, err);
		}
		m->fill_len = 0;
	}
	*p = m->fill + m->fill_len;
	*room = m->part_size - m->fill_len;
	return S3D_OK;
}

int s3d_mpu_adopt(s3d_mpu *m, uint8_t *buf, size_t len, s3d_error *err)
{
	int rc = mpu_usable(m, err);

	if (rc == S3D_OK && (!buf || len > m->part_size || m->nalloc > 0)) {
		rc = S3D_E_INVAL;
		s3d_err_set(err, rc, "adopt: a buffer of at most one part, before any other");
	}
	if (rc != S3D_OK) {
		s3d_part_buf_free(buf, m ? m->part_size : 0);
		return rc;
	}
	buf_count(m); /* the upload's own buffer */
	m->fill = buf;
	m->fill_len = len;
	return len == m->part_size ? mpu_submit(m, err) : S3D_OK;
}

int s3d_mpu_commit(s3d_mpu *m, size_t n, s3d_error *err)
{
	int rc = mpu_usable(m, err);

	if (rc != S3D_OK)
		return rc;
	if (n > 0 && (!m->fill || n > m->part_size - m->fill_len))
		return s3d_err_set(err, S3D_E_INVAL, "commit beyond the part buffer");
	m->fill_len += n;
	if (m->fill && m->fill_len == m->part_size)
		return mpu_submit(m, err);
	/* keep parts moving while the caller produces the next one */
	if (any_busy(m))
		mpu_pump(m);
	return m->rc == S3D_OK ? S3D_OK : mpu_error(m, err);
}

int s3d_mpu_write(s3d_mpu *m, const void *p, size_t n, s3d_error *err)
{
	const uint8_t *src = p;
	uint8_t *dst = NULL;
	size_t room = 0;
	int rc = mpu_usable(m, err);

	if (rc == S3D_OK && !p && n) {
		s3d_err_set(err, S3D_E_INVAL, "NULL data");
		rc = S3D_E_INVAL;
	}
	while (rc == S3D_OK && n > 0) {
		rc = s3d_mpu_buffer(m, &dst, &room, err);
		if (rc != S3D_OK)
			break;
		if (room > n)
			room = n;
		memcpy(dst, src, room);
		src += room;
		n -= room;
		rc = s3d_mpu_commit(m, room, err);
	}
	return rc;
}

int s3d_mpu_drain(s3d_mpu *m, const s3d_part **parts, size_t *nparts, s3d_error *err)
{
	if (!m || !parts || !nparts)
		return s3d_err_set(err, S3D_E_INVAL, "missing upload or out parameter");
	if (m->rc != S3D_OK || wait_all(m) != S3D_OK)
		return mpu_error(m, err);
	if (m->nparts)
		qsort(m->parts, m->nparts, sizeof(*m->parts), part_cmp);
	*parts = m->parts;
	*nparts = m->nparts;
	return S3D_OK;
}

int s3d_mpu_complete(s3d_mpu *m, const s3d_part *prior, size_t nprior,
		     s3d_obj_info *out, s3d_error *err)
{
	s3d_part *all = NULL;
	size_t n;
	int rc = mpu_usable(m, err);

	if (rc != S3D_OK)
		return rc;
	if ((!prior && nprior) || nprior > S3D_MPU_MAX_PARTS)
		return s3d_err_set(err, S3D_E_INVAL, "bad prior parts");
	/* the last part may be short; an upload with no bytes at all sends one
	 * empty part, so that there is something to complete */
	if (m->fill_len > 0 || (m->submitted == 0 && nprior == 0))
		rc = mpu_submit(m, err);
	if (rc == S3D_OK && wait_all(m) != S3D_OK)
		rc = mpu_error(m, err);
	if (rc != S3D_OK)
		return rc;
	n = nprior + m->nparts;
	if (n == 0 || n > S3D_MPU_MAX_PARTS)
		return s3d_err_set(err, n ? S3D_E_TOOBIG : S3D_E_INVAL, "%zu parts to complete", n);
	all = malloc(n * sizeof(*all));
	if (!all)
		return s3d_err_set(err, S3D_E_NOMEM, "out of memory");
	if (m->nparts)
		qsort(m->parts, m->nparts, sizeof(*m->parts), part_cmp);
	if (nprior)
		memcpy(all, prior, nprior * sizeof(*all));
	if (m->nparts)
		memcpy(all + nprior, m->parts, m->nparts * sizeof(*all));
	rc = s3d_complete_multipart(m->c, m->bucket, m->key, s3d_buf_str(&m->upload_id),
				    all, n, out, err);
	if (rc == S3D_OK)
		m->state = MPU_COMPLETED;
	free(all);
	return rc;
}

int s3d_mpu_abort(s3d_mpu *m, s3d_error *err)
{
	int rc;

	if (!m)
		return s3d_err_set(err, S3D_E_INVAL, "no upload");
	if (m->state == MPU_COMPLETED)
		return s3d_err_set(err, S3D_E_INVAL, "upload already completed");
	slots_stop(m);
	rc = s3d_abort_multipart(m->c, m->bucket, m->key, s3d_buf_str(&m->upload_id), err);
	m->state = MPU_ABORTED;
	mpu_fail_local(m, S3D_E_ABORTED, "upload aborted");
	return rc;
}

const char *s3d_mpu_upload_id(const s3d_mpu *m)
{
	return m ? s3d_buf_str(&m->upload_id) : NULL;
}

size_t s3d_mpu_peak_memory(const s3d_mpu *m)
{
	return m ? m->peak : 0;
}

int s3d_mpu_in_flight_peak(const s3d_mpu *m)
{
	return m ? m->in_flight_peak : 0;
}

void s3d_mpu_free(s3d_mpu *m)
{
	int i;

	if (!m)
		return;
	if (m->slots && m->multi)
		slots_stop(m);
	for (i = 0; m->slots && i < m->nslots; i++) {
		s3d_xfer_cleanup(&m->slots[i].x);
		s3d_client_easy_put(m->c, m->slots[i].easy);
	}
	for (i = 0; m->pool && i < m->npool; i++)
		s3d_part_buf_free(m->pool[i], m->part_size);
	s3d_part_buf_free(m->fill, m->part_size);
	if (m->budget && m->nshared > 0)
		budget_give(m->budget, (size_t)m->nshared * m->part_size);
	if (m->multi)
		curl_multi_cleanup(m->multi);
	s3d_buf_cleanup(&m->upload_id);
	free(m->slots);
	free(m->pool);
	free(m->parts);
	free(m->bucket);
	free(m->key);
	free(m);
}

/* ---- s3d_upload_file ---- */

struct file_src {
	int fd;
	int64_t off;
	int64_t size;
	int sys_errno;   /* a read failed */
	int shrunk;      /* the file ended early */
};

static int io_error(s3d_error *err, int e, const char *what, const char *path)
{
	if (err) {
		s3d_error_clear(err);
		err->sys_errno = e;
	}
	return s3d_err_set(err, S3D_E_IO, "%s %s: %s", what, path, e ? strerror(e) : "file shrank");
}

static size_t file_read(void *ud, uint8_t *p, size_t cap)
{
	struct file_src *f = ud;
	ssize_t n;

	if (f->off >= f->size)
		return 0;
	if ((uint64_t)cap > (uint64_t)(f->size - f->off))
		cap = (size_t)(f->size - f->off);
	do
		n = pread(f->fd, p, cap, (off_t)f->off);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		if (n < 0)
			f->sys_errno = errno;
		else
			f->shrunk = 1;
		return (size_t)-1;
	}
	f->off += n;
	return (size_t)n;
}

static int file_rewind(void *ud)
{
	struct file_src *f = ud;

	f->off = 0;
	return 0;
}

/* Exactly n bytes at off, or S3D_E_IO. */
static int read_full(struct file_src *f, uint8_t *p, size_t n, int64_t off)
{
	ssize_t got;

	while (n > 0) {
		got = pread(f->fd, p, n, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got < 0)
				f->sys_errno = errno;
			else
				f->shrunk = 1;
			return S3D_E_IO;
		}
		p += got;
		n -= (size_t)got;
		off += got;
	}
	return S3D_OK;
}

static int file_sha256_b64(struct file_src *f, char *out, size_t cap)
{
	uint8_t md[32];
	int rc = s3d_sha256_fd(f->fd, f->size, md, NULL, &f->sys_errno);

	if (rc == S3D_E_IO && f->sys_errno == 0)
		f->shrunk = 1;
	return rc == S3D_OK ? s3d_base64(md, sizeof(md), out, cap) : rc;
}

static int upload_small(s3d_client *c, const char *bucket, const char *key,
			struct file_src *f, const s3d_mpu_config *cfg,
			s3d_obj_info *out, s3d_error *err)
{
	s3d_put_opts po;
	char sum[64];
	int rc = S3D_OK;

	memset(&po, 0, sizeof(po));
	if (cfg && cfg->put_opts)
		po = *cfg->put_opts;
	if (cfg && cfg->checksum_sha256) {
		rc = file_sha256_b64(f, sum, sizeof(sum));
		if (rc == S3D_E_IO)
			return rc;
		if (rc != S3D_OK)
			return s3d_err_set(err, rc, "cannot hash the file");
		po.checksum_sha256 = sum;
	}
	return s3d_put_object_stream(c, bucket, key, f->size, file_read, file_rewind, f,
				     &po, out, err);
}

static int upload_parts(s3d_client *c, const char *bucket, const char *key,
			struct file_src *f, const s3d_mpu_config *cfg,
			s3d_obj_info *out, size_t *peak_memory, s3d_error *err)
{
	s3d_mpu *m = NULL;
	s3d_error aerr;
	uint8_t *p = NULL;
	size_t room = 0;
	int64_t off = 0;
	int rc = s3d_mpu_new(c, bucket, key, NULL, 1, cfg, &m, err);

	while (rc == S3D_OK && off < f->size) {
		rc = s3d_mpu_buffer(m, &p, &room, err);
		if (rc != S3D_OK)
			break;
		if ((uint64_t)room > (uint64_t)(f->size - off))
			room = (size_t)(f->size - off);
		rc = read_full(f, p, room, off);
		if (rc != S3D_OK)
			break;
		off += (int64_t)room;
		rc = s3d_mpu_commit(m, room, err);
	}
	if (rc == S3D_OK)
		rc = s3d_mpu_complete(m, NULL, 0, out, err);
	if (rc != S3D_OK && m) { /* never leave an upload behind */
		s3d_error_clear(&aerr);
		s3d_mpu_abort(m, &aerr);
	}
	if (peak_memory)
		*peak_memory = s3d_mpu_peak_memory(m);
	s3d_mpu_free(m);
	return rc;
}

int s3d_upload_file(s3d_client *c, const char *bucket, const char *key,
		    const char *path, const s3d_mpu_config *cfg,
		    s3d_obj_info *out, size_t *peak_memory, s3d_error *err)
{
	struct file_src f;
	struct stat st;
	size_t ps = 0;
	int n = 0, rc;

	if (peak_memory)
		*peak_memory = 0;
	if (!c || !bucket || !key || !path)
		return s3d_err_set(err, S3D_E_INVAL, "missing client, bucket, key or path");
	rc = mpu_config(cfg, &ps, &n);
	if (rc != S3D_OK)
		return s3d_err_set(err, rc, "part_size must be 5 MiB..5 GiB and "
				   "max_in_flight 1..%d", S3D_MPU_MAX_IN_FLIGHT);
	memset(&f, 0, sizeof(f));
	f.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f.fd < 0)
		return io_error(err, errno, "open", path);
	if (fstat(f.fd, &st) != 0)
		rc = io_error(err, errno, "stat", path);
	else if (!S_ISREG(st.st_mode))
		rc = s3d_err_set(err, S3D_E_INVAL, "%s is not a regular file", path);
	if (rc == S3D_OK) {
		f.size = (int64_t)st.st_size;
		if ((uint64_t)f.size < (uint64_t)ps)
			rc = upload_small(c, bucket, key, &f, cfg, out, err);
		else
			rc = upload_parts(c, bucket, key, &f, cfg, out, peak_memory, err);
		/* a failed read surfaces as an aborted transfer: report the cause */
		if (rc != S3D_OK && (f.sys_errno || f.shrunk))
			rc = io_error(err, f.sys_errno, "read", path);
	}
	close(f.fd);
	return rc;
}
