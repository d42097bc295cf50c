/*
 * Registry client of s3d: the client side of the presigned upload API
 * (docs/api.md) and the stock OCI calls `s3d push` needs (blob HEAD,
 * manifest PUT), with HTTP Basic and the Bearer token flow.
 *
 * Two halves:
 *  - pure parsers taking bytes (JSON answers with jansson, WWW-Authenticate,
 *    OCI manifests and layouts): no I/O, fuzzed (tests/fuzz/fuzz_regclient_json.c,
 *    tests/fuzz/fuzz_www_authenticate.c) and unit-tested (tests/c/test_regclient.c);
 *  - the HTTP side (libcurl): one registry request at a time on one handle,
 *    and the upload of a file to presigned S3 URLs, parts in parallel on a
 *    curl multi handle.
 *
 * Errors: the usual S3D_E_* codes, detail in s3d_error. A registry error
 * answer fills err->code/message with the OCI error (code, message, and the
 * S3 detail the registry relays), http_status, and err->resource with
 * "registry METHOD URL"; an S3 error answer to a presigned PUT fills code,
 * message, request id and "S3 PUT host/path" (never the query: it carries
 * the signature). Status mapping of registry errors: 404 S3D_E_NOTFOUND, 409
 * S3D_E_CONFLICT, 410 S3D_E_EXPIRED, DIGEST_INVALID S3D_E_DIGEST,
 * UNSUPPORTED S3D_E_UNSUPPORTED, any other error answer S3D_E_S3 ("the server
 * answered with an error"); a malformed or unexpected answer S3D_E_PROTOCOL.
 * Every string copied from an answer into an s3d_error has its control
 * characters replaced (a hostile server cannot drive the terminal).
 */
#ifndef S3D_REGCLIENT_H
#define S3D_REGCLIENT_H

#include "s3direct.h"

#include <signal.h>

#define S3D_REG_JSON_MAX (4u << 20)       /* JSON answers, manifests (distribution's limit) */
#define S3D_REG_ERR_BODY_MAX (64u * 1024u) /* error bodies kept */
#define S3D_REG_HEADER_MAX (8u * 1024u)    /* WWW-Authenticate values parsed */
#define S3D_REG_URL_MAX (16u * 1024u)      /* any URL we build or accept */
#define S3D_REG_TOKEN_MAX (16u * 1024u)    /* a Bearer token */
#define S3D_REG_MAX_HEADERS 64             /* entries of "headers" in a presign answer */
#define S3D_REG_MAX_PART_URLS 1000         /* per presign call (docs/api.md) */
#define S3D_REG_MAX_PARTS 10000            /* S3's part numbers */
#define S3D_REG_MAX_DESCS 10000            /* descriptors in one manifest */

/* ------------------------------------------------------------------------ */
/* Pure parsers                                                             */
/* ------------------------------------------------------------------------ */

enum s3d_reg_auth_scheme {
	S3D_REG_AUTH_NONE = 0,
	S3D_REG_AUTH_BASIC,
	S3D_REG_AUTH_BEARER,
};

/* One challenge of a WWW-Authenticate value (RFC 7235). */
typedef struct s3d_reg_challenge {
	int scheme;          /* enum s3d_reg_auth_scheme */
	char realm[1024];
	char service[256];
	char scope[1024];    /* space-separated scopes, as the registry sent them */
	char error[64];      /* error="insufficient_scope" and the like */
} s3d_reg_challenge;

/*
 * Parses one WWW-Authenticate value of n bytes (no NUL needed): a
 * comma-separated list of challenges, each a scheme with a token68 or
 * auth-params (token or quoted-string values, backslash escapes, commas
 * inside quotes). Keeps the first Bearer challenge, else the first Basic.
 * S3D_E_PROTOCOL when malformed (control characters, unterminated quotes,
 * a parameter before any scheme, a repeated parameter, more than 32
 * parameters in one challenge) or when there is
 * neither a Bearer nor a Basic challenge; S3D_E_TOOBIG when n exceeds
 * S3D_REG_HEADER_MAX or a kept value does not fit its field. out is zeroed
 * first and filled only on S3D_OK.
 */
int s3d_reg_parse_challenge(const char *v, size_t n, s3d_reg_challenge *out);

/* A parsed presign answer. Caller owns it: init, then cleanup frees. */
typedef struct s3d_reg_presign {
	char *url;              /* single: presigned_url */
	s3d_kv *headers;        /* headers to send with every PUT (names as sent) */
	size_t nheaders;
	int64_t part_size;      /* multipart: part_size */
	int first_part;         /* multipart: URLs for first_part .. + nparts - 1 */
	int nparts;
	char **part_urls;       /* [nparts], part_urls[i] is part first_part + i */
} s3d_reg_presign;

void s3d_reg_presign_init(s3d_reg_presign *p);
void s3d_reg_presign_cleanup(s3d_reg_presign *p);

/*
 * The answer to GET <location>?presigned=true[&digest][&size]: an object
 * with presigned_url (absolute http(s) URL), method (absent or "PUT") and
 * headers (object of strings; names are HTTP tokens, values free of control
 * characters). S3D_E_PROTOCOL (err->message says why) otherwise; out is
 * cleaned on failure.
 */
int s3d_reg_parse_presign_single(const uint8_t *p, size_t n, s3d_reg_presign *out,
				 s3d_error *err);
/*
 * The answer to a parts request for first .. first + count - 1: part_size
 * (1 .. 5 GiB), parts (exactly those part numbers, each once, any order,
 * each with an absolute http(s) url), method and headers as above.
 */
int s3d_reg_parse_presign_parts(const uint8_t *p, size_t n, int first, int count,
				s3d_reg_presign *out, s3d_error *err);
/*
 * A token endpoint's answer: "token", else "access_token", a non-empty
 * string of visible ASCII (it goes into a header) of at most
 * S3D_REG_TOKEN_MAX bytes, into token (reset first).
 */
int s3d_reg_parse_token(const uint8_t *p, size_t n, s3d_buf *token, s3d_error *err);
/*
 * An OCI error body {"errors":[{"code","message","detail"}]}: the first
 * error's code and message (plus the S3 code, message and request id when
 * detail carries them, and "(+N more)") into err (truncated to fit,
 * control characters replaced). Leaves http_status and resource alone.
 * S3D_E_PROTOCOL (err untouched) when it is not such a body.
 */
int s3d_reg_parse_error(const uint8_t *p, size_t n, s3d_error *err);

/* One OCI descriptor. */
typedef struct s3d_reg_desc {
	char media_type[256];
	char digest[80];        /* "sha256:<64 lower-case hex>" */
	int64_t size;
	int is_manifest;        /* an image manifest or index media type */
	int foreign;            /* non-distributable layer (has urls, or a
				   foreign/nondistributable media type) */
} s3d_reg_desc;

/* A parsed manifest, image index or index.json. init/cleanup. */
typedef struct s3d_reg_manifest {
	char media_type[256];   /* the document's own mediaType ("" when absent) */
	int is_index;           /* manifests[]: image index, manifest list, index.json */
	s3d_reg_desc *descs;    /* index: its manifests; image: config, then layers */
	size_t ndescs;
} s3d_reg_manifest;

void s3d_reg_manifest_init(s3d_reg_manifest *m);
void s3d_reg_manifest_cleanup(s3d_reg_manifest *m);
/*
 * An OCI image manifest or index, a Docker schema 2 manifest or manifest
 * list, or an OCI layout's index.json. S3D_E_UNSUPPORTED for schema 1 and
 * for digests of another algorithm than sha256; S3D_E_PROTOCOL when
 * malformed (bad digest, negative size, wrong types, neither manifests nor
 * config); S3D_E_TOOBIG over S3D_REG_MAX_DESCS descriptors.
 */
int s3d_reg_parse_manifest(const uint8_t *p, size_t n, s3d_reg_manifest *out,
			   s3d_error *err);
/* The oci-layout file: {"imageLayoutVersion":"1.x.y"}. */
int s3d_reg_parse_oci_layout(const uint8_t *p, size_t n, s3d_error *err);
/*
 * An OCI image index for index.json's manifests (index.json with mediaType
 * and schemaVersion set), compact JSON into out.
 */
int s3d_reg_build_index(const uint8_t *p, size_t n, s3d_buf *out, s3d_error *err);

/* Media type of an image index or manifest list. */
int s3d_reg_is_index_type(const char *media_type);
/*
 * url with the query parameters q appended (after '?' or '&' as the URL
 * needs; values URL-encoded), through curl's URL API. base (may be NULL)
 * resolves a relative url. Only http and https URLs.
 */
int s3d_reg_url_append(const char *base, const char *url, const s3d_kv *q, size_t nq,
		       s3d_buf *out);
/*
 * OCI repository name grammar (at most 255 bytes) and tag grammar; a digest
 * is "sha256:<64 lower-case hex>". The repository and digest tests are the
 * registry side's (s3d_svc_check_repo, s3d_svc_parse_digest).
 */
int s3d_reg_valid_repo(const char *repo);
int s3d_reg_valid_tag(const char *tag);
int s3d_reg_valid_digest(const char *digest);
/*
 * "sha256:<hex>" of the whole file at fd (read with pread from offset 0 to
 * its end, in 1 MiB chunks) into digest (>= 72 bytes), its length into
 * *size. S3D_E_IO (errno kept) when a read fails, S3D_E_NOMEM, S3D_E_CRYPTO.
 */
int s3d_reg_digest_fd(int fd, char digest[80], int64_t *size);

/* ------------------------------------------------------------------------ */
/* HTTP                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct s3d_reg_config {
	const char *url;          /* http(s)://host[:port] of the registry */
	const char *user;         /* "user:password" or NULL (copied, wiped on close) */
	int skip_verify;          /* TLS: no peer/host verification */
	const char *ca_file;      /* TLS: CA bundle (NULL: the system's) */
	long connect_timeout_ms;  /* default 10000 */
	long low_speed_time_s;    /* abort a transfer under 1 KiB/s for this long; default 60 */
	int max_retries;          /* registry calls: transport errors and 502/503/504;
				     0: default 3; negative: none */
	long retry_base_ms;       /* registry calls: backoff base, doubled per attempt; default 500 */
} s3d_reg_config;

typedef struct s3d_reg s3d_reg;

int s3d_reg_open(const s3d_reg_config *cfg, s3d_reg **out, s3d_error *err);
void s3d_reg_close(s3d_reg *r);

/* POST /v2/<repo>/blobs/uploads/ (202): the absolute upload URL into location. */
int s3d_reg_start_upload(s3d_reg *r, const char *repo, s3d_buf *location, s3d_error *err);
/* GET <location>?presigned=true&digest=..&size=.. (digest may be NULL, size -1). */
int s3d_reg_presign_single(s3d_reg *r, const char *location, const char *digest,
			   int64_t size, s3d_reg_presign *out, s3d_error *err);
/* GET <location>?presigned=true&parts=count&first_part=first&size=..&digest=.. */
int s3d_reg_presign_parts(s3d_reg *r, const char *location, const char *digest,
			  int64_t size, int first, int count, s3d_reg_presign *out,
			  s3d_error *err);
/* PUT <location>?digest=.. (201); a Docker-Content-Digest answer must match. */
int s3d_reg_finalize(s3d_reg *r, const char *location, const char *digest, s3d_error *err);
/* HEAD /v2/<repo>/blobs/<digest>: *exists 1 (200) or 0 (404). */
int s3d_reg_blob_exists(s3d_reg *r, const char *repo, const char *digest, int *exists,
			s3d_error *err);
/*
 * PUT /v2/<repo>/manifests/<ref> with media_type as Content-Type (201).
 * digest_out (may be NULL, >= 80 bytes) receives Docker-Content-Digest.
 */
int s3d_reg_put_manifest(s3d_reg *r, const char *repo, const char *ref,
			 const char *media_type, const void *body, size_t len,
			 char *digest_out, s3d_error *err);
/*
 * The same for a body whose digest the caller computed already (digest:
 * "sha256:<hex>" of body, not computed again): a Docker-Content-Digest
 * answer must be digest.
 */
int s3d_reg_put_manifest_as(s3d_reg *r, const char *repo, const char *ref,
			    const char *media_type, const void *body, size_t len,
			    const char *digest, s3d_error *err);

/* Called from the upload loop, at most about five times a second. */
typedef void (*s3d_reg_progress_fn)(void *ud, int64_t sent, int64_t total);

typedef struct s3d_reg_push_opts {
	int64_t threshold;      /* one presigned PUT up to this size, parts above;
				   default 64 MiB, 5 MiB .. 5 GiB */
	int concurrency;        /* parts uploading at once; default 4, max 64 */
	int max_retries;        /* per part (and single PUT); 0: default 5; negative: none */
	int url_batch;          /* part URLs per presign call; default and max 1000 */
	long retry_base_ms;     /* backoff base, doubled per attempt; default 500 */
	s3d_reg_progress_fn progress;
	void *progress_ud;
	/* NULL, or a flag a signal handler sets (non-zero: stop). The upload
	   looks at it at least every 200 ms and between its registry calls. */
	volatile sig_atomic_t *stop;
} s3d_reg_push_opts;

/*
 * The whole presigned flow for size bytes of fd (read with pread, never
 * loaded whole) declared as digest: open a session in repo, presign, PUT to
 * S3 (one PUT up to opts->threshold, else parts in parallel with fresh URLs
 * after a 403 and retries with backoff), finalize (201). A failed session
 * is cancelled (best effort: one DELETE, no retries). opts may be NULL.
 * S3D_E_ABORTED when *opts->stop was set before the blob was finalized
 * (the session is cancelled then too).
 */
int s3d_reg_push_blob(s3d_reg *r, const char *repo, int fd, int64_t size,
		      const char *digest, const s3d_reg_push_opts *opts, s3d_error *err);

#endif
