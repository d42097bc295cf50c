/*
 * The registry's StorageDriver metadata operations on S3 (public API in
 * s3direct.h): configuration, path <-> key mapping, whole-object get/put,
 * Stat, List, Move (CopyObject or parallel UploadPartCopy), Delete, presigned
 * redirects and the Walk iterator. Semantics follow distribution's s3-aws
 * driver; where it differs on purpose, the function says why.
 */
#include "driver.h"

#include "buf.h"
#include "err.h"
#include "multipart.h"
#include "s3_client.h"
#include "s3_xml.h"
#include "upload.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((int64_t)1024 * 1024)
#define GIB (MIB * 1024)
#define DEFAULT_PART_SIZE (10u * 1024u * 1024u)
#define DEFAULT_PARTS_IN_FLIGHT 2
#define MAX_PARTS_IN_FLIGHT 64
#define DEFAULT_COPY_THRESHOLD (32 * MIB)
#define DEFAULT_COPY_PART_SIZE (32 * MIB)
#define MAX_COPY_SIZE (5 * GIB)
#define DEFAULT_COPY_CONCURRENCY 8
#define MAX_COPY_CONCURRENCY 64
#define DEFAULT_REDIRECT_EXPIRES 1200
#define KEY_MAX 1024
#define KEY_BUF_MAX (KEY_MAX + 8)
#define LIST_PAGE 1000
#define CONTENT_TYPE "application/octet-stream" /* what s3-aws stores */

/* Local failure: err cleared, then message and resource filled. */
static int fail(s3d_error *err, int rc, const char *what, const char *bucket,
		const char *key, const char *msg)
{
	if (!err)
		return rc;
	s3d_error_clear(err);
	/* a long key is cut: the resource only names the request */
	if (snprintf(err->resource, sizeof(err->resource), "%s %s/%s", what,
		     bucket ? bucket : "", key ? key : "") >= (int)sizeof(err->resource))
		err->resource[sizeof(err->resource) - 1] = 0;
	return s3d_err_set(err, rc, "%s", msg);
}

/* ---- configuration ---- */

static int copy_opt(char *dst, size_t cap, const char *src)
{
	if (!src || !*src) {
		dst[0] = 0;
		return S3D_OK;
	}
	return s3d_strlcpy(dst, cap, src, strlen(src));
}

static const char *opt_or_null(const char *s)
{
	return s[0] ? s : NULL;
}

/* Root without leading or trailing '/', stored with one trailing '/'. */
static int normalize_root(s3d_driver *d, const char *root)
{
	size_t n;

	if (!root)
		root = "";
	while (*root == '/')
		root++;
	n = strlen(root);
	while (n > 0 && root[n - 1] == '/')
		n--;
	if (n == 0) {
		d->root[0] = 0;
		return S3D_OK;
	}
	if (n + 2 > sizeof(d->root) || n + 1 > KEY_MAX)
		return S3D_E_TOOBIG;
	memcpy(d->root, root, n);
	d->root[n] = '/';
	d->root[n + 1] = 0;
	return S3D_OK;
}

static int check_numbers(s3d_driver_config *c, s3d_error *err)
{
	if (c->part_size == 0)
		c->part_size = DEFAULT_PART_SIZE;
	if (c->parts_in_flight == 0)
		c->parts_in_flight = DEFAULT_PARTS_IN_FLIGHT;

	if (c->copy_threshold == 0)
		c->copy_threshold = DEFAULT_COPY_THRESHOLD;
	if (c->copy_part_size == 0)
		c->copy_part_size = DEFAULT_COPY_PART_SIZE;
	if (c->copy_concurrency == 0)
		c->copy_concurrency = DEFAULT_COPY_CONCURRENCY;
	if (c->redirect_expires == 0)
		c->redirect_expires = DEFAULT_REDIRECT_EXPIRES;
	if (c->part_size < S3D_MIN_PART || c->part_size > S3D_MPU_MAX_PART)
		return s3d_err_set(err, S3D_E_INVAL, "part_size must be 5 MiB to 5 GiB");
	if (c->parts_in_flight < 1 || c->parts_in_flight > MAX_PARTS_IN_FLIGHT)
		return s3d_err_set(err, S3D_E_INVAL, "parts_in_flight must be 1 to %d",
				   MAX_PARTS_IN_FLIGHT);
	if (c->upload_memory == 0) /* what one writer needs at full overlap */
		c->upload_memory = (int64_t)c->parts_in_flight * (int64_t)c->part_size;
	if (c->copy_threshold < (int64_t)S3D_MIN_PART || c->copy_threshold > MAX_COPY_SIZE)
		return s3d_err_set(err, S3D_E_INVAL, "copy_threshold must be 5 MiB to 5 GiB");
	if (c->copy_part_size < (int64_t)S3D_MIN_PART || c->copy_part_size > MAX_COPY_SIZE)
		return s3d_err_set(err, S3D_E_INVAL, "copy_part_size must be 5 MiB to 5 GiB");
	if (c->copy_concurrency < 1 || c->copy_concurrency > MAX_COPY_CONCURRENCY)
		return s3d_err_set(err, S3D_E_INVAL, "copy_concurrency must be 1 to %d",
				   MAX_COPY_CONCURRENCY);
	if (c->redirect_expires < S3D_PRESIGN_MIN_EXPIRES ||
	    c->redirect_expires > S3D_PRESIGN_MAX_EXPIRES)
		return s3d_err_set(err, S3D_E_INVAL, "redirect_expires must be 1 to 604800");
	return S3D_OK;
}

/*
 * Options that apply to every object are kept; the per-object ones
 * (checksums, extra headers) and another content type than s3-aws's make no
 * sense driver-wide and are refused rather than silently dropped.
 */
static int copy_put_opts(s3d_driver *d, const s3d_put_opts *p, s3d_error *err)
{
	int rc;

	if (p->checksum_sha256 || p->checksum_algorithm || p->nheaders || p->headers)
		return s3d_err_set(err, S3D_E_INVAL,
				   "put options: checksums and extra headers are per object");
	if (p->content_type && *p->content_type && strcmp(p->content_type, CONTENT_TYPE) != 0)
		return s3d_err_set(err, S3D_E_INVAL, "put options: content type is " CONTENT_TYPE);
	rc = copy_opt(d->storage_class, sizeof(d->storage_class), p->storage_class);
	if (rc == S3D_OK)
		rc = copy_opt(d->acl, sizeof(d->acl), p->acl);
	if (rc == S3D_OK)
		rc = copy_opt(d->sse, sizeof(d->sse), p->sse);
	if (rc == S3D_OK)
		rc = copy_opt(d->sse_kms_key_id, sizeof(d->sse_kms_key_id), p->sse_kms_key_id);
	if (rc != S3D_OK)
		return s3d_err_set(err, rc, "put options: a value is too long");
	memset(&d->cfg.put, 0, sizeof(d->cfg.put));
	d->cfg.put.content_type = CONTENT_TYPE;
	d->cfg.put.storage_class = opt_or_null(d->storage_class);
	d->cfg.put.acl = opt_or_null(d->acl);
	d->cfg.put.sse = opt_or_null(d->sse);
	d->cfg.put.sse_kms_key_id = opt_or_null(d->sse_kms_key_id);
	return S3D_OK;
}

/* The bucket answers (one ListObjectsV2 key, nothing more). */
static int no_entry(void *ud, const s3d_list_entry *e)
{
	(void)ud;
	(void)e;
	return 1;
}

static int check_bucket(s3d_driver *d, s3d_error *err)
{
	s3d_list_opts o;
	s3d_error e;
	int rc;

	memset(&o, 0, sizeof(o));
	o.prefix = d->root;
	o.max_keys = 1;
	o.single_page = 1;
	s3d_error_clear(&e);
	rc = s3d_list_objects(d->client, d->bucket, &o, no_entry, NULL, &e);
	if (rc == S3D_OK)
		return S3D_OK;
	if (err)
		*err = e;
	if (rc == S3D_E_NOTFOUND && err)
		snprintf(err->message, sizeof(err->message), "bucket %.64s does not exist (%.64s)",
			 d->bucket, e.code[0] ? e.code : "404");
	return rc;
}

/*
 * A directory marker for the tails area, written before the first tail of
 * this process (best effort). On AWS
 * it is one empty object in the private area. Stores that map keys onto a
 * file system (versitygw's posix backend) remove a directory once its last
 * object is deleted, racing with a concurrent PUT into the same directory;
 * a marker object keeps the directory, as every writer shares it.
 */
void s3d_driver_mark_tails(s3d_driver *d)
{
	s3d_buf key;
	s3d_error e;

	if (__atomic_load_n(&d->tails_marked, __ATOMIC_ACQUIRE))
		return;
	s3d_buf_init(&key, 2048);
	if (s3d_buf_appendz(&key, d->root) == S3D_OK &&
	    s3d_buf_appendz(&key, S3D_DRIVER_TAIL_PREFIX) == S3D_OK &&
	    s3d_head_object(d->client, d->bucket, s3d_buf_str(&key), 0, NULL, &e) == S3D_E_NOTFOUND)
		s3d_put_object(d->client, d->bucket, s3d_buf_str(&key), NULL, 0,
			       s3d_driver_put_opts(d), NULL, &e);
	s3d_buf_cleanup(&key);
	__atomic_store_n(&d->tails_marked, 1, __ATOMIC_RELEASE);
}

int s3d_driver_new(const s3d_driver_config *cfg, s3d_driver **out, s3d_error *err)
{
	s3d_driver *d;
	int rc;

	if (!cfg || !out)
		return fail(err, S3D_E_INVAL, "NEW", NULL, NULL, "no configuration");
	*out = NULL;
	if (!cfg->bucket || !*cfg->bucket)
		return fail(err, S3D_E_INVAL, "NEW", NULL, NULL, "bucket is required");
	d = calloc(1, sizeof(*d));
	if (!d)
		return fail(err, S3D_E_NOMEM, "NEW", cfg->bucket, NULL, "out of memory");
	s3d_error_clear(err);
	d->cfg = *cfg;
	d->cfg.bucket = d->cfg.root = NULL;
	memset(&d->cfg.client, 0, sizeof(d->cfg.client)); /* strings live in the client */
	rc = s3d_strlcpy(d->bucket, sizeof(d->bucket), cfg->bucket, strlen(cfg->bucket));
	if (rc != S3D_OK)
		s3d_err_set(err, rc, "bucket name too long");
	if (rc == S3D_OK && (rc = normalize_root(d, cfg->root)) != S3D_OK)
		s3d_err_set(err, rc, "root directory too long");
	if (rc == S3D_OK)
		rc = check_numbers(&d->cfg, err);
	if (rc == S3D_OK)
		rc = copy_put_opts(d, &cfg->put, err);
	if (rc == S3D_OK && d->cfg.upload_memory > 0 &&
	    (rc = s3d_part_budget_new((size_t)d->cfg.upload_memory, &d->budget)) != S3D_OK)
		s3d_err_set(err, rc, "out of memory");
	if (rc == S3D_OK && (rc = s3d_client_new(&cfg->client, &d->client)) != S3D_OK)
		s3d_err_set(err, rc, "invalid S3 client configuration (endpoint, credentials)");
	if (rc == S3D_OK)
		rc = check_bucket(d, err);
	if (rc != S3D_OK) {
		s3d_driver_free(d);
		return rc;
	}
	*out = d;
	return S3D_OK;
}

void s3d_driver_free(s3d_driver *d)
{
	if (!d)
		return;
	s3d_client_free(d->client);
	s3d_part_budget_free(d->budget);
	free(d);
}

s3d_client *s3d_driver_client(s3d_driver *d)
{
	return d ? d->client : NULL;
}

const s3d_put_opts *s3d_driver_put_opts(const s3d_driver *d)
{
	return &d->cfg.put;
}

/* ---- paths and keys ---- */

int s3d_driver_key(const s3d_driver *d, const char *path, s3d_buf *out)
{
	int rc;

	if (!d || !path || path[0] != '/' || !out)
		return S3D_E_INVAL;
	s3d_buf_reset(out);
	rc = s3d_buf_appendz(out, d->root);
	if (rc == S3D_OK)
		rc = s3d_buf_appendz(out, path + 1);
	if (rc == S3D_OK && out->len > KEY_MAX)
		rc = S3D_E_TOOBIG;
	return rc;
}

int s3d_driver_path_of(const s3d_driver *d, const char *key, size_t keylen, s3d_buf *out)
{
	size_t rl = strlen(d->root);
	int rc;

	if (!key || keylen < rl || memcmp(key, d->root, rl) != 0 || !out)
		return S3D_E_INVAL;
	s3d_buf_reset(out);
	rc = s3d_buf_appendc(out, '/');
	if (rc == S3D_OK)
		rc = s3d_buf_append(out, key + rl, keylen - rl);
	return rc;
}

int s3d_driver_is_private(const s3d_driver *d, const char *key)
{
	size_t rl = strlen(d->root), pl = strlen(S3D_DRIVER_PRIVATE_DIR);

	if (strncmp(key, d->root, rl) != 0 || strncmp(key + rl, S3D_DRIVER_PRIVATE_DIR, pl) != 0)
		return 0;
	return key[rl + pl] == '/' || key[rl + pl] == 0;
}

/* Key of a path that names an object: never "/" (the root is no object). */
static int object_key(const s3d_driver *d, const char *path, s3d_buf *key, s3d_error *err,
		      const char *what)
{
	int rc;

	if (!path || path[0] != '/' || path[1] == 0)
		return fail(err, S3D_E_INVAL, what, d->bucket, path, "not an object path");
	rc = s3d_driver_key(d, path, key);
	if (rc != S3D_OK)
		return fail(err, rc, what, d->bucket, path, "key too long");
	return S3D_OK;
}

/* Key prefix of everything below path: key + "/", or the root for "/". */
static int dir_prefix(const s3d_driver *d, const char *path, s3d_buf *prefix)
{
	int rc = s3d_driver_key(d, path, prefix);

	if (rc == S3D_OK && path[1] != 0)
		rc = s3d_buf_appendc(prefix, '/');
	return rc;
}

static int set_buf(s3d_buf *b, const char *p, size_t n)
{
	s3d_buf_reset(b);
	return s3d_buf_append(b, p, n);
}

/* ---- whole objects ---- */

int s3d_driver_get_content(s3d_driver *d, const char *path, s3d_buf *out, s3d_error *err)
{
	s3d_buf key;
	s3d_req r;
	int rc;

	if (!d || !out)
		return fail(err, S3D_E_INVAL, "GET", NULL, path, "no driver or buffer");
	s3d_buf_init(&key, KEY_BUF_MAX);
	rc = object_key(d, path, &key, err, "GET");
	if (rc == S3D_OK) {
		/* the client collects into out, bounded by out->max (TOOBIG) */
		memset(&r, 0, sizeof(r));
		r.method = "GET";
		r.bucket = d->bucket;
		r.key = s3d_buf_str(&key);
		r.resp = out;
		r.retryable = 1;
		r.range_first = -1;
		r.range_last = -1;
		rc = s3d_client_perform(d->client, &r, NULL, err);
	}
	s3d_buf_cleanup(&key);
	return rc;
}

int s3d_driver_put_content(s3d_driver *d, const char *path, const void *data,
			   size_t len, s3d_error *err)
{
	s3d_buf key;
	int rc;

	if (!d || (!data && len))
		return fail(err, S3D_E_INVAL, "PUT", NULL, path, "no driver or data");
	s3d_buf_init(&key, KEY_BUF_MAX);
	rc = object_key(d, path, &key, err, "PUT");
	if (rc == S3D_OK)
		rc = s3d_put_object(d->client, d->bucket, s3d_buf_str(&key), data, len,
				    s3d_driver_put_opts(d), NULL, err);
	s3d_buf_cleanup(&key);
	return rc;
}

/* ---- stat ---- */

static int any_entry(void *ud, const s3d_list_entry *e)
{
	(void)e;
	*(int *)ud = 1;
	return 1;
}

/* 1 when anything lies below prefix (one ListObjectsV2 key). */
static int has_children(s3d_driver *d, const char *prefix, int *found, s3d_error *err)
{
	s3d_list_opts o;

	memset(&o, 0, sizeof(o));
	o.prefix = prefix;
	o.max_keys = 1;
	o.single_page = 1;
	*found = 0;
	return s3d_list_objects(d->client, d->bucket, &o, any_entry, found, err);
}

/*
 * HEAD first, then one key below key + "/": s3-aws lists prefix=key with
 * max-keys=1, which a sibling such as "key-x" (sorting before "key/") turns
 * into a false "file" answer.
 */
int s3d_driver_stat(s3d_driver *d, const char *path, s3d_stat *out, s3d_error *err)
{
	s3d_obj_info info;
	s3d_buf key;
	int rc, found = 0;

	if (!d || !out || !path || path[0] != '/')
		return fail(err, S3D_E_INVAL, "STAT", NULL, path, "invalid arguments");
	memset(out, 0, sizeof(*out));
	if (path[1] == 0) {
		out->is_dir = 1;
		return S3D_OK;
	}
	s3d_buf_init(&key, KEY_BUF_MAX);
	rc = object_key(d, path, &key, err, "STAT");
	if (rc == S3D_OK && s3d_driver_is_private(d, s3d_buf_str(&key)))
		rc = fail(err, S3D_E_NOTFOUND, "STAT", d->bucket, s3d_buf_str(&key), "private path");
	if (rc == S3D_OK) {
		rc = s3d_head_object(d->client, d->bucket, s3d_buf_str(&key), 0, &info, err);
		if (rc == S3D_OK) {
			out->size = info.size < 0 ? 0 : info.size;
			out->mod_time = info.last_modified;
		}
	}
	if (rc == S3D_E_NOTFOUND && !s3d_driver_is_private(d, s3d_buf_str(&key))) {
		rc = s3d_buf_appendc(&key, '/');
		if (rc == S3D_OK)
			rc = has_children(d, s3d_buf_str(&key), &found, err);
		if (rc == S3D_OK && found)
			out->is_dir = 1;
		else if (rc == S3D_OK)
			rc = fail(err, S3D_E_NOTFOUND, "STAT", d->bucket, s3d_buf_str(&key),
				  "no such file or directory");
	}
	s3d_buf_cleanup(&key);
	return rc;
}

/* ---- list ---- */

struct list_ctx {
	s3d_driver *d;
	const char *prefix;
	s3d_buf *out;
	s3d_buf path;
	size_t count;
	int rc;
};

static int list_one(void *ud, const s3d_list_entry *e)
{
	struct list_ctx *l = ud;
	size_t n = strlen(e->key);

	if (s3d_driver_is_private(l->d, e->key))
		return 0;
	if (e->kind == S3D_ENTRY_PREFIX && n > 0 && e->key[n - 1] == '/')
		n--;
	/* a "directory marker" object named like the prefix itself is no child */
	if (n <= strlen(l->prefix))
		return 0;
	l->rc = s3d_driver_path_of(l->d, e->key, n, &l->path);
	if (l->rc == S3D_OK)
		l->rc = s3d_buf_append(l->out, l->path.ptr, l->path.len + 1); /* with its NUL */
	if (l->rc != S3D_OK)
		return 1;
	l->count++;
	return 0;
}

int s3d_driver_list(s3d_driver *d, const char *path, s3d_buf *out, size_t *count,
		    s3d_error *err)
{
	struct list_ctx l;
	s3d_list_opts o;
	s3d_buf prefix;
	int rc;

	if (!d || !out || !count || !path || path[0] != '/')
		return fail(err, S3D_E_INVAL, "LIST", NULL, path, "invalid arguments");
	*count = 0;
	s3d_buf_reset(out);
	s3d_buf_init(&prefix, KEY_BUF_MAX);
	memset(&l, 0, sizeof(l));
	l.d = d;
	l.out = out;
	s3d_buf_init(&l.path, KEY_BUF_MAX + 1);
	rc = dir_prefix(d, path, &prefix);
	if (rc != S3D_OK)
		rc = fail(err, rc, "LIST", d->bucket, path, "key too long");
	else if (s3d_driver_is_private(d, s3d_buf_str(&prefix)))
		rc = fail(err, S3D_E_NOTFOUND, "LIST", d->bucket, s3d_buf_str(&prefix),
			  "private path");
	if (rc == S3D_OK) {
		l.prefix = s3d_buf_str(&prefix);
		memset(&o, 0, sizeof(o));
		o.prefix = l.prefix;
		o.delimiter = "/";
		o.max_keys = LIST_PAGE;
		rc = s3d_list_objects(d->client, d->bucket, &o, list_one, &l, err);
		if (rc == S3D_OK && l.rc != S3D_OK)
			rc = fail(err, l.rc, "LIST", d->bucket, l.prefix,
				  l.rc == S3D_E_TOOBIG ? "listing over the buffer's limit"
						       : "cannot collect the listing");
	}
	if (rc == S3D_OK && l.count == 0 && path[1] != 0)
		rc = fail(err, S3D_E_NOTFOUND, "LIST", d->bucket, l.prefix, "no such directory");
	if (rc == S3D_OK)
		*count = l.count;
	else
		s3d_buf_reset(out);
	s3d_buf_cleanup(&prefix);
	s3d_buf_cleanup(&l.path);
	return rc;
}

/* ---- move ---- */

struct copy_job {
	s3d_driver *d;
	const char *src, *dst, *upload_id;
	int64_t size, part_size;
	s3d_part *parts;
	int nparts;
	int next;               /* next part index to copy */
	int rc;                 /* first failure */
	s3d_error err;
	pthread_mutex_t lock;
};

static void *copy_worker(void *arg)
{
	struct copy_job *j = arg;
	s3d_error e;
	int64_t first, last;
	int i, rc;

	for (;;) {
		pthread_mutex_lock(&j->lock);
		i = j->rc == S3D_OK && j->next < j->nparts ? j->next++ : -1;
		pthread_mutex_unlock(&j->lock);
		if (i < 0)
			break;
		first = (int64_t)i * j->part_size;
		last = first + j->part_size - 1;
		if (last >= j->size)
			last = j->size - 1;
		s3d_error_clear(&e);
		rc = s3d_upload_part_copy(j->d->client, j->d->bucket, j->dst, j->upload_id, i + 1,
					  j->d->bucket, j->src, first, last, &j->parts[i], &e);
		if (rc == S3D_OK && !j->parts[i].etag[0])
			rc = s3d_err_set(&e, S3D_E_PROTOCOL, "UploadPartCopy answer without an ETag");
		if (rc != S3D_OK) {
			pthread_mutex_lock(&j->lock);
			if (j->rc == S3D_OK) {
				j->rc = rc;
				j->err = e;
			}
			pthread_mutex_unlock(&j->lock);
			break;
		}
	}
	return NULL;
}

/* Runs the part copies on up to copy_concurrency threads. */
static int copy_parts(struct copy_job *j, s3d_error *err)
{
	pthread_t th[MAX_COPY_CONCURRENCY];
	int n = j->d->cfg.copy_concurrency < j->nparts ? j->d->cfg.copy_concurrency : j->nparts;
	int started = 0, i;

	for (i = 0; i < n; i++) {
		if (pthread_create(&th[i], NULL, copy_worker, j) != 0)
			break;
		started++;
	}
	if (started == 0)
		copy_worker(j); /* no thread to be had: copy in this one */
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (j->rc != S3D_OK && err)
		*err = j->err;
	return j->rc;
}

static int multipart_copy(s3d_driver *d, const char *src, const char *dst, int64_t size,
			  s3d_error *err)
{
	struct copy_job j;
	s3d_buf upload_id;
	s3d_error e;
	int rc;

	memset(&j, 0, sizeof(j));
	j.d = d;
	j.src = src;
	j.dst = dst;
	j.size = size;
	/* parts grow past copy_part_size only where 10,000 would not cover it */
	j.part_size = d->cfg.copy_part_size;
	if ((size + j.part_size - 1) / j.part_size > S3D_MPU_MAX_PARTS)
		j.part_size = (size + S3D_MPU_MAX_PARTS - 1) / S3D_MPU_MAX_PARTS;
	if (j.part_size > MAX_COPY_SIZE)
		return fail(err, S3D_E_TOOBIG, "MOVE", d->bucket, src, "object too large to copy");
	j.nparts = (int)((size + j.part_size - 1) / j.part_size);
	j.parts = calloc((size_t)j.nparts, sizeof(*j.parts));
	if (!j.parts)
		return fail(err, S3D_E_NOMEM, "MOVE", d->bucket, src, "out of memory");
	if (pthread_mutex_init(&j.lock, NULL) != 0) {
		free(j.parts);
		return fail(err, S3D_E_NOMEM, "MOVE", d->bucket, src, "cannot create a lock");
	}
	s3d_buf_init(&upload_id, 4096);
	rc = s3d_create_multipart(d->client, d->bucket, dst, s3d_driver_put_opts(d), &upload_id, err);
	if (rc == S3D_OK) {
		j.upload_id = s3d_buf_str(&upload_id);
		rc = copy_parts(&j, err);
		if (rc == S3D_OK)
			rc = s3d_complete_multipart(d->client, d->bucket, dst, j.upload_id, j.parts,
						    (size_t)j.nparts, NULL, err);
		if (rc != S3D_OK) {
			s3d_error_clear(&e); /* the copy's error is the one to report */
			s3d_abort_multipart(d->client, d->bucket, dst, j.upload_id, &e);
		}
	}
	pthread_mutex_destroy(&j.lock);
	s3d_buf_cleanup(&upload_id);
	free(j.parts);
	return rc;
}

int s3d_driver_copy_key(s3d_driver *d, const char *src, const char *dst, int64_t size,
			s3d_error *err)
{
	if (!d || !src || !dst || size < 0)
		return s3d_err_set(err, S3D_E_INVAL, "missing argument");
	if (size <= d->cfg.copy_threshold)
		return s3d_copy_object(d->client, d->bucket, src, d->bucket, dst,
				       s3d_driver_put_opts(d), NULL, err);
	return multipart_copy(d, src, dst, size, err);
}

/*
 * Copy then delete the source object. s3-aws deletes the source with its
 * recursive Delete (also removing src + "/..."); only the moved object goes
 * here. A move onto itself is a no-op (copy-then-delete would lose it).
 */
int s3d_driver_move(s3d_driver *d, const char *src, const char *dst, s3d_error *err)
{
	s3d_buf skey, dkey;
	s3d_obj_info info;
	int rc;

	if (!d)
		return fail(err, S3D_E_INVAL, "MOVE", NULL, src, "no driver");
	s3d_buf_init(&skey, KEY_BUF_MAX);
	s3d_buf_init(&dkey, KEY_BUF_MAX);
	rc = object_key(d, src, &skey, err, "MOVE");
	if (rc == S3D_OK)
		rc = object_key(d, dst, &dkey, err, "MOVE");
	if (rc == S3D_OK && (s3d_driver_is_private(d, s3d_buf_str(&skey)) ||
			     s3d_driver_is_private(d, s3d_buf_str(&dkey))))
		rc = fail(err, S3D_E_INVAL, "MOVE", d->bucket, s3d_buf_str(&skey), "private path");
	if (rc == S3D_OK)
		rc = s3d_head_object(d->client, d->bucket, s3d_buf_str(&skey), 0, &info, err);
	if (rc == S3D_OK && strcmp(s3d_buf_str(&skey), s3d_buf_str(&dkey)) == 0)
		goto out;
	if (rc == S3D_OK && info.size < 0)
		rc = fail(err, S3D_E_PROTOCOL, "MOVE", d->bucket, s3d_buf_str(&skey),
			  "HEAD answer without a size");
	if (rc == S3D_OK)
		rc = s3d_driver_copy_key(d, s3d_buf_str(&skey), s3d_buf_str(&dkey), info.size, err);
	if (rc == S3D_OK)
		rc = s3d_delete_object(d->client, d->bucket, s3d_buf_str(&skey), err);
out:
	s3d_buf_cleanup(&skey);
	s3d_buf_cleanup(&dkey);
	return rc;
}

/* ---- delete ---- */

#define ABORT_ROUND 1000        /* uploads listed, then aborted, per round */
#define ABORT_ROUNDS_MAX 10000

struct del_page {
	s3d_driver *d;
	s3d_buf keys;           /* NUL-separated copies */
	size_t n;
	s3d_buf last;           /* last key listed (private ones included) */
	const char *exact;      /* NULL: every key but private ones; else only */
	const char *under;      /* exact and keys starting with under */
	int tails;              /* the keys are tails (see del_tail_uploads) */
	int rc;
};

static int del_collect(void *ud, const s3d_list_entry *e)
{
	struct del_page *p = ud;

	if (e->kind != S3D_ENTRY_OBJECT)
		return 0;
	s3d_buf_reset(&p->last);
	p->rc = s3d_buf_appendz(&p->last, e->key);
	if (p->rc != S3D_OK)
		return 1;
	if (p->exact ? strcmp(e->key, p->exact) != 0 &&
			       strncmp(e->key, p->under, strlen(p->under)) != 0
		     : s3d_driver_is_private(p->d, e->key))
		return 0;
	p->rc = s3d_buf_append(&p->keys, e->key, strlen(e->key) + 1);
	if (p->rc != S3D_OK)
		return 1;
	p->n++;
	return 0;
}

/* Deletes the n keys collected in p (pointers built once the buffer is final). */
static int del_batch(s3d_driver *d, struct del_page *p, s3d_error *err)
{
	const char **keys;
	const char *k = (const char *)p->keys.ptr;
	size_t i;
	int rc;

	if (p->n == 0)
		return S3D_OK;
	keys = calloc(p->n, sizeof(*keys));
	if (!keys)
		return fail(err, S3D_E_NOMEM, "DELETE", d->bucket, NULL, "out of memory");
	for (i = 0; i < p->n; i++) {
		keys[i] = k;
		k += strlen(k) + 1;
	}
	rc = s3d_delete_objects(d->client, d->bucket, keys, p->n, err);
	free(keys);
	return rc;
}

static int del_tail_uploads(s3d_driver *d, const struct del_page *p, s3d_error *err);

/*
 * Lists prefix page by page and deletes what p collects of each page, with
 * the keys p already holds in the first batch; *total counts the deleted.
 * Pages resume with start-after = the last key seen (as s3-aws does):
 * deleting under a continuation token is not something every server keeps
 * stable.
 */
static int del_listed(s3d_driver *d, struct del_page *p, const char *prefix, size_t *total,
		      s3d_error *err)
{
	s3d_list_opts o;
	s3d_buf token, after;
	long pages = 0;
	int rc = S3D_OK, more = 1;

	s3d_buf_init(&token, 8192);
	s3d_buf_init(&after, KEY_BUF_MAX);
	while (rc == S3D_OK && more && pages++ < 10000000L) {
		memset(&o, 0, sizeof(o));
		o.prefix = prefix;
		o.start_after = after.len ? s3d_buf_str(&after) : NULL;
		o.max_keys = LIST_PAGE;
		o.single_page = 1;
		o.continuation = &token;
		s3d_buf_reset(&token);
		p->rc = S3D_OK;
		s3d_buf_reset(&p->last);
		rc = s3d_list_objects(d->client, d->bucket, &o, del_collect, p, err);
		if (rc == S3D_OK && p->rc != S3D_OK)
			rc = fail(err, p->rc, "DELETE", d->bucket, prefix, "cannot collect keys");
		/* the next page starts after the last key listed */
		more = token.len > 0 && p->last.len > 0;
		if (rc == S3D_OK && more)
			rc = set_buf(&after, (const char *)p->last.ptr, p->last.len);
		if (rc == S3D_OK && p->tails)
			rc = del_tail_uploads(d, p, err);
		if (rc == S3D_OK)
			rc = del_batch(d, p, err);
		if (rc == S3D_OK)
			*total += p->n;
		p->n = 0;
		s3d_buf_reset(&p->keys);
	}
	s3d_buf_cleanup(&token);
	s3d_buf_cleanup(&after);
	return rc;
}

/* 1 when tail (a key from s3d_upload_tail_key) is a hash of its path's key. */
static int tail_is_hashed(const s3d_driver *d, const char *tail)
{
	size_t rl = strlen(d->root);

	return strncmp(tail + rl, S3D_UPLOAD_TAIL_HASHED_PREFIX,
		       strlen(S3D_UPLOAD_TAIL_HASHED_PREFIX)) == 0;
}

/* A tail whose key is a hash (s3d_upload_tail_key): no directory lists it. */
static int del_hashed_tail(s3d_driver *d, const char *key, s3d_buf *tail, s3d_error *err)
{
	int rc = s3d_upload_tail_key(d, key, tail);

	if (rc != S3D_OK)
		return fail(err, rc, "DELETE", d->bucket, key, "tail key");
	if (!tail_is_hashed(d, s3d_buf_str(tail)))
		return S3D_OK;
	rc = s3d_delete_object(d->client, d->bucket, s3d_buf_str(tail), err);
	return rc == S3D_E_NOTFOUND ? S3D_OK : rc;
}

struct del_uploads {
	const char *key;
	size_t klen;
	int exact;              /* only uploads of key itself */
	s3d_buf pairs;          /* "key\0upload-id\0" per upload */
	size_t n;
	int rc;
};

static int del_upload_collect(void *ud, const s3d_list_entry *e)
{
	struct del_uploads *u = ud;

	if (e->kind != S3D_ENTRY_UPLOAD || !e->key || !e->upload_id || !*e->upload_id ||
	    strncmp(e->key, u->key, u->klen) != 0 ||
	    (e->key[u->klen] && (u->exact || e->key[u->klen] != '/')))
		return 0;
	u->rc = s3d_buf_append(&u->pairs, e->key, strlen(e->key) + 1);
	if (u->rc == S3D_OK)
		u->rc = s3d_buf_append(&u->pairs, e->upload_id, strlen(e->upload_id) + 1);
	if (u->rc != S3D_OK)
		return 1;
	return ++u->n >= ABORT_ROUND;
}

/*
 * Aborts every multipart upload of key (exact) or also of every key below
 * key + "/" (a writer's parts that no later open will find once its
 * directory is gone), with the tails of those whose tail key is hashed.
 * Rounds of ABORT_ROUND: an aborted upload is no longer listed, so each
 * round lists from the start; a round that aborts nothing ends it (a server
 * that still lists what it no longer has). Every abort is tried; the first
 * failure is reported.
 */
static int del_uploads(s3d_driver *d, const char *key, int exact, s3d_error *err)
{
	struct del_uploads u;
	s3d_list_opts o;
	s3d_buf tail;
	s3d_error e;
	const char *k, *id;
	size_t i, aborted;
	long rounds = 0;
	int rc = S3D_OK, arc;

	memset(&u, 0, sizeof(u));
	u.key = key;
	u.klen = strlen(key);
	u.exact = exact;
	s3d_buf_init(&u.pairs, (size_t)ABORT_ROUND * (KEY_MAX + 4096 + 2));
	s3d_buf_init(&tail, KEY_BUF_MAX + 80);
	do {
		u.n = 0;
		u.rc = S3D_OK;
		aborted = 0;
		s3d_buf_reset(&u.pairs);
		memset(&o, 0, sizeof(o));
		o.prefix = key;
		rc = s3d_list_multipart_uploads(d->client, d->bucket, &o, del_upload_collect, &u, err);
		if (rc == S3D_OK && u.rc != S3D_OK)
			rc = fail(err, u.rc, "DELETE", d->bucket, key, "cannot collect uploads");
		k = (const char *)u.pairs.ptr;
		for (i = 0; rc == S3D_OK && i < u.n; i++) {
			id = k + strlen(k) + 1;
			s3d_error_clear(&e);
			arc = s3d_abort_multipart(d->client, d->bucket, k, id, &e);
			aborted += arc == S3D_OK;
			if (arc == S3D_OK || arc == S3D_E_NOTFOUND)
				arc = del_hashed_tail(d, k, &tail, &e);
			if (arc != S3D_OK && u.rc == S3D_OK) {
				u.rc = arc; /* the first failure; the others are still tried */
				if (err)
					*err = e;
			}
			k = id + strlen(id) + 1;
		}
		if (rc == S3D_OK)
			rc = u.rc;
	} while (rc == S3D_OK && u.n >= ABORT_ROUND && aborted > 0 &&
		 ++rounds < ABORT_ROUNDS_MAX);
	s3d_buf_cleanup(&u.pairs);
	s3d_buf_cleanup(&tail);
	return rc;
}

/*
 * Before a page of tails is deleted: the uploads of each tail's key, by
 * exact name. MinIO's ListMultipartUploads matches a prefix only when it is
 * a whole key, so the listing of a directory (del_uploads) finds nothing
 * there; a tail names its key. Done before the tails go, so that a Delete
 * that fails here can be retried and still find them. (An upload whose
 * bytes end on a part boundary has no tail: on such a server it is left to
 * the server's own expiry of stale uploads.) Every key is tried; the first
 * failure is reported.
 */
static int del_tail_uploads(s3d_driver *d, const struct del_page *p, s3d_error *err)
{
	size_t tl = strlen(d->root) + strlen(S3D_DRIVER_TAIL_PREFIX), i, j;
	const char *t = (const char *)p->keys.ptr;
	s3d_buf k;
	s3d_error e;
	int rc = S3D_OK, trc;

	s3d_buf_init(&k, KEY_BUF_MAX);
	for (i = 0; i < p->n; i++, t += strlen(t) + 1) {
		if (strlen(t) <= tl || strncmp(t + tl - strlen(S3D_DRIVER_TAIL_PREFIX),
					       S3D_DRIVER_TAIL_PREFIX, strlen(S3D_DRIVER_TAIL_PREFIX)) != 0)
			continue; /* not a mirrored tail */
		s3d_buf_reset(&k);
		s3d_error_clear(&e);
		trc = s3d_buf_printf(&k, "%s%s", d->root, t + tl);
		for (j = k.len - strlen(t + tl); trc == S3D_OK && j < k.len; j++)
			if (k.ptr[j] == S3D_UPLOAD_TAIL_SEP)
				k.ptr[j] = '/';
		if (trc != S3D_OK)
			trc = fail(&e, trc, "DELETE", d->bucket, t, "key too long");
		else
			trc = del_uploads(d, s3d_buf_str(&k), 1, &e);
		if (trc != S3D_OK && rc == S3D_OK) {
			rc = trc;
			if (err)
				*err = e;
		}
	}
	s3d_buf_cleanup(&k);
	return rc;
}

/*
 * The tails of key and of every key below key + "/" (s3d_upload_tail_key
 * puts them below one prefix; a hashed tail of key itself is deleted by
 * name).
 */
static int del_tails(s3d_driver *d, const char *key, s3d_error *err)
{
	struct del_page p;
	s3d_buf tail, under;
	size_t total = 0;
	int rc;

	memset(&p, 0, sizeof(p));
	p.d = d;
	p.tails = 1;
	s3d_buf_init(&tail, KEY_BUF_MAX + 80);
	s3d_buf_init(&under, KEY_BUF_MAX + 80);
	s3d_buf_init(&p.keys, (size_t)(S3D_XML_MAX_ENTRIES + 1) * (KEY_MAX + 1));
	s3d_buf_init(&p.last, KEY_BUF_MAX);
	rc = del_hashed_tail(d, key, &tail, err);
	/* below a key too long for a mirrored tail, every tail is hashed */
	if (rc == S3D_OK && !tail_is_hashed(d, s3d_buf_str(&tail))) {
		rc = s3d_buf_printf(&under, "%s%c", s3d_buf_str(&tail), S3D_UPLOAD_TAIL_SEP);
		if (rc != S3D_OK) {
			rc = fail(err, rc, "DELETE", d->bucket, key, "tail key too long");
		} else {
			p.exact = s3d_buf_str(&tail);
			p.under = s3d_buf_str(&under);
			rc = del_listed(d, &p, p.exact, &total, err);
		}
	}
	s3d_buf_cleanup(&tail);
	s3d_buf_cleanup(&under);
	s3d_buf_cleanup(&p.keys);
	s3d_buf_cleanup(&p.last);
	return rc;
}

/* One side of the clean-up of unfinished uploads, on its own thread. */
struct del_job {
	s3d_driver *d;
	const char *key;
	int (*fn)(s3d_driver *d, const char *key, s3d_error *err);
	int threaded;
	pthread_t thread;
	int rc;
	s3d_error err;
};

static int del_uploads_below(s3d_driver *d, const char *key, s3d_error *err)
{
	return del_uploads(d, key, 0, err);
}

static void *del_job_run(void *ud)
{
	struct del_job *j = ud;

	j->rc = j->fn(j->d, j->key, &j->err);
	return NULL;
}

/* Starts fn on a thread; inline when no thread can be had. */
static void del_job_start(struct del_job *j, s3d_driver *d, const char *key,
			  int (*fn)(s3d_driver *, const char *, s3d_error *))
{
	memset(j, 0, sizeof(*j));
	j->d = d;
	j->key = key;
	j->fn = fn;
	s3d_error_clear(&j->err);
	j->threaded = pthread_create(&j->thread, NULL, del_job_run, j) == 0;
	if (!j->threaded)
		del_job_run(j);
}

/* Waits for j; its failure becomes rc's when rc is S3D_OK. */
static int del_job_wait(struct del_job *j, int rc, s3d_error *err)
{
	if (j->threaded)
		pthread_join(j->thread, NULL);
	if (j->rc != S3D_OK && rc == S3D_OK) {
		rc = j->rc;
		if (err)
			*err = j->err;
	}
	return rc;
}

/*
 * The object at path and every key below path + "/". Private keys are never
 * deleted by name here, nor is "/". What writers left of unfinished uploads
 * of those paths goes first (their multipart uploads and tail objects, which
 * no listing of the directory shows), so that a Delete of an upload's
 * directory, as the stock upload purger does, leaves nothing behind. They
 * run on two threads beside the HEAD of the object; a failure there fails
 * the Delete before any object of the path is gone.
 */
int s3d_driver_delete(s3d_driver *d, const char *path, s3d_error *err)
{
	struct del_job uploads, tails;
	struct del_page p;
	s3d_buf key, prefix;
	size_t total = 0;
	int rc;

	if (!d)
		return fail(err, S3D_E_INVAL, "DELETE", NULL, path, "no driver");
	s3d_buf_init(&key, KEY_BUF_MAX);
	s3d_buf_init(&prefix, KEY_BUF_MAX);
	memset(&p, 0, sizeof(p));
	p.d = d;
	s3d_buf_init(&p.keys, (size_t)(S3D_XML_MAX_ENTRIES + 1) * (KEY_MAX + 1));
	s3d_buf_init(&p.last, KEY_BUF_MAX);
	rc = object_key(d, path, &key, err, "DELETE");
	if (rc == S3D_OK && s3d_driver_is_private(d, s3d_buf_str(&key)))
		rc = fail(err, S3D_E_NOTFOUND, "DELETE", d->bucket, s3d_buf_str(&key), "private path");
	if (rc == S3D_OK && (rc = dir_prefix(d, path, &prefix)) != S3D_OK)
		rc = fail(err, rc, "DELETE", d->bucket, path, "key too long");
	if (rc == S3D_OK) {
		/* the uploads, the tails and the HEAD of the object side by side */
		del_job_start(&uploads, d, s3d_buf_str(&key), del_uploads_below);
		del_job_start(&tails, d, s3d_buf_str(&key), del_tails);
		rc = s3d_head_object(d->client, d->bucket, s3d_buf_str(&key), 0, NULL, err);
		if (rc == S3D_OK)
			rc = s3d_buf_append(&p.keys, key.ptr, key.len + 1);
		if (rc == S3D_OK)
			p.n = 1;
		else if (rc == S3D_E_NOTFOUND)
			rc = S3D_OK;
		rc = del_job_wait(&uploads, rc, err);
		rc = del_job_wait(&tails, rc, err);
	}
	if (rc == S3D_OK)
		rc = del_listed(d, &p, s3d_buf_str(&prefix), &total, err);
	if (rc == S3D_OK && total == 0)
		rc = fail(err, S3D_E_NOTFOUND, "DELETE", d->bucket, s3d_buf_str(&key), "no such path");
	s3d_buf_cleanup(&key);
	s3d_buf_cleanup(&prefix);
	s3d_buf_cleanup(&p.keys);
	s3d_buf_cleanup(&p.last);
	return rc;
}

/* ---- redirect ---- */

/* GET and HEAD only; any other method gets no URL (url empty, S3D_OK), as
 * s3-aws answers "" for them. */
int s3d_driver_redirect_url(s3d_driver *d, const char *method, const char *path,
			    s3d_buf *url, s3d_error *err)
{
	s3d_buf key;
	int rc;

	if (!d || !method || !url)
		return fail(err, S3D_E_INVAL, "PRESIGN", NULL, path, "invalid arguments");
	s3d_buf_reset(url);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return S3D_OK;
	s3d_buf_init(&key, KEY_BUF_MAX);
	rc = object_key(d, path, &key, err, "PRESIGN");
	if (rc == S3D_OK) {
		rc = s3d_client_presign(d->client, method, d->bucket, s3d_buf_str(&key), NULL, 0,
					0, d->cfg.redirect_expires, url);
		if (rc != S3D_OK)
			fail(err, rc, "PRESIGN", d->bucket, s3d_buf_str(&key), "cannot presign");
	}
	s3d_buf_cleanup(&key);
	return rc;
}

/* ---- walk ---- */

struct wobj {
	size_t key_off;         /* into keys */
	int64_t size;
	int64_t mod_time;
};

struct s3d_walker {
	s3d_driver *d;
	s3d_buf prefix;         /* key prefix listed */
	s3d_buf from;           /* walked path plus '/' ("/" for the root) */
	s3d_buf after;          /* start_after path ("" = none) */
	s3d_buf list_after;     /* start-after of the next listing (re)start */
	s3d_buf token;          /* continuation of the current listing */
	s3d_buf keys;           /* keys of the current page, NUL-separated */
	struct wobj *objs;
	size_t nobjs, capobjs, pos;
	int more;               /* a next page exists */
	int fetched;            /* the first page was asked for */
	int rc;                 /* page collection failure */
	s3d_buf cur_dir;        /* directory of the previous object */
	s3d_buf skip;           /* skipped directory ("" = none) */
	s3d_buf obj;            /* path of the object being expanded */
	size_t obj_pos;         /* where the next component starts in obj */
	int64_t obj_size, obj_mtime;
	int obj_active;
	s3d_buf out;            /* the path returned by next */
};

static int walk_collect(void *ud, const s3d_list_entry *e)
{
	s3d_walker *w = ud;
	struct wobj *o;

	if (e->kind != S3D_ENTRY_OBJECT)
		return 0;
	if (w->nobjs == w->capobjs) {
		size_t ncap = w->capobjs ? w->capobjs * 2 : 64;

		if (ncap > S3D_XML_MAX_ENTRIES) {
			w->rc = S3D_E_TOOBIG;
			return 1;
		}
		o = realloc(w->objs, ncap * sizeof(*o));
		if (!o) {
			w->rc = S3D_E_NOMEM;
			return 1;
		}
		w->objs = o;
		w->capobjs = ncap;
	}
	o = &w->objs[w->nobjs];
	o->key_off = w->keys.len;
	o->size = e->size;
	o->mod_time = e->last_modified;
	w->rc = s3d_buf_append(&w->keys, e->key, strlen(e->key) + 1);
	if (w->rc != S3D_OK)
		return 1;
	w->nobjs++;
	return 0;
}

static const char *wkey(const s3d_walker *w, size_t i)
{
	return (const char *)w->keys.ptr + w->objs[i].key_off;
}

/* 1 when path lies below dir (dir's own entry excluded). */
static int below(const char *path, const char *dir, size_t dlen)
{
	return dlen && strncmp(path, dir, dlen) == 0 && path[dlen] == '/';
}

/*
 * Where the next listing should start instead of continuing: after the
 * skipped directory or the private area when the page ended inside it, so
 * that a skipped subtree costs no further pages.
 */
static int walk_jump(s3d_walker *w, const char *last_key, s3d_buf *to)
{
	s3d_buf path;
	int rc = S3D_OK;

	s3d_buf_reset(to);
	if (s3d_driver_is_private(w->d, last_key)) {
		rc = s3d_buf_printf(to, "%s%s0", w->d->root, S3D_DRIVER_PRIVATE_DIR);
	} else if (w->skip.len) {
		s3d_buf_init(&path, KEY_BUF_MAX + 1);
		rc = s3d_driver_path_of(w->d, last_key, strlen(last_key), &path);
		if (rc == S3D_OK && below(s3d_buf_str(&path), s3d_buf_str(&w->skip), w->skip.len)) {
			/* '0' follows '/': dir + "0" sorts after every key below dir */
			rc = s3d_driver_key(w->d, s3d_buf_str(&w->skip), to);
			if (rc == S3D_OK)
				rc = s3d_buf_appendc(to, '0');
		}
		s3d_buf_cleanup(&path);
	}
	return rc;
}

static int walk_fetch(s3d_walker *w, s3d_error *err)
{
	s3d_list_opts o;
	int rc = S3D_OK;

	if (w->fetched && w->nobjs) {
		s3d_buf jump;

		s3d_buf_init(&jump, KEY_BUF_MAX + 2);
		rc = walk_jump(w, wkey(w, w->nobjs - 1), &jump);
		if (rc == S3D_OK && jump.len) {
			s3d_buf_reset(&w->list_after);
			s3d_buf_reset(&w->token);
			rc = s3d_buf_append(&w->list_after, jump.ptr, jump.len);
		}
		s3d_buf_cleanup(&jump);
		if (rc != S3D_OK)
			return fail(err, rc, "WALK", w->d->bucket, s3d_buf_str(&w->prefix),
				    "cannot restart the listing");
	}
	w->nobjs = 0;
	w->pos = 0;
	s3d_buf_reset(&w->keys);
	memset(&o, 0, sizeof(o));
	o.prefix = s3d_buf_str(&w->prefix);
	if (!w->token.len && w->list_after.len)
		o.start_after = s3d_buf_str(&w->list_after);
	o.max_keys = LIST_PAGE;
	o.single_page = 1;
	o.continuation = &w->token;
	w->rc = S3D_OK;
	rc = s3d_list_objects(w->d->client, w->d->bucket, &o, walk_collect, w, err);
	w->fetched = 1;
	if (rc == S3D_OK && w->rc != S3D_OK)
		rc = fail(err, w->rc, "WALK", w->d->bucket, o.prefix, "cannot collect the page");
	if (rc != S3D_OK) {
		w->nobjs = 0;
		return rc;
	}
	w->more = w->token.len > 0;
	return S3D_OK;
}

int s3d_walker_open(s3d_driver *d, const char *path, const char *start_after,
		    s3d_walker **out, s3d_error *err)
{
	s3d_walker *w;
	int rc;

	if (!d || !path || path[0] != '/' || !out)
		return fail(err, S3D_E_INVAL, "WALK", NULL, path, "invalid arguments");
	*out = NULL;
	if (start_after && *start_after && start_after[0] != '/')
		return fail(err, S3D_E_INVAL, "WALK", d->bucket, start_after, "invalid start_after");
	w = calloc(1, sizeof(*w));
	if (!w)
		return fail(err, S3D_E_NOMEM, "WALK", d->bucket, path, "out of memory");
	w->d = d;
	s3d_buf_init(&w->prefix, KEY_BUF_MAX);
	s3d_buf_init(&w->from, KEY_BUF_MAX + 2);
	s3d_buf_init(&w->after, KEY_BUF_MAX + 2);
	s3d_buf_init(&w->list_after, KEY_BUF_MAX + 2);
	s3d_buf_init(&w->token, 8192);
	s3d_buf_init(&w->keys, (size_t)S3D_XML_MAX_ENTRIES * (KEY_MAX + 1));
	s3d_buf_init(&w->cur_dir, KEY_BUF_MAX + 2);
	s3d_buf_init(&w->skip, KEY_BUF_MAX + 2);
	s3d_buf_init(&w->obj, KEY_BUF_MAX + 2);
	s3d_buf_init(&w->out, KEY_BUF_MAX + 2);
	rc = dir_prefix(d, path, &w->prefix);
	if (rc == S3D_OK)
		rc = s3d_buf_appendz(&w->from, path);
	if (rc == S3D_OK && path[1] != 0)
		rc = s3d_buf_appendc(&w->from, '/');
	if (rc == S3D_OK)
		rc = s3d_buf_appendz(&w->cur_dir, path);
	if (rc == S3D_OK && start_after && *start_after) {
		rc = s3d_buf_appendz(&w->after, start_after);
		if (rc == S3D_OK)
			rc = s3d_driver_key(d, start_after, &w->list_after);
	}
	if (rc != S3D_OK) {
		s3d_walker_free(w);
		return fail(err, rc, "WALK", d->bucket, path, "path too long");
	}
	*out = w;
	return S3D_OK;
}

/* D was reported before start_after: start_after itself or one of its ancestors. */
static int before_start(const s3d_walker *w, const char *dir, size_t dlen)
{
	const char *a = s3d_buf_str(&w->after);

	if (!w->after.len || strncmp(a, dir, dlen) != 0)
		return 0;
	return a[dlen] == 0 || a[dlen] == '/';
}

/* dir is cur_dir or one of its ancestors: reported with an earlier object. */
static int seen_dir(const s3d_walker *w, const char *dir, size_t dlen)
{
	const char *c = s3d_buf_str(&w->cur_dir);

	return strncmp(c, dir, dlen) == 0 && (c[dlen] == 0 || c[dlen] == '/');
}

/* Takes the next listed object (fetching pages as needed); *none at the end. */
static int next_object(s3d_walker *w, int *none, s3d_error *err)
{
	const char *k;
	int rc;

	*none = 0;
	for (;;) {
		if (w->pos == w->nobjs) {
			if (w->fetched && !w->more) {
				*none = 1;
				return S3D_OK;
			}
			rc = walk_fetch(w, err);
			if (rc != S3D_OK)
				return rc;
			continue;
		}
		k = wkey(w, w->pos);
		if (s3d_driver_is_private(w->d, k)) {
			w->pos++;
			continue;
		}
		rc = s3d_driver_path_of(w->d, k, strlen(k), &w->obj);
		if (rc != S3D_OK)
			return fail(err, S3D_E_PROTOCOL, "WALK", w->d->bucket, k,
				    "listed key outside the prefix");
		w->obj_size = w->objs[w->pos].size;
		w->obj_mtime = w->objs[w->pos].mod_time;
		w->pos++;
		if (w->obj.len < w->from.len)
			continue; /* the directory marker of the walked path itself */
		w->obj_pos = w->from.len;
		w->obj_active = 1;
		return S3D_OK;
	}
}

int s3d_walker_next(s3d_walker *w, s3d_walk_entry *e, int *done, s3d_error *err)
{
	const char *p, *slash;
	size_t dlen;
	int rc, none;

	if (!w || !e || !done)
		return fail(err, S3D_E_INVAL, "WALK", NULL, NULL, "invalid arguments");
	*done = 0;
	memset(e, 0, sizeof(*e));
	for (;;) {
		if (!w->obj_active) {
			rc = next_object(w, &none, err);
			if (rc != S3D_OK)
				return rc;
			if (none) {
				*done = 1;
				return S3D_OK;
			}
		}
		p = s3d_buf_str(&w->obj);
		slash = strchr(p + w->obj_pos, '/');
		if (slash) {
			/* the next directory on the way down to the object */
			dlen = (size_t)(slash - p);
			w->obj_pos = dlen + 1;
			if (seen_dir(w, p, dlen))
				continue;
			if (set_buf(&w->cur_dir, p, dlen) != S3D_OK)
				return fail(err, S3D_E_TOOBIG, "WALK", w->d->bucket, p, "path too long");
			if (below(p, s3d_buf_str(&w->skip), w->skip.len) || before_start(w, p, dlen))
				continue;
			if (set_buf(&w->out, p, dlen) != S3D_OK)
				return fail(err, S3D_E_TOOBIG, "WALK", w->d->bucket, p, "path too long");
			e->path = s3d_buf_str(&w->out);
			e->is_dir = 1;
			return S3D_OK;
		}
		w->obj_active = 0;
		/* the object's own directory is where the next one is compared */
		dlen = w->obj_pos > w->from.len ? w->obj_pos - 1 : w->from.len - (w->from.len > 1);
		if (set_buf(&w->cur_dir, p, dlen) != S3D_OK)
			return fail(err, S3D_E_TOOBIG, "WALK", w->d->bucket, p, "path too long");
		if (w->obj_pos == w->obj.len)
			continue; /* "dir/" marker: its directory was reported */
		if (below(p, s3d_buf_str(&w->skip), w->skip.len))
			continue;
		if (set_buf(&w->out, p, w->obj.len) != S3D_OK)
			return fail(err, S3D_E_TOOBIG, "WALK", w->d->bucket, p, "path too long");
		e->path = s3d_buf_str(&w->out);
		e->size = w->obj_size < 0 ? 0 : w->obj_size;
		e->mod_time = w->obj_mtime;
		return S3D_OK;
	}
}

void s3d_walker_skip_dir(s3d_walker *w, const char *dir)
{
	size_t n;

	if (!w || !dir)
		return;
	n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (set_buf(&w->skip, dir, n) != S3D_OK)
		s3d_buf_reset(&w->skip);
}

void s3d_walker_free(s3d_walker *w)
{
	if (!w)
		return;
	s3d_buf_cleanup(&w->prefix);
	s3d_buf_cleanup(&w->from);
	s3d_buf_cleanup(&w->after);
	s3d_buf_cleanup(&w->list_after);
	s3d_buf_cleanup(&w->token);
	s3d_buf_cleanup(&w->keys);
	s3d_buf_cleanup(&w->cur_dir);
	s3d_buf_cleanup(&w->skip);
	s3d_buf_cleanup(&w->obj);
	s3d_buf_cleanup(&w->out);
	free(w->objs);
	free(w);
}
