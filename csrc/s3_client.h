/*
 * Internal request layer of the S3 client: one request = build, sign, send
 * (libcurl), classify, parse the S3 error. The public operations in
 * s3direct.h are thin wrappers; multipart.c and verify.c drive many transfers
 * on a curl multi handle through s3d_xfer_setup / s3d_xfer_finish.
 */
#ifndef S3D_S3_CLIENT_H
#define S3D_S3_CLIENT_H

#include "s3direct.h"

#include <curl/curl.h>

#define S3D_XML_BODY_MAX (16u * 1024u * 1024u) /* XML answers we accept */
#define S3D_ERR_BODY_MAX (64u * 1024u)         /* error bodies we keep */
#define S3D_SIGNED_BODY_MAX (1u << 20)         /* memory bodies hashed for signing */
#define S3D_MAX_REQ_HEADERS 24

/*
 * A req->write callback may return this to pause the transfer instead of
 * taking the bytes (CURL_WRITEFUNC_PAUSE): only for transfers their owner
 * drives on a multi handle and resumes with curl_easy_pause(CURLPAUSE_CONT);
 * the same bytes are offered again then.
 */
#define S3D_WRITE_PAUSE 0x5041


/* One S3 request. Every pointer is borrowed until the request finishes. */
typedef struct s3d_req {
	const char *method;
	const char *bucket;          /* NULL: service-level request */
	const char *key;             /* NULL or "": bucket-level request */
	const s3d_kv *query;         /* raw names/values; encoded when sent */
	size_t nquery;
	const s3d_kv *headers;       /* sent and signed */
	size_t nheaders;
	/* body: memory, or a stream of stream_len bytes, or none */
	const uint8_t *body;
	size_t body_len;
	s3d_read_fn read;
	s3d_rewind_fn rewind;        /* makes a streamed body retryable */
	void *read_ud;
	int64_t stream_len;
	/* response body: streamed to write on 2xx, or collected into resp */
	s3d_write_fn write;
	void *write_ud;
	s3d_buf *resp;               /* bounded by its own max */
	int head;                    /* HEAD: no body expected */
	int retryable;               /* safe to repeat (all but streamed bodies w/o rewind) */
	int64_t range_first;         /* GET range; -1 = none */
	int64_t range_last;          /* inclusive; -1 = to the end */
} s3d_req;

/* State of one transfer in flight; caller-owned, embedded by multi users. */
typedef struct s3d_xfer {
	const s3d_req *req;
	s3d_client *client;
	struct curl_slist *hdrs;
	s3d_buf url;
	s3d_buf errbody;
	long status;
	int64_t delivered;       /* body bytes handed to req->write over all attempts:
				    s3d_xfer_setup resumes a GET after them, so a
				    caller reusing an xfer for a new request zeroes it */
	size_t body_off;         /* read position in a memory body */
	int aborted;             /* write/read callback asked to stop */
	char errbuf[CURL_ERROR_SIZE];
	s3d_obj_info info;       /* response headers */
	char request_id[128];
	char resume_etag[136];   /* ETag of the first answer: a resumed GET must
				    get the same object back (If-Match) */
	int ranged;              /* this attempt sent a Range header */
} s3d_xfer;

void s3d_xfer_init(s3d_xfer *x);
void s3d_xfer_cleanup(s3d_xfer *x);
/* Resets easy and configures it for req (signed now). */
int s3d_xfer_setup(s3d_client *c, s3d_xfer *x, const s3d_req *req, CURL *easy);
/*
 * After the transfer ended with cc: reads the status and headers, parses an
 * S3 error. Returns S3D_OK on 2xx; otherwise an error with err filled, and
 * *retry set when the failure is transient and the request may be repeated.
 */
int s3d_xfer_finish(s3d_xfer *x, CURL *easy, CURLcode cc, s3d_error *err, int *retry);

/* Runs req to completion with retries on a pooled handle. */
int s3d_client_perform(s3d_client *c, const s3d_req *req, s3d_obj_info *info,
		       s3d_error *err);

/* Backoff before attempt (1-based) with full jitter; 0 = deadline passed. */
long s3d_client_backoff_ms(const s3d_client *c, int attempt, int64_t started_ms);
int s3d_client_max_retries(const s3d_client *c);
int64_t s3d_now_ms(void);

/*
 * Shared with the other libcurl users of the library (regclient.c).
 * s3d_client_global_init: curl_global_init and libxml2's, once per process;
 * S3D_OK or S3D_E_TRANSPORT (every later call answers the same).
 * s3d_backoff_ms: a wait before attempt (1-based) of 1 .. min(base_ms <<
 * (attempt - 1), max_ms) ms, drawn at random (full jitter: transfers that
 * failed together do not retry together).
 * s3d_sleep_ms: sleeps ms, resumed after a signal.
 * s3d_curl_permanent: a curl failure that every retry would repeat (TLS
 * verification, a malformed URL, an unsupported scheme).
 * s3d_s3_code_transient: an S3 error code worth retrying (SlowDown,
 * InternalError, RequestTimeout and the like).
 */
int s3d_client_global_init(void);
long s3d_backoff_ms(long base_ms, long max_ms, int attempt);
void s3d_sleep_ms(long ms);
int s3d_curl_permanent(CURLcode cc);
int s3d_s3_code_transient(const char *code);

/* Easy-handle pool (connections are kept per handle). */
CURL *s3d_client_easy_get(s3d_client *c);
void s3d_client_easy_put(s3d_client *c, CURL *easy);

/* base64 of data into out (cap >= 4*ceil(n/3)+1). */
int s3d_base64(const uint8_t *data, size_t n, char *out, size_t cap);

#endif
