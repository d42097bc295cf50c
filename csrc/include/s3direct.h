/*
 * s3direct: the C storage engine behind the s3direct registry driver.
 *
 * One public header, read like lmdb.h: opaque handles for long-lived objects,
 * {ptr,len} views, every function returns an int (S3D_OK or a negative
 * S3D_E_* code), out-parameters last. There is no thread-local "last error":
 * calls that talk to S3 take an optional s3d_error* that receives the S3 error
 * code, message, request id and HTTP status of *that* call.
 *
 * Thread safety: an s3d_client may be used from many threads at once. An
 * s3d_signer is safe for concurrent use (its key cache is locked). An s3d_mpu
 * belongs to one thread at a time. s3d_buf is not synchronized.
 */
#ifndef S3DIRECT_H
#define S3DIRECT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define S3D_VERSION "0.1.0"

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

#define S3D_OK 0
enum s3d_errcode {
	S3D_E_NOMEM = -30900, /* allocation failed */
	S3D_E_INVAL,          /* invalid argument */
	S3D_E_TOOBIG,         /* a bounded buffer or limit would be exceeded */
	S3D_E_CRYPTO,         /* OpenSSL failure */
	S3D_E_TRANSPORT,      /* connection/transfer failure (curl); see s3d_error */
	S3D_E_TIMEOUT,        /* a timeout or the retry deadline expired */
	S3D_E_S3,             /* S3 answered with an error; see s3d_error */
	S3D_E_PROTOCOL,       /* malformed or unexpected S3 response */
	S3D_E_ABORTED,        /* a caller callback asked to stop */
	S3D_E_DIGEST,         /* content does not match the expected digest */
	S3D_E_IO,             /* local file I/O failed (errno in s3d_error) */
	S3D_E_NOTFOUND,       /* HTTP 404 (also reported as S3D_E_S3 detail) */
	S3D_E_CONFLICT,       /* a concurrent change won (compare-and-set lost) */
	S3D_E_STORE,          /* the session index (LMDB) failed; see s3d_error */
	S3D_E_EXPIRED,        /* the upload session expired */
	S3D_E_STATE,          /* the session is in a state that forbids the call */
	S3D_E_UNSUPPORTED,    /* e.g. a digest algorithm other than sha256 */
	S3D_E_QUOTA,          /* a size limit or quota would be exceeded */
	S3D_E_LAST
};

/* Static, never NULL. Also accepts S3D_OK. */
const char *s3d_strerror(int rc);

/*
 * Detail of a failed call. Every string is NUL-terminated and truncated to fit.
 * Zero it (or call s3d_error_clear) before use; functions fill it only on error.
 */
typedef struct s3d_error {
	int http_status;      /* 0 when no HTTP answer was received */
	int curl_code;        /* CURLcode of a transport failure, else 0 */
	int sys_errno;        /* errno for S3D_E_IO */
	int attempts;         /* how many attempts were made */
	char code[64];        /* S3 error code, e.g. "NoSuchKey", "BadDigest" */
	char message[256];    /* S3 message or transport error text */
	char request_id[128]; /* x-amz-request-id / <RequestId> */
	char resource[256];   /* "METHOD bucket/key" of the failing request */
} s3d_error;

void s3d_error_clear(s3d_error *err);
/* Writes "Code: message (HTTP n, request id R)" style text into out. */
void s3d_error_format(const s3d_error *err, int rc, char *out, size_t cap);

/* ------------------------------------------------------------------------ */
/* Bounded buffers and views (buf.c)                                        */
/* ------------------------------------------------------------------------ */

typedef struct s3d_view {
	const uint8_t *ptr;
	size_t len;
} s3d_view;

/*
 * A growable byte buffer with a hard ceiling. ptr is always NUL-terminated
 * after a successful append (the terminator is not counted in len and does
 * not count against max). Caller owns the struct; s3d_buf_cleanup frees.
 */
typedef struct s3d_buf {
	uint8_t *ptr;
	size_t len;
	size_t cap;
	size_t max;
} s3d_buf;

void s3d_buf_init(s3d_buf *b, size_t max);
/* S3D_E_TOOBIG when len+n > max (buffer unchanged), S3D_E_NOMEM. */
int s3d_buf_append(s3d_buf *b, const void *p, size_t n);
int s3d_buf_appendz(s3d_buf *b, const char *s);
int s3d_buf_appendc(s3d_buf *b, char c);
int s3d_buf_printf(s3d_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Ensures room for n more bytes without changing len. */
int s3d_buf_reserve(s3d_buf *b, size_t n);
/* The contents as a C string ("" when empty and unallocated). */
const char *s3d_buf_str(const s3d_buf *b);
s3d_view s3d_buf_view(const s3d_buf *b);
void s3d_buf_reset(s3d_buf *b);
void s3d_buf_cleanup(s3d_buf *b);
/* Overwrites the whole allocation with zeros, then frees (for secrets). */
void s3d_buf_cleanup_wipe(s3d_buf *b);

/* ------------------------------------------------------------------------ */
/* URI encoding for SigV4 (uri.c)                                           */
/* ------------------------------------------------------------------------ */

/*
 * Percent-encodes per SigV4: unreserved A-Z a-z 0-9 - _ . ~ kept, every other
 * byte as %XX (upper-case hex). With keep_slash, '/' is kept (object key in a
 * path); without it, '/' becomes %2F (query names and values).
 */
int s3d_uri_encode(s3d_buf *out, const char *s, size_t n, int keep_slash);

/* ------------------------------------------------------------------------ */
/* SigV4 (sigv4.c)                                                          */
/* ------------------------------------------------------------------------ */

typedef struct s3d_kv {
	const char *name;
	const char *value;
} s3d_kv;

#define S3D_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define S3D_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3D_PRESIGN_MIN_EXPIRES 1
#define S3D_PRESIGN_MAX_EXPIRES 604800

enum s3d_sigv4_flags {
	/* Path is already URI-encoded: use as is (not encoded again). */
	S3D_SIGV4_PATH_ENCODED = 1u << 0,
	/* Non-S3 services: remove dot segments and double-encode the path. */
	S3D_SIGV4_NORMALIZE_PATH = 1u << 1,
	S3D_SIGV4_DOUBLE_ENCODE = 1u << 2,
	/* Header form: add and sign x-amz-content-sha256 (S3 needs it). */
	S3D_SIGV4_CONTENT_SHA256_HEADER = 1u << 3,
	/* Session token is added after signing instead of being signed. */
	S3D_SIGV4_OMIT_SESSION_TOKEN = 1u << 4,
};

/*
 * One request to sign. Every string is borrowed for the duration of the call.
 * Query names/values are raw (unencoded); headers are sent as given and
 * canonicalized (lower-cased names, trimmed and space-collapsed values,
 * duplicates joined with ','). Host must be given as a header or in host.
 */
typedef struct s3d_sigv4_request {
	const char *method;
	const char *host;       /* Host header value (with :port when not default) */
	const char *path;       /* raw path starting with '/' */
	const s3d_kv *query;
	size_t nquery;
	const s3d_kv *headers;  /* extra headers to sign (not Host) */
	size_t nheaders;
	const char *payload_hash; /* hex SHA-256 or UNSIGNED-PAYLOAD; NULL = unsigned */
	time_t when;            /* signing time, UTC seconds */
	int64_t expires;        /* query form: X-Amz-Expires, 1..604800 */
	unsigned flags;
} s3d_sigv4_request;

/* Everything signing produces; caller owns it (init/cleanup). */
typedef struct s3d_sigv4_result {
	char amz_date[17];       /* YYYYMMDDTHHMMSSZ */
	char signature[65];      /* lower-case hex */
	s3d_buf canonical_request;
	s3d_buf string_to_sign;
	s3d_buf signed_headers;  /* "host;x-amz-date" */
	s3d_buf authorization;   /* header form: value of Authorization */
	s3d_buf query;           /* query form: full encoded query string incl. X-Amz-Signature */
	void *scratch;           /* private: sort tables and digest contexts, kept
				    for reuse while the result is reused */
} s3d_sigv4_result;

/* A result can be reused for many signatures: reuse avoids every allocation. */
void s3d_sigv4_result_init(s3d_sigv4_result *r);
void s3d_sigv4_result_cleanup(s3d_sigv4_result *r);

typedef struct s3d_signer s3d_signer;

/*
 * Creates a signer for (credentials, region, service). session_token may be
 * NULL. The secret is copied and wiped on free. Derived signing keys are
 * cached per date.
 */
int s3d_signer_new(const char *access_key, const char *secret_key,
		   const char *session_token, const char *region,
		   const char *service, s3d_signer **out);
void s3d_signer_free(s3d_signer *s);

/* Stage 1: canonical request (and signed header list) into r. query_form
 * adds the X-Amz-* authentication parameters to the canonical query. */
int s3d_sigv4_canonical_request(const s3d_signer *s, const s3d_sigv4_request *req,
				int query_form, s3d_sigv4_result *r);
/* Stage 2: string to sign from r->canonical_request. */
int s3d_sigv4_string_to_sign(const s3d_signer *s, time_t when, s3d_sigv4_result *r);
/* Stage 3: signature from r->string_to_sign. */
int s3d_sigv4_signature(s3d_signer *s, time_t when, s3d_sigv4_result *r);

/* All stages, header form: fills authorization (and amz_date). */
int s3d_sigv4_sign_headers(s3d_signer *s, const s3d_sigv4_request *req,
			   s3d_sigv4_result *r);
/* All stages, query form: fills query (ready to append after '?'). */
int s3d_sigv4_presign(s3d_signer *s, const s3d_sigv4_request *req,
		      s3d_sigv4_result *r);

/* ------------------------------------------------------------------------ */
/* S3 client (s3_client.c)                                                  */
/* ------------------------------------------------------------------------ */

typedef struct s3d_client_config {
	const char *endpoint;      /* "http://127.0.0.1:9000", "https://s3.amazonaws.com" */
	const char *region;        /* default "us-east-1" */
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* optional */
	int virtual_hosted;        /* bucket in the host name; default path-style */
	int skip_verify;           /* disable TLS peer/host verification */
	const char *ca_file;       /* optional CA bundle */
	const char *user_agent;    /* optional */
	long connect_timeout_ms;   /* default 10000 */
	long low_speed_time_s;     /* abort attempt slower than 1 KiB/s for this long; default 60 */
	long request_timeout_ms;   /* whole attempt; 0 = none (default) */
	int max_retries;           /* default 6; 0 = no retry */
	long retry_base_ms;        /* default 100 */
	long retry_max_ms;         /* backoff cap; default 5000 */
	long retry_deadline_ms;    /* all attempts of one call; default 120000 */
} s3d_client_config;

typedef struct s3d_client s3d_client;

int s3d_client_new(const s3d_client_config *cfg, s3d_client **out);
void s3d_client_free(s3d_client *c);

/* Called with response body bytes; return 0 to go on, non-zero to abort. */
typedef int (*s3d_write_fn)(void *ud, const uint8_t *p, size_t n);
/* Fills up to cap bytes; returns the count, 0 at EOF, or (size_t)-1 to abort. */
typedef size_t (*s3d_read_fn)(void *ud, uint8_t *p, size_t cap);
/* Rewinds a stream for a retry; return 0 on success (NULL = not retryable). */
typedef int (*s3d_rewind_fn)(void *ud);

typedef struct s3d_obj_info {
	int64_t size;             /* Content-Length of the object (-1 unknown) */
	int64_t last_modified;    /* unix seconds, 0 unknown */
	char etag[136];           /* with quotes as S3 sends it */
	char checksum_sha256[64]; /* base64, when returned */
	char checksum_type[32];   /* FULL_OBJECT / COMPOSITE, when returned */
	char content_type[128];
	char version_id[128];
	char meta_s3direct[512];  /* x-amz-meta-s3direct (the writer's tail stamp) */
} s3d_obj_info;

typedef struct s3d_put_opts {
	const char *content_type;
	const char *checksum_sha256; /* base64 of SHA-256: S3 verifies (BadDigest) */
	const char *checksum_algorithm; /* CreateMultipartUpload: "SHA256" lets parts
					   carry x-amz-checksum-sha256 */
	const char *storage_class;
	const char *acl;             /* x-amz-acl */
	const char *sse;             /* x-amz-server-side-encryption: AES256 | aws:kms */
	const char *sse_kms_key_id;
	const s3d_kv *headers;       /* extra headers */
	size_t nheaders;
} s3d_put_opts;

int s3d_put_object(s3d_client *c, const char *bucket, const char *key,
		   const void *data, size_t len, const s3d_put_opts *opts,
		   s3d_obj_info *out, s3d_error *err);
/* Streams len bytes from read (retried only when rewind is given). */
int s3d_put_object_stream(s3d_client *c, const char *bucket, const char *key,
			  int64_t len, s3d_read_fn read, s3d_rewind_fn rewind,
			  void *ud, const s3d_put_opts *opts, s3d_obj_info *out,
			  s3d_error *err);
/*
 * Streams bytes [offset, offset+length) (length -1 = to the end) to write.
 * A retry after a transport failure resumes after the bytes already
 * delivered, so write never sees a byte twice. info may be NULL.
 */
int s3d_get_object(s3d_client *c, const char *bucket, const char *key,
		   int64_t offset, int64_t length, s3d_write_fn write, void *ud,
		   s3d_obj_info *info, s3d_error *err);
/* checksum_mode asks for x-amz-checksum-* (x-amz-checksum-mode: ENABLED). */
int s3d_head_object(s3d_client *c, const char *bucket, const char *key,
		    int checksum_mode, s3d_obj_info *info, s3d_error *err);
int s3d_delete_object(s3d_client *c, const char *bucket, const char *key,
		      s3d_error *err);
/*
 * Deletes keys in batches of up to 1000. A key that fails is reported as
 * S3D_E_S3 with the first failing key's code in err (the rest still tried).
 */
int s3d_delete_objects(s3d_client *c, const char *bucket,
		       const char *const *keys, size_t nkeys, s3d_error *err);
/* Server-side copy (<= 5 GiB on AWS). opts apply to the destination. */
int s3d_copy_object(s3d_client *c, const char *src_bucket, const char *src_key,
		    const char *bucket, const char *key, const s3d_put_opts *opts,
		    s3d_obj_info *out, s3d_error *err);

typedef struct s3d_part {
	int number;
	int64_t size;
	int64_t last_modified;
	char etag[136];
	char checksum_sha256[64];
} s3d_part;

/* upload_id receives the new id. */
int s3d_create_multipart(s3d_client *c, const char *bucket, const char *key,
			 const s3d_put_opts *opts, s3d_buf *upload_id,
			 s3d_error *err);
/* checksum_sha256 (base64) optional; out->etag receives the part ETag. */
int s3d_upload_part(s3d_client *c, const char *bucket, const char *key,
		    const char *upload_id, int part_number, const void *data,
		    size_t len, const char *checksum_sha256, s3d_part *out,
		    s3d_error *err);
/* Copies src bytes [first, last] (inclusive; first<0 = whole object). */
int s3d_upload_part_copy(s3d_client *c, const char *bucket, const char *key,
			 const char *upload_id, int part_number,
			 const char *src_bucket, const char *src_key,
			 int64_t first, int64_t last, s3d_part *out,
			 s3d_error *err);
/* parts in ascending number order. A 200 answer with an <Error> body is an error. */
int s3d_complete_multipart(s3d_client *c, const char *bucket, const char *key,
			   const char *upload_id, const s3d_part *parts,
			   size_t nparts, s3d_obj_info *out, s3d_error *err);
int s3d_abort_multipart(s3d_client *c, const char *bucket, const char *key,
			const char *upload_id, s3d_error *err);

/* Listing: one callback shape for objects, prefixes, uploads and parts. */
enum s3d_entry_kind {
	S3D_ENTRY_OBJECT = 1,
	S3D_ENTRY_PREFIX,
	S3D_ENTRY_UPLOAD,
	S3D_ENTRY_PART,
};

/* Strings are borrowed: valid only during the callback. */
typedef struct s3d_list_entry {
	int kind;
	const char *key;          /* object key, common prefix, or upload's key */
	const char *upload_id;    /* S3D_ENTRY_UPLOAD */
	const char *etag;         /* objects, parts */
	const char *checksum_sha256; /* parts (when present) */
	int part_number;          /* S3D_ENTRY_PART */
	int64_t size;             /* objects, parts */
	int64_t last_modified;    /* objects, parts; initiated time for uploads */
} s3d_list_entry;

/* Return 0 to go on, non-zero to stop (the call then returns S3D_OK). */
typedef int (*s3d_list_fn)(void *ud, const s3d_list_entry *e);

typedef struct s3d_list_opts {
	const char *prefix;
	const char *delimiter;
	const char *start_after;    /* ListObjectsV2 StartAfter */
	const char *key_marker;     /* ListMultipartUploads */
	const char *upload_id_marker;
	int part_number_marker;     /* ListParts */
	int max_keys;               /* page size; 0 = server default (1000) */
	int single_page;            /* stop after one page */
	s3d_buf *continuation;      /* in: token to resume from (may be empty);
				       out: token of the next page ("" = done) */
} s3d_list_opts;

int s3d_list_objects(s3d_client *c, const char *bucket, const s3d_list_opts *o,
		     s3d_list_fn fn, void *ud, s3d_error *err);
int s3d_list_multipart_uploads(s3d_client *c, const char *bucket,
			       const s3d_list_opts *o, s3d_list_fn fn, void *ud,
			       s3d_error *err);
int s3d_list_parts(s3d_client *c, const char *bucket, const char *key,
		   const char *upload_id, const s3d_list_opts *o,
		   s3d_list_fn fn, void *ud, s3d_error *err);
/*
 * Every part of the upload (all pages), ascending by part number, into a
 * malloc'd array the caller frees (*parts NULL when there is none).
 * S3D_E_NOTFOUND when the upload is gone (NoSuchUpload), S3D_E_TOOBIG
 * beyond 10,000 parts.
 */
int s3d_list_parts_all(s3d_client *c, const char *bucket, const char *key,
		       const char *upload_id, s3d_part **parts, size_t *nparts,
		       s3d_error *err);

/*
 * Presigned URL for method on bucket/key, valid for expires seconds from when
 * (0 = now). headers become signed headers the caller of the URL must send.
 */
int s3d_client_presign(s3d_client *c, const char *method, const char *bucket,
		       const char *key, const s3d_kv *headers, size_t nheaders,
		       time_t when, int64_t expires, s3d_buf *url_out);
/*
 * s3d_client_presign with query parameters signed into the URL (raw names
 * and values, encoded here), e.g. partNumber and uploadId for UploadPart.
 * The URL is appended to url_out. S3D_E_INVAL on a missing argument or an
 * out-of-range expires, S3D_E_TOOBIG when a bound is exceeded.
 */
int s3d_client_presign_query(s3d_client *c, const char *method, const char *bucket,
			     const char *key, const s3d_kv *query, size_t nquery,
			     const s3d_kv *headers, size_t nheaders, time_t when,
			     int64_t expires, s3d_buf *url_out);

/* Creates a bucket (used by tests and `make run`); BucketAlreadyOwnedByYou is OK. */
int s3d_create_bucket(s3d_client *c, const char *bucket, s3d_error *err);

/* ------------------------------------------------------------------------ */
/* Parallel multipart upload (multipart.c)                                  */
/* ------------------------------------------------------------------------ */

/*
 * Part buffer memory shared by uploads (s3d_mpu_config.budget): an upload's
 * first part buffer is its own, every further one takes part_size bytes of
 * the budget until it is freed. An upload that finds the budget spent sends
 * its parts one at a time instead of waiting for other uploads.
 */
typedef struct s3d_part_budget s3d_part_budget;
int s3d_part_budget_new(size_t bytes, s3d_part_budget **out);
void s3d_part_budget_free(s3d_part_budget *b); /* no upload may still use it */
size_t s3d_part_budget_available(s3d_part_budget *b);

typedef struct s3d_mpu_config {
	size_t part_size;     /* default 16 MiB; at least 5 MiB (except the last) */
	int max_in_flight;    /* parts uploading at once; default 4 */
	int checksum_sha256;  /* send x-amz-checksum-sha256 with every part */
	const s3d_put_opts *put_opts; /* for CreateMultipartUpload */
	s3d_part_budget *budget; /* NULL: each upload holds up to max_in_flight + 1 buffers */
} s3d_mpu_config;

typedef struct s3d_mpu s3d_mpu;

/*
 * Starts (upload_id NULL) or continues (upload_id given, parts numbered from
 * first_part) a multipart upload of bucket/key. Memory is bounded by
 * (max_in_flight + 1) * part_size. Transfers progress only while the caller
 * is inside an s3d_mpu_* call. The first failure sticks: later calls return
 * it. s3d_mpu_free without complete or abort leaves the upload on the server
 * (it can be resumed); a failed complete leaves the handle open for abort.
 * Completing with no bytes at all uploads one empty part.
 */
int s3d_mpu_new(s3d_client *c, const char *bucket, const char *key,
		const char *upload_id, int first_part, const s3d_mpu_config *cfg,
		s3d_mpu **out, s3d_error *err);
/* Buffers p; full parts are sent in parallel; blocks while the window is full. */
int s3d_mpu_write(s3d_mpu *m, const void *p, size_t n, s3d_error *err);
/* Waits for every part, then CompleteMultipartUpload (with the parts given
 * through prior, in order, followed by ours; prior may be NULL). */
int s3d_mpu_complete(s3d_mpu *m, const s3d_part *prior, size_t nprior,
		     s3d_obj_info *out, s3d_error *err);
/* Waits for parts in flight and returns the parts sent so far (borrowed);
 * a partly filled buffer is kept, not sent. */
int s3d_mpu_drain(s3d_mpu *m, const s3d_part **parts, size_t *nparts,
		  s3d_error *err);
int s3d_mpu_abort(s3d_mpu *m, s3d_error *err);
const char *s3d_mpu_upload_id(const s3d_mpu *m);
/* Peak bytes of part buffers held at once. */
size_t s3d_mpu_peak_memory(const s3d_mpu *m);
void s3d_mpu_free(s3d_mpu *m);

/* Uploads a local file: single PutObject below part_size, else parallel MPU. */
int s3d_upload_file(s3d_client *c, const char *bucket, const char *key,
		    const char *path, const s3d_mpu_config *cfg,
		    s3d_obj_info *out, size_t *peak_memory, s3d_error *err);

/* ------------------------------------------------------------------------ */
/* Streaming SHA-256 verification (verify.c)                                */
/* ------------------------------------------------------------------------ */

typedef struct s3d_verify_config {
	size_t range_size;    /* bytes per ranged GET; default 8 MiB */
	int max_in_flight;    /* ranges fetched at once; default 4 */
} s3d_verify_config;

/*
 * Reads bucket/key with parallel ranged GETs and hashes in order. Every range
 * carries If-Match with the ETag seen by the initial HEAD: an object replaced
 * meanwhile fails with S3D_E_S3 (PreconditionFailed).
 * digest receives the 32-byte SHA-256, size_out the byte count.
 */
int s3d_verify_sha256(s3d_client *c, const char *bucket, const char *key,
		      const s3d_verify_config *cfg, uint8_t digest[32],
		      int64_t *size_out, s3d_error *err);

/* ------------------------------------------------------------------------ */
/* Storage driver (driver.c, reader.c, upload.c)                            */
/*                                                                          */
/* The registry's StorageDriver, in C. Paths are distribution's driver      */
/* paths ("/docker/registry/v2/..."), already validated by the Go side;     */
/* keys are <root>/<path without its leading '/'>. Committed content uses   */
/* exactly distribution's layout; in-progress writers keep their tails      */
/* under <root>/_s3direct/, which List, Stat and Walk never show.           */
/* ------------------------------------------------------------------------ */

typedef struct s3d_driver_config {
	s3d_client_config client;
	const char *bucket;
	const char *root;          /* rootdirectory: "" or "a/b" (no leading '/') */
	s3d_put_opts put;          /* storage class, ACL, SSE for every object */
	size_t part_size;          /* writer part size (chunksize); default 10 MiB, >= 5 MiB */
	int parts_in_flight;       /* writer parts uploading at once; default 2 */
	/* part buffers the writers share beyond one part_size buffer each
	 * (s3d_part_budget); 0: default parts_in_flight * part_size (one writer
	 * at full overlap); < 0: no shared limit, each writer holds up to
	 * (parts_in_flight + 1) * part_size */
	int64_t upload_memory;
	int64_t copy_threshold;    /* Move: single CopyObject up to this; default 32 MiB */
	int64_t copy_part_size;    /* Move: UploadPartCopy part size; default 32 MiB */
	int copy_concurrency;      /* Move: parts copied at once; default 8 */
	int64_t redirect_expires;  /* presigned redirect lifetime, s; default 1200 */
} s3d_driver_config;

typedef struct s3d_driver s3d_driver;

/* Checks the configuration (and that the bucket answers a HEAD). */
int s3d_driver_new(const s3d_driver_config *cfg, s3d_driver **out, s3d_error *err);
void s3d_driver_free(s3d_driver *d);
s3d_client *s3d_driver_client(s3d_driver *d);
/* The object key of a driver path, into out. */
int s3d_driver_key(const s3d_driver *d, const char *path, s3d_buf *out);

/* Whole small objects. S3D_E_NOTFOUND when absent; S3D_E_TOOBIG over out->max. */
int s3d_driver_get_content(s3d_driver *d, const char *path, s3d_buf *out, s3d_error *err);
int s3d_driver_put_content(s3d_driver *d, const char *path, const void *data,
			   size_t len, s3d_error *err);

typedef struct s3d_stat {
	int64_t size;          /* 0 for directories */
	int64_t mod_time;      /* unix seconds (0 for directories) */
	int is_dir;
} s3d_stat;

/* A file (object) or a directory (a prefix with objects below). */
int s3d_driver_stat(s3d_driver *d, const char *path, s3d_stat *out, s3d_error *err);
/*
 * Direct children of a directory as full driver paths, each NUL-terminated,
 * one after the other in out. S3D_E_NOTFOUND when path has no children
 * (except "/", which is never missing).
 */
int s3d_driver_list(s3d_driver *d, const char *path, s3d_buf *out, size_t *count,
		    s3d_error *err);
/* Server-side copy (parallel UploadPartCopy above copy_threshold), then delete. */
int s3d_driver_move(s3d_driver *d, const char *src, const char *dst, s3d_error *err);
/* Deletes the object at path and everything below path + "/". NOTFOUND when nothing. */
int s3d_driver_delete(s3d_driver *d, const char *path, s3d_error *err);
/* Presigned GET or HEAD URL for path, valid redirect_expires seconds. */
int s3d_driver_redirect_url(s3d_driver *d, const char *method, const char *path,
			    s3d_buf *url, s3d_error *err);

/* Walk: a pull iterator over everything below path, in lexical order,
 * directories synthesized from keys and reported before their contents. */
typedef struct s3d_walker s3d_walker;
typedef struct s3d_walk_entry {
	const char *path;      /* borrowed until the next call */
	int64_t size;
	int64_t mod_time;
	int is_dir;
} s3d_walk_entry;
/* start_after: skip paths <= it (distribution's StartAfterHint); may be NULL. */
int s3d_walker_open(s3d_driver *d, const char *path, const char *start_after,
		    s3d_walker **out, s3d_error *err);
/* S3D_OK with *done = 0 and e filled, or *done = 1 at the end. */
int s3d_walker_next(s3d_walker *w, s3d_walk_entry *e, int *done, s3d_error *err);
/* Skips everything below dir (a directory just returned). */
void s3d_walker_skip_dir(s3d_walker *w, const char *dir);
void s3d_walker_free(s3d_walker *w);

/* Reader: streams an object from offset, pulled in caller-sized reads with
 * bounded memory; transport failures resume after the bytes delivered.
 * NOTFOUND when absent; an offset at or past the end reads as empty. */
typedef struct s3d_reader s3d_reader;
int s3d_reader_open(s3d_driver *d, const char *path, int64_t offset,
		    s3d_reader **out, s3d_error *err);
/* *n = 0 at the end. */
int s3d_reader_read(s3d_reader *r, uint8_t *p, size_t cap, size_t *n, s3d_error *err);
void s3d_reader_free(s3d_reader *r);

/*
 * Writer: the registry's FileWriter. S3 is the source of truth: parts of a
 * multipart upload (found again with ListMultipartUploads + ListParts) and,
 * for a tail under 5 MiB, a tail object under <root>/_s3direct/ stamped
 * with the upload and offset it follows. Close keeps everything needed to
 * append later from any process; Commit makes the object; Cancel removes it
 * all. Append to a committed object continues after its bytes.
 */
typedef struct s3d_writer s3d_writer;
int s3d_writer_open(s3d_driver *d, const char *path, int append,
		    s3d_writer **out, s3d_error *err);
int s3d_writer_write(s3d_writer *w, const void *p, size_t n, s3d_error *err);
int64_t s3d_writer_size(const s3d_writer *w);
/* After a failed close, s3d_writer_size reports what S3 holds (what a later
 * append open finds), when that can still be read; else the bytes given. */
int s3d_writer_close(s3d_writer *w, s3d_error *err);
int s3d_writer_commit(s3d_writer *w, s3d_error *err);
int s3d_writer_cancel(s3d_writer *w, s3d_error *err);
/* Peak bytes of part buffers this writer held. */
size_t s3d_writer_peak_memory(const s3d_writer *w);
/* Frees memory only (a writer not closed keeps its parts in S3). */
void s3d_writer_free(s3d_writer *w);

/* ------------------------------------------------------------------------ */
/* Presigned upload sessions: records (session_index.c)                     */
/* ------------------------------------------------------------------------ */

enum s3d_session_status {
	S3D_SESSION_PENDING = 1,  /* presigned, nothing known stored yet */
	S3D_SESSION_UPLOADING,    /* multipart upload opened */
	S3D_SESSION_FINALIZING,   /* a finalize holds the session (transitional) */
	S3D_SESSION_COMPLETED,
	S3D_SESSION_FAILED,       /* finalize refused the bytes (digest, quota) */
	S3D_SESSION_CANCELLED,
	S3D_SESSION_EXPIRED,
	S3D_SESSION_STATUS_MAX = S3D_SESSION_EXPIRED
};
/* Bit of a status in a status mask. */
#define S3D_SESSION_BIT(st) (1u << (unsigned)(st))
/* "pending", "uploading", ...; "unknown" for anything else. Static. */
const char *s3d_session_status_name(int status);

enum s3d_session_mode {
	S3D_MODE_NONE = 0,        /* not chosen yet */
	S3D_MODE_SINGLE,          /* one presigned PUT */
	S3D_MODE_MULTIPART,       /* presigned UploadPart URLs */
};

/*
 * One presigned upload session. Fixed-size fields: a value that does not fit
 * is refused (S3D_E_TOOBIG), never truncated.
 */
typedef struct s3d_session {
	char uuid[72];              /* the registry's upload UUID */
	char repo[256];             /* repository name */
	char user[128];             /* who opened it ("" anonymous) */
	int status;                 /* enum s3d_session_status */
	int mode;                   /* enum s3d_session_mode */
	int direct;                 /* bytes go straight to the blob's key */
	char key[1024];             /* object key the bytes are uploaded to */
	char upload_id[512];        /* multipart upload id ("" none) */
	char declared_digest[80];   /* "sha256:<hex>" or "" */
	int64_t declared_size;      /* -1 none */
	char final_digest[80];      /* once completed */
	int64_t final_size;         /* -1 until completed */
	int64_t part_size;          /* multipart part size (0 single) */
	int64_t created;            /* unix seconds */
	int64_t expires;            /* unix seconds: session end */
	int64_t updated;            /* unix seconds: last change */
	char detail[256];           /* why it failed ("" otherwise) */
} s3d_session;

/* Zeroes s and sets the sizes to -1. */
void s3d_session_init(s3d_session *s);
/*
 * Versioned text encoding shared by the index and the S3 session marker
 * (one "name=value" line per field, values percent-encoded). decode is
 * strict: unknown version, missing uuid, bad numbers, an oversized value or
 * malformed escapes give S3D_E_PROTOCOL and leave *out unspecified.
 */
int s3d_session_encode(const s3d_session *s, s3d_buf *out);
int s3d_session_decode(const uint8_t *p, size_t n, s3d_session *out);

/* ------------------------------------------------------------------------ */
/* Session index (session_index.c): the only module that calls mdb_*.       */
/* Node-local: S3 stays the source of truth (see the session marker).       */
/* ------------------------------------------------------------------------ */

typedef struct s3d_index_config {
	const char *path;    /* directory, created (0700) when missing */
	size_t map_size;     /* initial map size; default 64 MiB; grows when full */
	int no_sync;         /* 1 = commits are not fsynced (tests only) */
} s3d_index_config;

typedef struct s3d_index s3d_index;

/* S3D_E_STORE (LMDB's message in err->message) or S3D_E_IO on failure. */
int s3d_index_open(const s3d_index_config *cfg, s3d_index **out, s3d_error *err);
void s3d_index_close(s3d_index *ix);

/* S3D_E_NOTFOUND when uuid has no record. */
int s3d_index_get(s3d_index *ix, const char *uuid, s3d_session *out, s3d_error *err);

/* In a from_mask: the record may be absent. */
#define S3D_INDEX_ABSENT 1u
#define S3D_INDEX_ANY 0xffffffffu
/*
 * Stores s (keyed by s->uuid) when no record exists and from_mask has
 * S3D_INDEX_ABSENT, or when the stored record's status bit is in from_mask.
 * Otherwise S3D_E_CONFLICT, with the stored record copied to current (may be
 * NULL). Durable when it returns S3D_OK (unless no_sync): concurrent callers
 * share one commit (group commit).
 */
int s3d_index_put(s3d_index *ix, const s3d_session *s, unsigned from_mask,
		  s3d_session *current, s3d_error *err);

/*
 * s3d_index_put without the wait: queues the put and returns at once with
 * *op and its *ticket. The write is committed once s3d_index_committed()
 * reaches the ticket; s3d_index_op_finish then returns what s3d_index_put
 * would have (it waits when called earlier) and frees op: it must be called
 * exactly once for every op started. After each commit that holds a started
 * op, a byte is written to s3d_index_notify_fd(): the read end of a
 * non-blocking pipe, to poll (the index owns it; read, never close it). Go
 * waits there without holding a processor blocked in C for the fsync.
 */
typedef struct s3d_index_op s3d_index_op;
int s3d_index_put_start(s3d_index *ix, const s3d_session *s, unsigned from_mask,
			s3d_index_op **op, uint64_t *ticket, s3d_error *err);
/* Every started op must be finished before s3d_index_close. */
int s3d_index_op_finish(s3d_index_op *op, s3d_session *current, s3d_error *err);
uint64_t s3d_index_committed(s3d_index *ix);
int s3d_index_notify_fd(const s3d_index *ix);
/* S3D_E_NOTFOUND when absent. */
int s3d_index_delete(s3d_index *ix, const char *uuid, s3d_error *err);

/* Called with a copy of each record; return non-zero to stop. */
typedef int (*s3d_session_fn)(void *ud, const s3d_session *s);
/* Every record, in uuid order. fn runs outside any LMDB transaction. */
int s3d_index_scan(s3d_index *ix, s3d_session_fn fn, void *ud, s3d_error *err);
/* Records with expires <= now and a status in status_mask, oldest first. */
int s3d_index_scan_expired(s3d_index *ix, int64_t now, unsigned status_mask,
			   s3d_session_fn fn, void *ud, s3d_error *err);

/* ------------------------------------------------------------------------ */
/* Presigned upload service (service.c, presign.c, finalize.c, sweep.c)     */
/*                                                                          */
/* What the registry middleware calls: every step of a presigned upload     */
/* session, each one call. Error codes map to the OCI API as follows:       */
/*   S3D_E_NOTFOUND    404 BLOB_UPLOAD_UNKNOWN (unknown, other repository)  */
/*   S3D_E_EXPIRED     410 BLOB_UPLOAD_INVALID ("session expired")          */
/*   S3D_E_STATE       400 BLOB_UPLOAD_INVALID                              */
/*   S3D_E_CONFLICT    409 BLOB_UPLOAD_INVALID (concurrent finalize/upload) */
/*   S3D_E_DIGEST      400 DIGEST_INVALID                                   */
/*   S3D_E_UNSUPPORTED 400 UNSUPPORTED                                      */
/*   S3D_E_QUOTA       403 DENIED (err->message names the quota)            */
/*   S3D_E_INVAL       400 BLOB_UPLOAD_INVALID / SIZE_INVALID               */
/*   anything else     500 / 502 with the S3 detail                         */
/* err->message always carries a sentence for the client.                   */
/* ------------------------------------------------------------------------ */

typedef struct s3d_service_config {
	s3d_index_config index;
	int64_t url_expires;    /* presigned URL lifetime, s; default 3600, max 604800 */
	int64_t session_ttl;    /* session lifetime from creation, s; default 86400 */
	int64_t max_blob_size;  /* bytes; 0 = no limit */
	int64_t repo_quota;     /* bytes of blobs linked per repository; 0 = none */
	int64_t part_size;      /* multipart part size when the size is not declared;
				   default 64 MiB (grown to fit 10,000 parts) */
	s3d_verify_config verify; /* streaming verification at finalize */
	int64_t finalize_stale; /* a FINALIZING session older than this (s) may be
				   taken over; default 900 */
} s3d_service_config;

typedef struct s3d_service s3d_service;

/* Borrows d (must outlive the service); opens the index. */
int s3d_service_new(s3d_driver *d, const s3d_service_config *cfg,
		    s3d_service **out, s3d_error *err);
void s3d_service_free(s3d_service *svc);
s3d_index *s3d_service_index(s3d_service *svc);

/*
 * The session uuid of repo, from the index or (another process opened it)
 * from its S3 marker, which is then cached in the index. S3D_E_NOTFOUND when
 * uuid is not a presigned session of repo (a stock upload, or none).
 */
int s3d_service_lookup(s3d_service *svc, const char *repo, const char *uuid,
		       s3d_session *out, s3d_error *err);

typedef struct s3d_presign_request {
	const char *repo;
	const char *uuid;
	const char *user;       /* may be NULL */
	const char *digest;     /* declared "sha256:<hex>", or NULL */
	int64_t size;           /* declared size, or -1 */
	int multipart;          /* 0: one PUT URL; 1: part URLs */
	int first_part;         /* multipart: 1..10000 (0 = 1) */
	int parts;              /* multipart: how many URLs, >= 1 */
	time_t now;             /* 0 = time(NULL) */
} s3d_presign_request;

typedef struct s3d_presign_result {
	s3d_buf url;            /* single PUT URL */
	s3d_buf headers;        /* headers to send: "name\0value\0" pairs */
	size_t nheaders;
	s3d_buf part_urls;      /* multipart: nparts NUL-terminated URLs */
	int first_part;
	int nparts;
	int64_t part_size;
	int64_t expires_at;     /* unix seconds, when the URLs expire */
	s3d_session session;    /* the session after the call */
	/* s3d_service_presign_start's pending commit */
	s3d_index_op *pending;
	uint64_t ticket;        /* resume once s3d_index_committed() reaches it */
	int attempt;
} s3d_presign_result;

void s3d_presign_result_init(s3d_presign_result *r);
void s3d_presign_result_cleanup(s3d_presign_result *r);

/*
 * Opens the session on its first call (the stock upload must exist under
 * repo with no PATCH data: S3D_E_NOTFOUND / S3D_E_STATE otherwise; declared
 * size checked against the quotas), then returns fresh URLs. A declared
 * digest is signed into a single PUT as x-amz-checksum-sha256 and, when no
 * quota needs the size checked first or the size is declared, the URL
 * points at the blob's content-addressed key. Every call is committed to the
 * index before it returns.
 */
int s3d_service_presign(s3d_service *svc, const s3d_presign_request *rq,
			s3d_presign_result *out, s3d_error *err);
/*
 * s3d_service_presign in two steps, for callers that must not block in C
 * through a commit (the Go middleware): _start returns S3D_PENDING when the
 * presign's commit is queued (a refresh of an open session), with
 * out->ticket set; once s3d_index_committed(s3d_service_index(svc)) reaches
 * the ticket (s3d_index_notify_fd tells when to look), _resume with the
 * same rq and out finishes it: S3D_OK and the URLs, an error, or S3D_PENDING
 * again (the session changed concurrently and is looked up again). _resume
 * called earlier waits; s3d_presign_result_cleanup collects a pending
 * commit that is never resumed.
 */
#define S3D_PENDING 1
int s3d_service_presign_start(s3d_service *svc, const s3d_presign_request *rq,
			      s3d_presign_result *out, s3d_error *err);
int s3d_service_presign_resume(s3d_service *svc, const s3d_presign_request *rq,
			       s3d_presign_result *out, s3d_error *err);

typedef struct s3d_upload_status {
	s3d_session session;
	int64_t stored;         /* bytes S3 holds for the session */
	s3d_part *parts;        /* multipart: the stored parts, ascending */
	size_t nparts;
} s3d_upload_status;
void s3d_upload_status_cleanup(s3d_upload_status *st);
/* Reads what S3 holds (ListParts or HEAD), never client claims. */
int s3d_service_status(s3d_service *svc, const char *repo, const char *uuid,
		       s3d_upload_status *out, s3d_error *err);

enum s3d_verified_by {
	S3D_VERIFIED_CHECKSUM = 1, /* S3 enforced the declared SHA-256 at upload */
	S3D_VERIFIED_STREAM,       /* read back and hashed */
};
typedef struct s3d_finalize_result {
	char digest[80];
	int64_t size;
	int deduplicated;       /* the blob was already stored: upload dropped */
	int verified_by;        /* enum s3d_verified_by */
	int repeated;           /* the session was already completed with digest */
} s3d_finalize_result;

/*
 * Completes the session with digest: completes the multipart upload from the
 * parts S3 holds, verifies the SHA-256, checks sizes and quotas,
 * deduplicates, places the blob at its content-addressed key (server-side
 * copy when needed), links it into repo exactly as the stock registry does,
 * removes the stock upload directory and marks the session completed.
 * On S3D_E_DIGEST / S3D_E_QUOTA nothing is linked and the uploaded bytes are
 * removed (never a blob object another repository may use). Exactly one of
 * concurrent finalizes wins; a repeat after success returns the same result.
 */
int s3d_service_finalize(s3d_service *svc, const char *repo, const char *uuid,
			 const char *digest, time_t now,
			 s3d_finalize_result *out, s3d_error *err);

/* Aborts the multipart upload, deletes the temp object, the stock upload
 * directory and the marker; marks the session cancelled. */
int s3d_service_cancel(s3d_service *svc, const char *repo, const char *uuid,
		       s3d_error *err);

typedef struct s3d_sweep_stats {
	int expired;            /* sessions marked expired */
	int aborted_uploads;    /* multipart uploads aborted */
	int deleted_objects;    /* temp objects and markers deleted */
	int errors;             /* steps that failed (retried next sweep) */
	int pruned;             /* ended sessions dropped from the index (one
				   session TTL after their end) */
} s3d_sweep_stats;
/*
 * Expires every session past its end: from the index and from the S3
 * markers (sessions of other processes), plus orphan temp objects and
 * multipart uploads under the private uploads prefix older than the session
 * TTL. Records of sessions that ended are kept in the index for one more
 * session TTL (repeat finalizes, `s3d sessions`), then dropped. Idempotent;
 * safe to run from several processes at once.
 */
int s3d_service_sweep(s3d_service *svc, time_t now, s3d_sweep_stats *st,
		      s3d_error *err);

/* Bytes of the blobs linked into repo (layer links), read from S3. */
int s3d_service_repo_usage(s3d_service *svc, const char *repo, int64_t *bytes,
			   s3d_error *err);

#ifdef __cplusplus
}
#endif
#endif /* S3DIRECT_H */
