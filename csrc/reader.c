/*
 * The driver's Reader (public API in s3direct.h): one GET per attempt on a
 * private curl multi handle, driven only inside s3d_reader_open/read, so the
 * transfer moves exactly as fast as the caller pulls. Body bytes land in a
 * fixed buffer; when it cannot take a chunk, the sink pauses the transfer
 * (S3D_WRITE_PAUSE) and the next read resumes it. Memory per
 * reader: READER_BUF plus what curl holds for one paused chunk.
 *
 * A transport failure mid-body is retried after the bytes already delivered
 * (x.delivered: s3d_xfer_setup turns it into a Range, with If-Match on the
 * ETag of the first answer, and s3d_xfer_finish refuses anything but a 206),
 * so that a replaced object is an error, not a spliced stream. An attempt that delivered bytes restores the retry budget:
 * a long stream may survive any number of spaced-out cuts.
 */
#include "driver.h"

#include "buf.h"
#include "err.h"
#include "s3_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READER_BUF (1u << 20)
#define POLL_MS 1000

struct s3d_reader {
	s3d_driver *d;
	s3d_buf key;
	CURLM *multi;
	CURL *easy;
	s3d_xfer x;
	s3d_req req;
	uint8_t *buf;
	size_t head, len;        /* unread bytes: buf[head, head+len) */
	int attached;            /* easy is on the multi handle */
	int paused;              /* the write callback paused the transfer */
	int64_t delivered_before; /* x.delivered when this attempt began */
	int bad;                 /* write callback failure: S3D_E_* */
	int done;                /* the body is complete: buf holds the rest */
	int rc;                  /* sticky failure */
	s3d_error err;
	int attempt;
	int64_t started_ms;
};

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The client's body sink: 2xx bytes go to the bounded buffer, or pause the
 * transfer while it is full (the client keeps the error-body, Range and
 * If-Match bookkeeping). */
static int reader_sink(void *ud, const uint8_t *p, size_t n)
{
	s3d_reader *r = ud;

	if (r->head + r->len + n > READER_BUF) {
		if (r->head) {
			memmove(r->buf, r->buf + r->head, r->len);
			r->head = 0;
		}
		if (r->len + n > READER_BUF) {
			if (r->len == 0) {
				r->bad = S3D_E_TOOBIG; /* a chunk larger than the buffer */
				return 1;
			}
			r->paused = 1;
			return S3D_WRITE_PAUSE;
		}
	}
	memcpy(r->buf + r->head + r->len, p, n);
	r->len += n;
	return 0;
}

static int reader_fail(s3d_reader *r, int rc, const s3d_error *e)
{
	r->rc = rc;
	if (e)
		r->err = *e;
	return rc;
}

static int reader_fail_local(s3d_reader *r, int rc, const char *msg)
{
	s3d_error e;

	s3d_error_clear(&e);
	snprintf(e.resource, sizeof(e.resource), "GET %.63s/%.180s", r->d->bucket,
		 s3d_buf_str(&r->key));
	s3d_err_set(&e, rc, "%s", msg);
	e.attempts = r->attempt;
	return reader_fail(r, rc, &e);
}

static int start_attempt(s3d_reader *r)
{
	int rc;

	r->delivered_before = r->x.delivered;
	r->paused = 0;
	r->bad = S3D_OK;
	rc = s3d_xfer_setup(r->d->client, &r->x, &r->req, r->easy);
	if (rc != S3D_OK)
		return reader_fail_local(r, rc, "cannot prepare the GET");
	if (curl_multi_add_handle(r->multi, r->easy) != CURLM_OK)
		return reader_fail_local(r, S3D_E_TRANSPORT, "cannot add the transfer");
	r->attached = 1;
	return S3D_OK;
}

/* The attempt ended: done, retried (after a backoff), or failed for good. */
static int end_attempt(s3d_reader *r, CURLcode cc)
{
	s3d_error e;
	long wait;
	int retry = 0, rc;

	curl_multi_remove_handle(r->multi, r->easy);
	r->attached = 0;
	s3d_error_clear(&e);
	rc = s3d_xfer_finish(&r->x, r->easy, cc, &e, &retry);
	if (r->bad != S3D_OK)
		return reader_fail_local(r, r->bad, "body chunk larger than the read buffer");
	if (rc == S3D_OK || r->x.status == 416) {
		/* 416: the offset is at or past the end (s3-aws: empty reader),
		 * or a resume found nothing left */
		r->done = 1;
		return S3D_OK;
	}
	e.attempts = r->attempt;
	if (!retry)
		return reader_fail(r, rc, &e);
	if (r->x.delivered > r->delivered_before) { /* bytes came through: a fresh budget */
		r->attempt = 1;
		r->started_ms = s3d_now_ms();
	}
	if (r->attempt > s3d_client_max_retries(r->d->client))
		return reader_fail(r, rc, &e);
	wait = s3d_client_backoff_ms(r->d->client, r->attempt, r->started_ms);
	if (wait == 0)
		return reader_fail(r, rc, &e);
	sleep_ms(wait);
	r->attempt++;
	return start_attempt(r);
}

/* Drives the transfer until bytes are buffered, the body ends, or it fails. */
static int pump(s3d_reader *r)
{
	CURLMsg *msg;
	CURLMcode mc;
	CURLcode cc = CURLE_OK;
	int running = 0, left = 0, finished;

	while (r->len == 0 && !r->done && r->rc == S3D_OK) {
		if (r->paused) {
			/* may call reader_write at once with the held chunk */
			r->paused = 0;
			cc = curl_easy_pause(r->easy, CURLPAUSE_CONT);
			if (cc != CURLE_OK)
				return reader_fail_local(r, S3D_E_TRANSPORT, curl_easy_strerror(cc));
		}
		mc = curl_multi_perform(r->multi, &running);
		if (mc != CURLM_OK)
			return reader_fail_local(r, S3D_E_TRANSPORT, curl_multi_strerror(mc));
		finished = 0;
		while ((msg = curl_multi_info_read(r->multi, &left)) != NULL) {
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == r->easy) {
				cc = msg->data.result;
				finished = 1;
				break; /* msg is invalid once the handle is removed */
			}
		}
		if (finished) {
			end_attempt(r, cc);
			continue;
		}
		if (r->len > 0)
			break;
		mc = curl_multi_poll(r->multi, NULL, 0, POLL_MS, NULL);
		if (mc != CURLM_OK)
			return reader_fail_local(r, S3D_E_TRANSPORT, curl_multi_strerror(mc));
	}
	return r->rc;
}

int s3d_reader_open(s3d_driver *d, const char *path, int64_t offset,
		    s3d_reader **out, s3d_error *err)
{
	s3d_reader *r;
	int rc;

	if (!d || !path || path[0] != '/' || path[1] == 0 || offset < 0 || !out)
		return s3d_err_set(err, S3D_E_INVAL, "invalid reader arguments");
	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return s3d_err_set(err, S3D_E_NOMEM, "out of memory");
	r->d = d;
	s3d_buf_init(&r->key, 1100);
	s3d_xfer_init(&r->x);
	rc = s3d_driver_key(d, path, &r->key);
	if (rc != S3D_OK) {
		s3d_reader_free(r);
		return s3d_err_set(err, rc, "key too long");
	}
	if (s3d_driver_is_private(d, s3d_buf_str(&r->key))) {
		s3d_reader_free(r);
		return s3d_err_set(err, S3D_E_NOTFOUND, "private path");
	}
	r->buf = malloc(READER_BUF);
	r->multi = curl_multi_init();
	r->easy = s3d_client_easy_get(d->client);
	if (!r->buf || !r->multi || !r->easy) {
		s3d_reader_free(r);
		return s3d_err_set(err, S3D_E_NOMEM, "out of memory");
	}
	r->req.method = "GET";
	r->req.bucket = d->bucket;
	r->req.key = s3d_buf_str(&r->key);
	r->req.retryable = 1;
	r->req.write = reader_sink;
	r->req.write_ud = r;
	r->req.range_first = offset > 0 ? offset : -1; /* no Range from 0 */
	r->req.range_last = -1;
	r->attempt = 1;
	r->started_ms = s3d_now_ms();
	/* the status is known once bytes arrived or the transfer ended:
	 * a missing object fails here, not at the first read */
	rc = start_attempt(r);
	if (rc == S3D_OK)
		rc = pump(r);
	if (rc != S3D_OK && r->len > 0)
		rc = S3D_OK; /* a failure after the first bytes is for a read to report */
	if (rc != S3D_OK) {
		if (err)
			*err = r->err;
		s3d_reader_free(r);
		return rc;
	}
	*out = r;
	return S3D_OK;
}

int s3d_reader_read(s3d_reader *r, uint8_t *p, size_t cap, size_t *n, s3d_error *err)
{
	size_t k;

	if (!n)
		return s3d_err_set(err, S3D_E_INVAL, "invalid read arguments");
	*n = 0;
	if (!r || !p || cap == 0)
		return s3d_err_set(err, S3D_E_INVAL, "invalid read arguments");
	if (r->len == 0)
		pump(r);
	if (r->len > 0) { /* bytes received before a failure are still good */
		k = r->len < cap ? r->len : cap;
		memcpy(p, r->buf + r->head, k);
		r->head += k;
		r->len -= k;
		if (r->len == 0)
			r->head = 0;
		*n = k;
		return S3D_OK;
	}
	if (r->rc != S3D_OK) {
		if (err)
			*err = r->err;
		return r->rc;
	}
	return S3D_OK; /* the end */
}

void s3d_reader_free(s3d_reader *r)
{
	if (!r)
		return;
	if (r->attached)
		curl_multi_remove_handle(r->multi, r->easy);
	if (r->multi)
		curl_multi_cleanup(r->multi);
	if (r->easy)
		s3d_client_easy_put(r->d->client, r->easy);
	s3d_xfer_cleanup(&r->x);
	s3d_buf_cleanup(&r->key);
	free(r->buf);
	free(r);
}
