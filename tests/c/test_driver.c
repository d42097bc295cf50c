/*
 * The storage driver's metadata operations (driver.c) against a live
 * S3-compatible server (versitygw started by tests/with-s3.sh): hostile
 * configurations and paths first, then content, Stat, List, Move, Delete,
 * redirects and Walk, with a root directory and without one.
 */
#include "t.h"
#include "t_s3.h"

#include "s3direct.h"
#include "driver.h"

#include <curl/curl.h>

static char bucket[64];      /* driver with root "" */
static char rbucket[64];     /* driver with root "it/root" */
static s3d_client *admin;    /* plain client for setup and checks */

static void base_cfg(s3d_driver_config *cfg, const char *bkt, const char *root)
{
	t_s3_driver_config(cfg, NULL, bkt, root);
}

static s3d_driver *driver(const char *bkt, const char *root)
{
	s3d_driver_config cfg;
	s3d_driver *d = NULL;
	s3d_error err;

	base_cfg(&cfg, bkt, root);
	if (s3d_driver_new(&cfg, &d, &err) != S3D_OK)
		return NULL;
	return d;
}

static int put(s3d_driver *d, const char *path, const char *s)
{
	s3d_error err;

	return s3d_driver_put_content(d, path, s, strlen(s), &err);
}

static int sort_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A List result, sorted and joined with '\n', into out. */
static int list_str(s3d_driver *d, const char *path, char *out, size_t cap)
{
	s3d_buf b;
	s3d_error err;
	size_t n = 0, i, used = 0;
	const char *p, *v[256];
	int rc;

	out[0] = 0;
	s3d_buf_init(&b, 1 << 20);
	rc = s3d_driver_list(d, path, &b, &n, &err);
	if (rc == S3D_OK && n > 256)
		rc = S3D_E_TOOBIG;
	for (i = 0, p = (const char *)b.ptr; rc == S3D_OK && i < n; i++) {
		v[i] = p;
		p += strlen(p) + 1;
	}
	if (rc == S3D_OK && p != (const char *)b.ptr + b.len && n)
		rc = S3D_E_PROTOCOL;
	if (rc == S3D_OK)
		qsort(v, n, sizeof(v[0]), sort_cmp);
	for (i = 0; rc == S3D_OK && i < n; i++)
		used += (size_t)snprintf(out + used, used < cap ? cap - used : 0, "%s%s",
					 i ? "\n" : "", v[i]);
	s3d_buf_cleanup(&b);
	return rc;
}

/* Every walk entry ("d:" or "f:" + path), joined with '\n'. skip: a dir to skip. */
static int walk_str(s3d_driver *d, const char *from, const char *after, const char *skip,
		    char *out, size_t cap)
{
	s3d_walker *w = NULL;
	s3d_walk_entry e;
	s3d_error err;
	size_t used = 0;
	int rc, done = 0, guard = 0;

	out[0] = 0;
	rc = s3d_walker_open(d, from, after, &w, &err);
	while (rc == S3D_OK && guard++ < 100000) {
		rc = s3d_walker_next(w, &e, &done, &err);
		if (rc != S3D_OK || done)
			break;
		if (used < cap)
			used += (size_t)snprintf(out + used, cap - used, "%s%s:%s", used ? "\n" : "",
						 e.is_dir ? "d" : "f", e.path);
		if (skip && e.is_dir && strcmp(e.path, skip) == 0)
			s3d_walker_skip_dir(w, e.path);
	}
	s3d_walker_free(w);
	return rc;
}

/* ---- hostile first ---- */

static void test_bad_configs(void)
{
	s3d_driver_config cfg;
	s3d_driver *d = NULL;
	s3d_error err;
	s3d_buf k;

	T_EQ_INT(S3D_E_INVAL, s3d_driver_new(NULL, &d, &err));
	base_cfg(&cfg, bucket, "");
	T_EQ_INT(S3D_E_INVAL, s3d_driver_new(&cfg, NULL, &err));
	cfg.bucket = "";
	T_EQ_INT(S3D_E_INVAL, s3d_driver_new(&cfg, &d, &err));
	cfg.bucket = NULL;
	T_EQ_INT(S3D_E_INVAL, s3d_driver_new(&cfg, &d, &err));
	T_TRUE(d == NULL);

#define BAD(field, value)                                               \
	do {                                                            \
		base_cfg(&cfg, bucket, "");                             \
		cfg.field = value;                                      \
		s3d_error_clear(&err);                                  \
		T_EQ_INT(S3D_E_INVAL, s3d_driver_new(&cfg, &d, &err));  \
		T_TRUE(err.message[0] != 0);                            \
		T_TRUE(d == NULL);                                      \
	} while (0)
	BAD(part_size, 5u * 1024 * 1024 - 1);
	BAD(parts_in_flight, -1);
	BAD(parts_in_flight, 65);
	BAD(copy_threshold, 5 * 1024 * 1024 - 1);
	BAD(copy_threshold, -5);
	BAD(copy_part_size, 1024);
	BAD(copy_part_size, (int64_t)5 * 1024 * 1024 * 1024 + 1);
	BAD(copy_concurrency, -1);
	BAD(copy_concurrency, 65);
	BAD(redirect_expires, -1);
	BAD(redirect_expires, 604801);
	BAD(put.checksum_sha256, "abc=");
	BAD(put.content_type, "text/plain");
	BAD(client.endpoint, "ftp://127.0.0.1:1");
	BAD(client.endpoint, "http://127.0.0.1:1/prefix");
#undef BAD

	/* a bucket that does not exist is named in the error */
	base_cfg(&cfg, "s3d-no-such-bucket-here", "");
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_new(&cfg, &d, &err));
	T_TRUE(strstr(err.message, "s3d-no-such-bucket-here") != NULL);
	T_EQ_INT(404, err.http_status);

	/* wrong credentials are reported at construction */
	base_cfg(&cfg, bucket, "");
	cfg.client.secret_key = "wrong";
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_S3, s3d_driver_new(&cfg, &d, &err));
	T_EQ_INT(403, err.http_status);

	/* limits at their edges are accepted; roots are normalized */
	base_cfg(&cfg, bucket, "//it/root//");
	cfg.part_size = 5u * 1024 * 1024;
	cfg.parts_in_flight = 64;
	cfg.copy_threshold = 5 * 1024 * 1024;
	cfg.copy_part_size = (int64_t)5 * 1024 * 1024 * 1024;
	cfg.copy_concurrency = 64;
	cfg.redirect_expires = 604800;
	cfg.put.content_type = "application/octet-stream";
	cfg.put.storage_class = "STANDARD";
	T_REQUIRE(s3d_driver_new(&cfg, &d, &err) == S3D_OK);
	s3d_buf_init(&k, 2048);
	T_EQ_INT(S3D_OK, s3d_driver_key(d, "/a/b", &k));
	T_EQ_STR("it/root/a/b", s3d_buf_str(&k));
	T_EQ_INT(S3D_OK, s3d_driver_key(d, "/", &k));
	T_EQ_STR("it/root/", s3d_buf_str(&k));
	T_EQ_INT(S3D_E_INVAL, s3d_driver_key(d, "a", &k));
	T_EQ_INT(S3D_OK, s3d_driver_path_of(d, "it/root/x/y", 11, &k));
	T_EQ_STR("/x/y", s3d_buf_str(&k));
	T_EQ_INT(S3D_E_INVAL, s3d_driver_path_of(d, "other/x", 7, &k));
	T_TRUE(s3d_driver_is_private(d, "it/root/_s3direct/tails/x"));
	T_TRUE(s3d_driver_is_private(d, "it/root/_s3direct"));
	T_TRUE(!s3d_driver_is_private(d, "it/root/_s3directx/a"));
	T_TRUE(!s3d_driver_is_private(d, "_s3direct/a"));
	T_EQ_STR("STANDARD", s3d_driver_put_opts(d)->storage_class);
	T_EQ_STR("application/octet-stream", s3d_driver_put_opts(d)->content_type);
	T_TRUE(s3d_driver_put_opts(d)->acl == NULL);
	T_TRUE(s3d_driver_client(d) != NULL);
	s3d_driver_free(d);

	base_cfg(&cfg, bucket, "/");
	T_REQUIRE(s3d_driver_new(&cfg, &d, &err) == S3D_OK);
	T_EQ_INT(S3D_OK, s3d_driver_key(d, "/a", &k));
	T_EQ_STR("a", s3d_buf_str(&k));
	T_EQ_INT(S3D_OK, s3d_driver_key(d, "/", &k));
	T_EQ_STR("", s3d_buf_str(&k));
	T_TRUE(s3d_driver_is_private(d, "_s3direct/tails/x"));
	/* a key over 1024 bytes */
	{
		char longp[1100];

		memset(longp, 'a', sizeof(longp) - 1);
		longp[0] = '/';
		longp[sizeof(longp) - 1] = 0;
		T_EQ_INT(S3D_E_TOOBIG, s3d_driver_key(d, longp, &k));
		T_EQ_INT(S3D_E_TOOBIG, s3d_driver_put_content(d, longp, "x", 1, &err));
	}
	s3d_buf_cleanup(&k);
	s3d_driver_free(d);
	s3d_driver_free(NULL);
}

static void test_hostile_paths(void)
{
	s3d_driver *d = driver(bucket, "");
	s3d_walker *w = NULL;
	s3d_walk_entry e;
	s3d_error err;
	s3d_stat st;
	s3d_buf b;
	size_t n = 99;
	int done = 0;
	uint8_t big[4096];

	T_REQUIRE(d);
	s3d_buf_init(&b, 100);
	t_fill(big, sizeof(big), 1);
	T_EQ_INT(S3D_OK, s3d_driver_put_content(d, "/hostile/big", big, sizeof(big), &err));

	/* over the caller's buffer */
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_TOOBIG, s3d_driver_get_content(d, "/hostile/big", &b, &err));

	/* not objects */
	T_EQ_INT(S3D_E_INVAL, s3d_driver_get_content(d, "/", &b, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_driver_get_content(d, "noslash", &b, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_driver_put_content(d, "/", "x", 1, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_driver_put_content(d, "/x", NULL, 1, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_driver_delete(d, "/", &err));
	T_EQ_INT(S3D_E_INVAL, s3d_driver_move(d, "/", "/x", &err));
	T_EQ_INT(S3D_E_INVAL, s3d_driver_stat(d, "", &st, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_driver_list(d, "x", &b, &n, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_walker_open(d, "x", NULL, &w, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_walker_open(d, "/", "x", &w, &err));

	/* missing */
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_get_content(d, "/hostile/missing", &b, &err));
	T_EQ_INT(404, err.http_status);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_get_content(d, "/hostile", &b, &err)); /* a dir */
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, "/hostile/missing", &st, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, "/hostile/big/deeper", &st, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_list(d, "/hostile/missing", &b, &n, &err));
	T_EQ_INT(0, n);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_list(d, "/hostile/big", &b, &n, &err)); /* a file */
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_delete(d, "/hostile/missing", &err));
	T_TRUE(err.message[0] != 0);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_delete(d, "/hostile/bi", &err)); /* a prefix only */
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_move(d, "/hostile/missing", "/hostile/dst", &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, "/hostile/dst", &st, &err));
	/* TestMoveInvalid: below a file */
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_move(d, "/hostile/big/foo", "/hostile/big/bar", &err));

	/* a missing directory walks as empty (as s3-aws) */
	T_EQ_INT(S3D_OK, s3d_walker_open(d, "/hostile/missing", NULL, &w, &err));
	T_EQ_INT(S3D_OK, s3d_walker_next(w, &e, &done, &err));
	T_EQ_INT(1, done);
	T_EQ_INT(S3D_OK, s3d_walker_next(w, &e, &done, &err)); /* and stays at the end */
	T_EQ_INT(1, done);
	s3d_walker_free(w);
	T_EQ_INT(S3D_E_INVAL, s3d_walker_next(NULL, &e, &done, &err));
	s3d_walker_skip_dir(NULL, "/x");
	s3d_walker_free(NULL);

	/* redirects: other methods get no URL */
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "junk"));
	T_EQ_INT(S3D_OK, s3d_driver_redirect_url(d, "POST", "/hostile/big", &b, &err));
	T_EQ_INT(0, b.len);
	T_EQ_INT(S3D_E_INVAL, s3d_driver_redirect_url(d, "GET", "/", &b, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_driver_redirect_url(d, NULL, "/x", &b, &err));

	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/hostile", &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, "/hostile", &st, &err));
	s3d_buf_cleanup(&b);
	s3d_driver_free(d);
}

/* ---- content ---- */

static void test_content_round_trips(void)
{
	s3d_driver *d = driver(rbucket, "it/root");
	s3d_error err;
	s3d_buf b, k;
	s3d_obj_info info;
	uint8_t data[4096];

	T_REQUIRE(d);
	s3d_buf_init(&b, 1 << 20);
	s3d_buf_init(&k, 2048);
	t_fill(data, sizeof(data), 7);
	data[0] = 0xff; /* not UTF-8 */
	data[1] = 0;
	T_EQ_INT(S3D_OK, s3d_driver_put_content(d, "/c/file", data, sizeof(data), &err));
	T_EQ_INT(S3D_OK, s3d_driver_get_content(d, "/c/file", &b, &err));
	T_EQ_MEM(data, sizeof(data), b.ptr, b.len);
	/* the object sits below the root, with s3-aws's content type */
	T_EQ_INT(S3D_OK, s3d_head_object(admin, rbucket, "it/root/c/file", 0, &info, &err));
	T_EQ_INT(4096, info.size);
	T_EQ_STR("application/octet-stream", info.content_type);

	/* overwrite with less: the whole object is replaced */
	T_EQ_INT(S3D_OK, s3d_driver_put_content(d, "/c/file", data + 100, 2048, &err));
	T_EQ_INT(S3D_OK, s3d_driver_get_content(d, "/c/file", &b, &err));
	T_EQ_MEM(data + 100, 2048, b.ptr, b.len);

	/* empty content */
	T_EQ_INT(S3D_OK, s3d_driver_put_content(d, "/c/empty", NULL, 0, &err));
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "stale"));
	T_EQ_INT(S3D_OK, s3d_driver_get_content(d, "/c/empty", &b, &err));
	T_EQ_INT(0, b.len);

	/* the suite's valid path shapes */
	T_EQ_INT(S3D_OK, put(d, "/c/a.a", "1"));
	T_EQ_INT(S3D_OK, put(d, "/c/abc./abc", "2"));
	T_EQ_INT(S3D_OK, put(d, "/c/.abc", "3"));
	T_EQ_INT(S3D_OK, put(d, "/c/a--b", "4"));
	T_EQ_INT(S3D_OK, put(d, "/c/_.abc", "5"));
	T_EQ_INT(S3D_OK, s3d_driver_get_content(d, "/c/abc./abc", &b, &err));
	T_EQ_STR("2", s3d_buf_str(&b));
	T_EQ_INT(S3D_OK, s3d_driver_get_content(d, "/c/_.abc", &b, &err));
	T_EQ_STR("5", s3d_buf_str(&b));

	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/c", &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_get_content(d, "/c/file", &b, &err));
	s3d_buf_cleanup(&b);
	s3d_buf_cleanup(&k);
	s3d_driver_free(d);
}

/* ---- stat ---- */

static void test_stat(void)
{
	s3d_driver *d = driver(rbucket, "it/root");
	s3d_error err;
	s3d_stat st;
	time_t now = time(NULL);

	T_REQUIRE(d);
	T_EQ_INT(S3D_OK, s3d_driver_stat(d, "/", &st, &err));
	T_EQ_INT(1, st.is_dir);

	T_EQ_INT(S3D_OK, put(d, "/s/dir/file", "12345"));
	T_EQ_INT(S3D_OK, s3d_driver_stat(d, "/s/dir/file", &st, &err));
	T_EQ_INT(0, st.is_dir);
	T_EQ_INT(5, st.size);
	T_TRUE(st.mod_time >= now - 300 && st.mod_time <= now + 300);
	T_EQ_INT(S3D_OK, s3d_driver_stat(d, "/s/dir", &st, &err));
	T_EQ_INT(1, st.is_dir);
	T_EQ_INT(0, st.size);
	T_EQ_INT(S3D_OK, s3d_driver_stat(d, "/s", &st, &err));
	T_EQ_INT(1, st.is_dir);

	/* the sibling trap: "/s/b-c" and "/s/bc" sort before "/s/b/"; no "/s/b" */
	T_EQ_INT(S3D_OK, put(d, "/s/b-c", "x"));
	T_EQ_INT(S3D_OK, put(d, "/s/bc", "x"));
	T_EQ_INT(S3D_OK, put(d, "/s/b-d/x", "x"));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, "/s/b", &st, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, "/s/di", &st, &err));
	T_EQ_INT(S3D_OK, put(d, "/s/b/inner", "x"));
	T_EQ_INT(S3D_OK, s3d_driver_stat(d, "/s/b", &st, &err));
	T_EQ_INT(1, st.is_dir);
	T_EQ_INT(S3D_OK, s3d_driver_stat(d, "/s/b-c", &st, &err));
	T_EQ_INT(0, st.is_dir);
	T_EQ_INT(1, st.size);

	/* the private area is invisible */
	T_EQ_INT(S3D_OK, s3d_put_object(admin, rbucket, "it/root/_s3direct/tails/x", "t", 1,
					NULL, NULL, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, "/_s3direct", &st, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, "/_s3direct/tails", &st, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, "/_s3direct/tails/x", &st, &err));

	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/s", &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, "/s", &st, &err));
	T_EQ_INT(S3D_OK, s3d_delete_object(admin, rbucket, "it/root/_s3direct/tails/x", &err));
	s3d_driver_free(d);
}

/* ---- list ---- */

static void test_list(void)
{
	s3d_driver *d = driver(bucket, "");
	s3d_driver *r = driver(rbucket, "it/root");
	s3d_error err;
	s3d_buf b;
	size_t n = 0;
	char out[4096];

	T_REQUIRE(d && r);
	s3d_buf_init(&b, 20); /* "/l" lists 31 bytes */

	/* "/" is never missing, even empty */
	T_EQ_INT(S3D_OK, list_str(r, "/", out, sizeof(out)));
	T_EQ_STR("", out);

	T_EQ_INT(S3D_OK, put(r, "/l/top", "x"));
	T_EQ_INT(S3D_OK, put(r, "/l/dir/a", "x"));
	T_EQ_INT(S3D_OK, put(r, "/l/dir/b", "x"));
	T_EQ_INT(S3D_OK, put(r, "/l/dir/sub/c", "x"));
	T_EQ_INT(S3D_OK, put(r, "/l/dir-x/d", "x"));
	T_EQ_INT(S3D_OK, put(r, "/l/dirz", "x"));
	T_EQ_INT(S3D_OK, s3d_put_object(admin, rbucket, "it/root/_s3direct/tails/x", "t", 1,
					NULL, NULL, &err));
	/* outside the root: never seen through r */
	T_EQ_INT(S3D_OK, s3d_put_object(admin, rbucket, "it/rootx/y", "t", 1, NULL, NULL, &err));
	T_EQ_INT(S3D_OK, s3d_put_object(admin, rbucket, "it/other", "t", 1, NULL, NULL, &err));

	T_EQ_INT(S3D_OK, list_str(r, "/", out, sizeof(out)));
	T_EQ_STR("/l", out);
	T_EQ_INT(S3D_OK, list_str(r, "/l", out, sizeof(out)));
	T_EQ_STR("/l/dir\n/l/dir-x\n/l/dirz\n/l/top", out);
	T_EQ_INT(S3D_OK, list_str(r, "/l/dir", out, sizeof(out)));
	T_EQ_STR("/l/dir/a\n/l/dir/b\n/l/dir/sub", out);
	T_EQ_INT(S3D_E_NOTFOUND, list_str(r, "/l/di", out, sizeof(out)));
	T_EQ_INT(S3D_E_NOTFOUND, list_str(r, "/_s3direct", out, sizeof(out)));
	T_EQ_INT(S3D_E_NOTFOUND, list_str(r, "/_s3direct/tails", out, sizeof(out)));

	/* the same bucket without a root sees the root as a directory */
	T_EQ_INT(S3D_OK, put(d, "/l2/x", "x"));
	T_EQ_INT(S3D_OK, s3d_put_object(admin, bucket, "_s3direct/tails/y", "t", 1, NULL, NULL, &err));
	T_EQ_INT(S3D_OK, list_str(d, "/", out, sizeof(out)));
	T_EQ_STR("/l2", out);
	T_EQ_INT(S3D_OK, s3d_delete_object(admin, bucket, "_s3direct/tails/y", &err));

	/* over the caller's buffer */
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_TOOBIG, s3d_driver_list(r, "/l", &b, &n, &err));
	T_EQ_INT(0, n);

	T_EQ_INT(S3D_OK, s3d_driver_delete(r, "/l", &err));
	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/l2", &err));
	T_EQ_INT(S3D_OK, list_str(r, "/", out, sizeof(out)));
	T_EQ_STR("", out);
	T_EQ_INT(S3D_OK, s3d_delete_object(admin, rbucket, "it/root/_s3direct/tails/x", &err));
	T_EQ_INT(S3D_OK, s3d_delete_object(admin, rbucket, "it/rootx/y", &err));
	T_EQ_INT(S3D_OK, s3d_delete_object(admin, rbucket, "it/other", &err));
	s3d_buf_cleanup(&b);
	s3d_driver_free(d);
	s3d_driver_free(r);
}

/* A listing over 1000 entries takes several pages. */
static void test_list_pages(void)
{
	s3d_driver *d = driver(rbucket, "it/root");
	s3d_error err;
	s3d_buf b;
	size_t n = 0, i;
	char path[64];
	int rc = S3D_OK;

	T_REQUIRE(d);
	for (i = 0; i < 1005 && rc == S3D_OK; i++) {
		snprintf(path, sizeof(path), "/pages/f%04zu", i);
		rc = put(d, path, "x");
	}
	T_REQUIRE(rc == S3D_OK);
	s3d_buf_init(&b, 1 << 20);
	T_EQ_INT(S3D_OK, s3d_driver_list(d, "/pages", &b, &n, &err));
	T_EQ_INT(1005, n);
	T_EQ_STR("/pages/f0000", s3d_buf_str(&b));
	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/pages", &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_list(d, "/pages", &b, &n, &err));
	s3d_buf_cleanup(&b);
	s3d_driver_free(d);
}

/* ---- move ---- */

static int verify_sha(const char *bkt, const char *key, const uint8_t want[32], int64_t size)
{
	uint8_t md[32];
	int64_t got = -1;
	s3d_error err;

	if (s3d_verify_sha256(admin, bkt, key, NULL, md, &got, &err) != S3D_OK)
		return 0;
	return got == size && memcmp(md, want, 32) == 0;
}

static void test_move(void)
{
	s3d_driver_config cfg;
	s3d_driver *d = NULL;
	s3d_error err;
	s3d_stat st;
	s3d_buf b;
	size_t big = 12u * 1024 * 1024 + 12345;
	uint8_t *data = malloc(big), md[32];

	T_REQUIRE(data);
	base_cfg(&cfg, rbucket, "it/root");
	cfg.copy_threshold = 5 * 1024 * 1024;
	cfg.copy_part_size = 5 * 1024 * 1024;
	cfg.copy_concurrency = 2;
	T_REQUIRE(s3d_driver_new(&cfg, &d, &err) == S3D_OK);
	s3d_buf_init(&b, 1 << 20);

	/* small: one CopyObject */
	T_EQ_INT(S3D_OK, put(d, "/m/src", "small contents"));
	T_EQ_INT(S3D_OK, s3d_driver_move(d, "/m/src", "/m/dst/deep", &err));
	T_EQ_INT(S3D_OK, s3d_driver_get_content(d, "/m/dst/deep", &b, &err));
	T_EQ_STR("small contents", s3d_buf_str(&b));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, "/m/src", &st, &err));

	/* onto an existing destination: overwritten */
	T_EQ_INT(S3D_OK, put(d, "/m/src2", "newer"));
	T_EQ_INT(S3D_OK, s3d_driver_move(d, "/m/src2", "/m/dst/deep", &err));
	T_EQ_INT(S3D_OK, s3d_driver_get_content(d, "/m/dst/deep", &b, &err));
	T_EQ_STR("newer", s3d_buf_str(&b));

	/* missing source: the destination stays */
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_move(d, "/m/src2", "/m/dst/deep", &err));
	T_EQ_INT(S3D_OK, s3d_driver_get_content(d, "/m/dst/deep", &b, &err));
	T_EQ_STR("newer", s3d_buf_str(&b));

	/* onto itself: nothing lost */
	T_EQ_INT(S3D_OK, s3d_driver_move(d, "/m/dst/deep", "/m/dst/deep", &err));
	T_EQ_INT(S3D_OK, s3d_driver_get_content(d, "/m/dst/deep", &b, &err));
	T_EQ_STR("newer", s3d_buf_str(&b));

	/* the private area is not a move source or target */
	T_EQ_INT(S3D_E_INVAL, s3d_driver_move(d, "/m/dst/deep", "/_s3direct/x", &err));

	/* large: 3 UploadPartCopy parts (5 MiB, 5 MiB, the rest) */
	t_fill(data, big, 42);
	t_sha256(data, big, md);
	T_EQ_INT(S3D_OK, s3d_driver_put_content(d, "/m/big", data, big, &err));
	T_EQ_INT(S3D_OK, s3d_driver_move(d, "/m/big", "/m/moved/big", &err));
	T_TRUE(verify_sha(rbucket, "it/root/m/moved/big", md, (int64_t)big));
	T_EQ_INT(S3D_OK, s3d_driver_stat(d, "/m/moved/big", &st, &err));
	T_EQ_INT((int64_t)big, st.size);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, "/m/big", &st, &err));
	{
		/* the multipart object has one ETag per part: "-3" */
		s3d_obj_info info;

		T_EQ_INT(S3D_OK, s3d_head_object(admin, rbucket, "it/root/m/moved/big", 0, &info, &err));
		T_TRUE(strstr(info.etag, "-3") != NULL);
	}

	/* large onto an existing large destination, 4 at once */
	s3d_driver_free(d);
	cfg.copy_concurrency = 4;
	T_REQUIRE(s3d_driver_new(&cfg, &d, &err) == S3D_OK);
	t_fill(data, big, 43);
	t_sha256(data, big, md);
	T_EQ_INT(S3D_OK, s3d_driver_put_content(d, "/m/big2", data, big, &err));
	T_EQ_INT(S3D_OK, s3d_driver_move(d, "/m/big2", "/m/moved/big", &err));
	T_TRUE(verify_sha(rbucket, "it/root/m/moved/big", md, (int64_t)big));

	/* no multipart upload is left behind */
	{
		int uploads = 0;
		s3d_list_opts o;

		memset(&o, 0, sizeof(o));
		o.prefix = "it/root/m/";
		T_EQ_INT(S3D_OK, s3d_list_multipart_uploads(admin, rbucket, &o, t_count_entry,
							    &uploads, &err));
		T_EQ_INT(0, uploads);
	}

	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/m", &err));
	s3d_buf_cleanup(&b);
	free(data);
	s3d_driver_free(d);
}

/* ---- delete ---- */

static void test_delete(void)
{
	s3d_driver *d = driver(rbucket, "it/root");
	s3d_error err;
	s3d_stat st;
	s3d_buf b;
	char out[4096];

	T_REQUIRE(d);
	s3d_buf_init(&b, 1024);

	/* TestDeleteOnlyDeletesSubpaths */
	T_EQ_INT(S3D_OK, put(d, "/del/d/f", "1"));
	T_EQ_INT(S3D_OK, put(d, "/del/d/fsuffix", "2"));
	T_EQ_INT(S3D_OK, put(d, "/del/d/d/f", "3"));
	T_EQ_INT(S3D_OK, put(d, "/del/d/dsuffix/f", "4"));
	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/del/d/f", &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_get_content(d, "/del/d/f", &b, &err));
	T_EQ_INT(S3D_OK, s3d_driver_get_content(d, "/del/d/fsuffix", &b, &err));
	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/del/d/d", &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_get_content(d, "/del/d/d/f", &b, &err));
	T_EQ_INT(S3D_OK, s3d_driver_get_content(d, "/del/d/dsuffix/f", &b, &err));
	T_EQ_INT(S3D_OK, list_str(d, "/del/d", out, sizeof(out)));
	T_EQ_STR("/del/d/dsuffix\n/del/d/fsuffix", out);

	/* a folder with its subfolders; the private area and siblings stay */
	T_EQ_INT(S3D_OK, put(d, "/del/x/1", "1"));
	T_EQ_INT(S3D_OK, put(d, "/del/x/2/3", "1"));
	T_EQ_INT(S3D_OK, put(d, "/del/x/2/4/5", "1"));
	T_EQ_INT(S3D_OK, put(d, "/del/x-sibling", "1"));
	T_EQ_INT(S3D_OK, s3d_put_object(admin, rbucket, "it/root/_s3direct/keep", "t", 1,
					NULL, NULL, &err));
	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/del/x", &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, "/del/x", &st, &err));
	T_EQ_INT(S3D_OK, s3d_driver_stat(d, "/del/x-sibling", &st, &err));
	T_EQ_INT(S3D_OK, s3d_head_object(admin, rbucket, "it/root/_s3direct/keep", 0, NULL, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_delete(d, "/_s3direct", &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_delete(d, "/_s3direct/keep", &err));
	T_EQ_INT(S3D_OK, s3d_head_object(admin, rbucket, "it/root/_s3direct/keep", 0, NULL, &err));

	/* everything under the first part, then nothing is left */
	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/del", &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_delete(d, "/del", &err));
	T_EQ_INT(S3D_OK, list_str(d, "/", out, sizeof(out)));
	T_EQ_STR("", out);
	T_EQ_INT(S3D_OK, s3d_delete_object(admin, rbucket, "it/root/_s3direct/keep", &err));
	s3d_buf_cleanup(&b);
	s3d_driver_free(d);
}

/*
 * A Delete whose clean-up of unfinished uploads fails (here: the abort of a
 * listed upload is refused) fails with S3's answer and deletes no object of
 * the path: it can be retried and still find the upload. Against a loopback
 * fault server that plays S3.
 */
struct del_fault {
	pthread_mutex_t mu;
	int aborts, deletes, listings;
};

static void del_fault_answer(void *ud, int fd, const char *req, size_t len)
{
	struct del_fault *f = ud;
	char method[16], target[2048];
	const char *body;

	(void)len;
	if (t_fault_req_line(fd, req, method, sizeof(method), target, sizeof(target)) != 0)
		return;
	pthread_mutex_lock(&f->mu);
	if (strcmp(method, "GET") == 0 && strstr(target, "uploads")) {
		body = "<ListMultipartUploadsResult><Bucket>b</Bucket><IsTruncated>false</IsTruncated>"
		       "<Upload><Key>r/dir/x/data</Key><UploadId>U1</UploadId>"
		       "<Initiated>2026-11-25T00:00:00.000Z</Initiated></Upload>"
		       "</ListMultipartUploadsResult>";
		t_send_answer(fd, "200 OK", NULL, body, strlen(body));
	} else if (strcmp(method, "DELETE") == 0 && strstr(target, "uploadId=")) {
		f->aborts++;
		t_send_s3_error(fd, "403 Forbidden", "AccessDenied", "FAULTABORT");
	} else if (strcmp(method, "GET") == 0 && strstr(target, "list-type=2")) {
		f->listings++;
		/* the bucket check, the tails and the directory: one object each
		 * time below the directory, none in the tails area */
		body = strstr(target, "tails")
			       ? "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"
			       : "<ListBucketResult><IsTruncated>false</IsTruncated><Contents>"
				 "<Key>r/dir/y</Key><Size>1</Size>"
				 "<LastModified>2026-11-25T00:00:00.000Z</LastModified>"
				 "</Contents></ListBucketResult>";
		t_send_answer(fd, "200 OK", NULL, body, strlen(body));
	} else if (strcmp(method, "HEAD") == 0) {
		t_send_answer(fd, "404 Not Found", NULL, NULL, 0);
	} else if (strcmp(method, "POST") == 0 && strstr(target, "delete")) {
		f->deletes++;
		body = "<DeleteResult></DeleteResult>";
		t_send_answer(fd, "200 OK", NULL, body, strlen(body));
	} else {
		t_send_answer(fd, "400 Bad Request", NULL, NULL, 0);
	}
	pthread_mutex_unlock(&f->mu);
}

static void test_delete_cleanup_fails_first(void)
{
	struct del_fault f;
	struct t_fault_server srv;
	s3d_driver_config cfg;
	s3d_driver *d = NULL;
	s3d_error err;

	memset(&f, 0, sizeof(f));
	pthread_mutex_init(&f.mu, NULL);
	T_REQUIRE(t_fault_start(&srv, del_fault_answer, &f) == 0);
	t_s3_driver_config(&cfg, srv.endpoint, "b", "r");
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_driver_new(&cfg, &d, &err));
	if (d) {
		s3d_error_clear(&err);
		T_EQ_INT(S3D_E_S3, s3d_driver_delete(d, "/dir", &err));
		T_EQ_STR("AccessDenied", err.code);
		T_EQ_STR("FAULTABORT", err.request_id);
		T_EQ_INT(1, f.aborts);
		T_EQ_INT(0, f.deletes);
		s3d_driver_free(d);
	}
	t_fault_stop(&srv);
	pthread_mutex_destroy(&f.mu);
}

/* ---- redirect ---- */

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
	return s3d_buf_append(ud, p, sz * n) == S3D_OK ? sz * n : 0;
}

static long fetch(const char *url, int head, s3d_buf *body, curl_off_t *len)
{
	CURL *c = curl_easy_init();
	long st = 0;

	if (!c)
		return -1;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	if (head)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
		curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, len);
	}
	curl_easy_cleanup(c);
	return st;
}

static void test_redirect_url(void)
{
	s3d_driver_config cfg;
	s3d_driver *d = NULL;
	s3d_error err;
	s3d_buf url, body;
	curl_off_t len = -1;
	uint8_t data[32];

	base_cfg(&cfg, rbucket, "it/root");
	cfg.redirect_expires = 60;
	T_REQUIRE(s3d_driver_new(&cfg, &d, &err) == S3D_OK);
	s3d_buf_init(&url, 16384);
	s3d_buf_init(&body, 1024);
	t_fill(data, sizeof(data), 3);
	T_EQ_INT(S3D_OK, s3d_driver_put_content(d, "/r/file", data, sizeof(data), &err));

	T_EQ_INT(S3D_OK, s3d_driver_redirect_url(d, "GET", "/r/file", &url, &err));
	T_TRUE(strstr(s3d_buf_str(&url), "X-Amz-Expires=60") != NULL);
	T_TRUE(strstr(s3d_buf_str(&url), "/it/root/r/file?") != NULL);
	T_EQ_INT(200, fetch(s3d_buf_str(&url), 0, &body, &len));
	T_EQ_MEM(data, sizeof(data), body.ptr, body.len);

	T_EQ_INT(S3D_OK, s3d_driver_redirect_url(d, "HEAD", "/r/file", &url, &err));
	s3d_buf_reset(&body);
	T_EQ_INT(200, fetch(s3d_buf_str(&url), 1, &body, &len));
	T_EQ_INT(32, len);
	T_EQ_INT(0, body.len);

	/* a GET URL does not work for HEAD (the method is signed) */
	T_EQ_INT(S3D_OK, s3d_driver_redirect_url(d, "GET", "/r/file", &url, &err));
	T_TRUE(fetch(s3d_buf_str(&url), 1, &body, &len) != 200);

	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/r", &err));
	s3d_buf_cleanup(&url);
	s3d_buf_cleanup(&body);
	s3d_driver_free(d);
}

/* ---- walk ---- */

static const char *const walk_files[] = {
	"/file1",
	"/folder1-suffix/file1",
	"/folder1/file1",
	"/folder2/file1",
	"/folder3/subfolder1/subfolder1/file1",
	"/folder3/subfolder2/subfolder1/file1",
	"/folder4/file1",
};

static void walk_tree(s3d_driver *d, const char *base, int create)
{
	char path[256];
	s3d_error err;
	size_t i;

	for (i = 0; i < sizeof(walk_files) / sizeof(walk_files[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", base, walk_files[i]);
		if (create)
			T_EQ_INT(S3D_OK, put(d, path, path));
	}
	if (!create)
		T_EQ_INT(S3D_OK, s3d_driver_delete(d, base, &err));
}

/* s3-aws's TestWalk cases, on the same tree. */
static void test_walk_like_s3aws(void)
{
	s3d_driver *d = driver(rbucket, "it/root");
	s3d_error err;
	char out[8192];

	T_REQUIRE(d);
	walk_tree(d, "/w", 1);
	T_EQ_INT(S3D_OK, s3d_put_object(admin, rbucket, "it/root/_s3direct/tails/w", "t", 1,
					NULL, NULL, &err));

	T_EQ_INT(S3D_OK, walk_str(d, "/w", NULL, NULL, out, sizeof(out)));
	T_EQ_STR("f:/w/file1\n"
		 "d:/w/folder1-suffix\nf:/w/folder1-suffix/file1\n"
		 "d:/w/folder1\nf:/w/folder1/file1\n"
		 "d:/w/folder2\nf:/w/folder2/file1\n"
		 "d:/w/folder3\nd:/w/folder3/subfolder1\nd:/w/folder3/subfolder1/subfolder1\n"
		 "f:/w/folder3/subfolder1/subfolder1/file1\n"
		 "d:/w/folder3/subfolder2\nd:/w/folder3/subfolder2/subfolder1\n"
		 "f:/w/folder3/subfolder2/subfolder1/file1\n"
		 "d:/w/folder4\nf:/w/folder4/file1", out);

	/* skip directory */
	T_EQ_INT(S3D_OK, walk_str(d, "/w", NULL, "/w/folder3", out, sizeof(out)));
	T_EQ_STR("f:/w/file1\n"
		 "d:/w/folder1-suffix\nf:/w/folder1-suffix/file1\n"
		 "d:/w/folder1\nf:/w/folder1/file1\n"
		 "d:/w/folder2\nf:/w/folder2/file1\n"
		 "d:/w/folder3\n"
		 "d:/w/folder4\nf:/w/folder4/file1", out);
	/* skipping "/w/folder1" leaves "/w/folder1-suffix" alone */
	T_EQ_INT(S3D_OK, walk_str(d, "/w", NULL, "/w/folder1", out, sizeof(out)));
	T_TRUE(strstr(out, "f:/w/folder1-suffix/file1\nd:/w/folder1\nd:/w/folder2\n") != NULL);

	/* start late without from: ancestors of the hint are not repeated
	 * (s3-aws repeats "/folder3"; the filesystem driver does not) */
	T_EQ_INT(S3D_OK, walk_str(d, "/w", "/w/folder3/subfolder1/subfolder1/file1", NULL, out,
				  sizeof(out)));
	T_EQ_STR("d:/w/folder3/subfolder2\nd:/w/folder3/subfolder2/subfolder1\n"
		 "f:/w/folder3/subfolder2/subfolder1/file1\n"
		 "d:/w/folder4\nf:/w/folder4/file1", out);

	/* start late with from */
	T_EQ_INT(S3D_OK, walk_str(d, "/w/folder3", "/w/folder3/subfolder1/subfolder1/file1", NULL,
				  out, sizeof(out)));
	T_EQ_STR("d:/w/folder3/subfolder2\nd:/w/folder3/subfolder2/subfolder1\n"
		 "f:/w/folder3/subfolder2/subfolder1/file1", out);

	/* start after from */
	T_EQ_INT(S3D_OK, walk_str(d, "/w/folder1", "/w/folder2", NULL, out, sizeof(out)));
	T_EQ_STR("", out);

	/* start matches from; start does not exist */
	T_EQ_INT(S3D_OK, walk_str(d, "/w/folder3", "/w/folder3", NULL, out, sizeof(out)));
	T_EQ_STR("d:/w/folder3/subfolder1\nd:/w/folder3/subfolder1/subfolder1\n"
		 "f:/w/folder3/subfolder1/subfolder1/file1\n"
		 "d:/w/folder3/subfolder2\nd:/w/folder3/subfolder2/subfolder1\n"
		 "f:/w/folder3/subfolder2/subfolder1/file1", out);
	T_EQ_INT(S3D_OK, walk_str(d, "/w/folder3", "/w/folder3/notafolder/notafile", NULL, out,
				  sizeof(out)));
	T_EQ_STR("d:/w/folder3/subfolder1\nd:/w/folder3/subfolder1/subfolder1\n"
		 "f:/w/folder3/subfolder1/subfolder1/file1\n"
		 "d:/w/folder3/subfolder2\nd:/w/folder3/subfolder2/subfolder1\n"
		 "f:/w/folder3/subfolder2/subfolder1/file1", out);

	/* a hint in a directory that sorts before its prefix-sharing sibling */
	T_EQ_INT(S3D_OK, walk_str(d, "/w", "/w/folder1-suffix/file1", NULL, out, sizeof(out)));
	T_TRUE(strncmp(out, "d:/w/folder1\nf:/w/folder1/file1\nd:/w/folder2\n", 43) == 0);
	/* a hint before everything */
	T_EQ_INT(S3D_OK, walk_str(d, "/w/folder2", "/a", NULL, out, sizeof(out)));
	T_EQ_STR("f:/w/folder2/file1", out);

	/* from folder; from a file (nothing below it) */
	T_EQ_INT(S3D_OK, walk_str(d, "/w/folder1", NULL, NULL, out, sizeof(out)));
	T_EQ_STR("f:/w/folder1/file1", out);
	T_EQ_INT(S3D_OK, walk_str(d, "/w/file1", NULL, NULL, out, sizeof(out)));
	T_EQ_STR("", out);

	/* file sizes and times come with the entries */
	{
		s3d_walker *w = NULL;
		s3d_walk_entry e;
		int done = 0;

		T_EQ_INT(S3D_OK, s3d_walker_open(d, "/w/folder1", NULL, &w, &err));
		T_EQ_INT(S3D_OK, s3d_walker_next(w, &e, &done, &err));
		T_EQ_INT(0, done);
		T_EQ_STR("/w/folder1/file1", e.path);
		T_EQ_INT(strlen("/w/folder1/file1"), e.size);
		T_TRUE(e.mod_time > 0);
		T_EQ_INT(0, e.is_dir);
		s3d_walker_free(w);
	}

	walk_tree(d, "/w", 0);
	T_EQ_INT(S3D_OK, s3d_delete_object(admin, rbucket, "it/root/_s3direct/tails/w", &err));
	s3d_driver_free(d);
}

/* The root "" walks the whole bucket except the private area, lazily by pages. */
static void test_walk_root_and_pages(void)
{
	s3d_driver *d = driver(bucket, "");
	s3d_walker *w = NULL;
	s3d_walk_entry e;
	s3d_error err;
	char path[64], out[4096];
	int i, rc = S3D_OK, done = 0, files = 0, dirs = 0;

	T_REQUIRE(d);
	for (i = 0; i < 1010 && rc == S3D_OK; i++) {
		snprintf(path, sizeof(path), "/wp/a/f%04d", i);
		rc = put(d, path, "x");
	}
	T_REQUIRE(rc == S3D_OK);
	T_EQ_INT(S3D_OK, put(d, "/wp/b/last", "x"));
	T_EQ_INT(S3D_OK, put(d, "/wp0", "x"));
	for (i = 0; i < 1003 && rc == S3D_OK; i++) {
		snprintf(path, sizeof(path), "_s3direct/tails/t%04d", i);
		rc = s3d_put_object(admin, bucket, path, "t", 1, NULL, NULL, &err);
	}
	T_REQUIRE(rc == S3D_OK);

	/* every entry, across pages: 1010 + 2 files, /wp, /wp/a, /wp/b */
	T_EQ_INT(S3D_OK, s3d_walker_open(d, "/", NULL, &w, &err));
	while (s3d_walker_next(w, &e, &done, &err) == S3D_OK && !done) {
		if (e.is_dir)
			dirs++;
		else
			files++;
		T_TRUE(strstr(e.path, "_s3direct") == NULL);
	}
	T_EQ_INT(1, done);
	T_EQ_INT(1012, files);
	T_EQ_INT(3, dirs);
	s3d_walker_free(w);

	/* skipping the big directory jumps over its later pages */
	T_EQ_INT(S3D_OK, walk_str(d, "/", NULL, "/wp/a", out, sizeof(out)));
	T_EQ_STR("d:/wp\nd:/wp/a\nd:/wp/b\nf:/wp/b/last\nf:/wp0", out);
	/* starting inside it */
	T_EQ_INT(S3D_OK, walk_str(d, "/", "/wp/a/f1008", NULL, out, sizeof(out)));
	T_EQ_STR("f:/wp/a/f1009\nd:/wp/b\nf:/wp/b/last\nf:/wp0", out);

	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/wp", &err));
	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/wp0", &err));
	/* the private area is still there, and still invisible */
	T_EQ_INT(S3D_OK, walk_str(d, "/", NULL, NULL, out, sizeof(out)));
	T_EQ_STR("", out);
	T_EQ_INT(S3D_OK, s3d_head_object(admin, bucket, "_s3direct/tails/t0000", 0, NULL, &err));
	{
		const char *keys[1003];
		static char names[1003][32];

		for (i = 0; i < 1003; i++) {
			snprintf(names[i], sizeof(names[i]), "_s3direct/tails/t%04d", i);
			keys[i] = names[i];
		}
		T_EQ_INT(S3D_OK, s3d_delete_objects(admin, bucket, keys, 1003, &err));
	}
	s3d_driver_free(d);
}

int main(void)
{
	admin = t_s3_plain_client();
	if (t_s3_new_bucket("driver", admin, "drv", bucket, sizeof(bucket)) != 0 ||
	    t_s3_new_bucket("driver", admin, "drvr", rbucket, sizeof(rbucket)) != 0) {
		s3d_client_free(admin);
		return 1;
	}
	T_RUN(test_bad_configs);
	T_RUN(test_hostile_paths);
	T_RUN(test_content_round_trips);
	T_RUN(test_stat);
	T_RUN(test_list);
	T_RUN(test_list_pages);
	T_RUN(test_move);
	T_RUN(test_delete);
	T_RUN(test_delete_cleanup_fails_first);
	T_RUN(test_redirect_url);
	T_RUN(test_walk_like_s3aws);
	T_RUN(test_walk_root_and_pages);
	s3d_client_free(admin);
	curl_global_cleanup();
	return t_done("driver");
}
