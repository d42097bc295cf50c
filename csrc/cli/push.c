/*
 * s3d push-blob and s3d push: the client of the presigned upload API
 * (docs/api.md), on top of csrc/regclient.h. Files are hashed and uploaded
 * in place (pread), never loaded whole; only manifests and index.json are
 * read into memory (at most S3D_REG_JSON_MAX bytes each).
 *
 * Output: the digest on stdout; errors, and a progress bar when stderr is a
 * terminal, on stderr. Credentials, tokens and presigned URLs are never
 * printed; the password of --user is blanked in our argv once copied (as
 * curl does), so ps shows "USER:xxxx".
 *
 * SIGINT and SIGTERM (once) stop an upload between two of its steps and
 * cancel its registry session (and so its S3 upload) instead of leaving it
 * open until the session TTL; the exit code is then 128 + the signal.
 */
#include "cmd.h"
#include "common.h"

#include "buf.h"
#include "regclient.h"
#include "s3direct.h"
#include "sigv4.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 3 /* index -> index -> manifest */

static const char *push_blob_usage =
	"usage: " S3D_CLI_PUSH_BLOB_SYNOPSIS
	"                     [--ca-file FILE] [--skip-verify]\n"
	"  Uploads FILE as a blob of REPO straight to the registry's S3 bucket\n"
	"  through presigned URLs; prints its digest (sha256:<hex>).\n"
	"  --part-size: files above it go in parallel parts (default 64 MiB,\n"
	"  5 MiB .. 5 GiB); the registry chooses the part size itself.\n";

static const char *push_usage =
	"usage: " S3D_CLI_PUSH_SYNOPSIS
	"                [--part-size BYTES] [--concurrency N]\n"
	"                [--ca-file FILE] [--skip-verify]\n"
	"  Pushes the image (or image index) of an OCI image layout: its blobs\n"
	"  through presigned uploads, then its manifests; prints the digest of\n"
	"  the manifest tagged TAG.\n";

struct popts {
	const char *cmd;          /* "push-blob" or "push" */
	const char *usage;
	const char *registry;
	const char *ca_file;
	char *user;               /* copy of --user, wiped on exit */
	int skip_verify;
	long long part_size;
	int concurrency;
	const char *pos[2];
	int npos;
};

/* The signal that asked us to stop (0: none). */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

/* SIGINT and SIGTERM set interrupted; a second one ends the process as usual. */
static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* 128 + the signal (130 after Ctrl-C), as a shell reports a killed process. */
static int interrupted_exit(const char *cmd)
{
	s3d_cli_error(cmd, NULL, "interrupted");
	return 128 + interrupted;
}

static int usage(const struct popts *o, const char *why)
{
	if (why)
		s3d_cli_error(o->cmd, NULL, why);
	fputs(o->usage, stderr);
	return 2;
}

static void free_opts(struct popts *o)
{
	if (o->user) {
		OPENSSL_cleanse(o->user, strlen(o->user));
		free(o->user);
		o->user = NULL;
	}
}

static int parse_opts(int argc, char **argv, struct popts *o)
{
	static const struct option longopts[] = {
		{ "registry", required_argument, NULL, 'r' },
		{ "user", required_argument, NULL, 'u' },
		{ "part-size", required_argument, NULL, 'p' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "ca-file", required_argument, NULL, 'C' },
		{ "skip-verify", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long long v;
	char *colon;
	int ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'r': o->registry = optarg; break;
		case 'C': o->ca_file = optarg; break;
		case 's': o->skip_verify = 1; break;
		case 'u':
			free_opts(o);
			colon = strchr(optarg, ':');
			if (!colon || colon == optarg)
				return usage(o, "--user wants USER:PASSWORD");
			o->user = strdup(optarg);
			if (!o->user)
				return 1;
			/* keep the password out of ps: blank it in our own argv */
			memset(colon + 1, 'x', strlen(colon + 1));
			break;
		case 'p':
			if (!s3d_cli_parse_ll(optarg, &v) || v < (5LL << 20) || v > (5LL << 30))
				return usage(o, "--part-size wants 5242880 .. 5368709120 bytes");
			o->part_size = v;
			break;
		case 'c':
			if (!s3d_cli_parse_ll(optarg, &v) || v < 1 || v > 64)
				return usage(o, "--concurrency wants 1..64");
			o->concurrency = (int)v;
			break;
		case 'h':
			fputs(o->usage, stdout);
			return -1;
		default:
			return usage(o, optopt ? "unknown or incomplete option" : "unknown option");
		}
	}
	while (optind < argc) {
		if (o->npos == 2)
			return usage(o, "too many arguments");
		o->pos[o->npos++] = argv[optind++];
	}
	if (!o->registry)
		return usage(o, "--registry URL is required");
	if (o->npos != 2)
		return usage(o, "two arguments are required");
	return 0;
}

/* ---- progress ------------------------------------------------------------ */

struct bar {
	char label[40];
	int shown;
};

static void bar_draw(void *ud, int64_t sent, int64_t total)
{
	struct bar *b = ud;
	char cells[31];
	int fill, i, pct;

	pct = total > 0 ? (int)(sent * 100 / total) : 100;
	fill = total > 0 ? (int)(sent * 30 / total) : 30;
	for (i = 0; i < 30; i++)
		cells[i] = i < fill ? '#' : '.';
	cells[30] = 0;
	fprintf(stderr, "\r%-24s [%s] %3d%% %8.1f / %.1f MiB ", b->label, cells, pct,
		(double)sent / 1048576.0, (double)total / 1048576.0);
	fflush(stderr);
	b->shown = 1;
}

static void bar_end(struct bar *b)
{
	if (b->shown)
		fputc('\n', stderr);
	b->shown = 0;
}

/* A note on the terminal only (scripts see the digest and errors alone). */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	if (!isatty(STDERR_FILENO))
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

/* ---- errors ----------------------------------------------------------------- */

static int fail(const struct popts *o, const char *what, int rc, const s3d_error *err)
{
	char msg[1200];

	if (err && !err->code[0] && err->message[0])
		/* no server error code: ours says what went wrong */
		snprintf(msg, sizeof(msg), "%s: %s%s%s",
			 rc == S3D_E_PROTOCOL ? "unexpected answer" : s3d_strerror(rc), err->message,
			 err->resource[0] ? ", " : "", err->resource);
	else
		s3d_error_format(err, rc, msg, sizeof(msg));
	s3d_cli_error(o->cmd, what, msg);
	if (err && err->http_status == 401 && !o->user)
		fprintf(stderr, "s3d %s: the registry wants credentials: --user USER:PASSWORD\n",
			o->cmd);
	if ((rc == S3D_E_TRANSPORT || rc == S3D_E_TIMEOUT) && !strstr(o->registry, "://"))
		fprintf(stderr, "s3d %s: %s was given without a scheme: https is assumed "
			"(a plain-HTTP registry needs http://)\n", o->cmd, o->registry);
	return 1;
}

/* A local file of the layout is not what it should be. */
static int fail_local(const struct popts *o, const char *path, int rc, const s3d_error *err)
{
	return s3d_cli_error(o->cmd, path, err->message[0] ? err->message : s3d_strerror(rc));
}

static int fail_errno(const struct popts *o, const char *what, const char *path, int e)
{
	fprintf(stderr, "s3d %s: %s %s: %s\n", o->cmd, what, path, strerror(e));
	return 1;
}

/* ---- helpers ---------------------------------------------------------------- */

static int open_registry(const struct popts *o, s3d_reg **r)
{
	s3d_reg_config cfg;
	s3d_error err;
	char *url = NULL;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	if (!strstr(o->registry, "://")) {
		/* "host:port" alone: https, as the container tools assume */
		url = malloc(strlen(o->registry) + 9);
		if (!url)
			return 1;
		sprintf(url, "https://%s", o->registry);
	}
	cfg.url = url ? url : o->registry;
	cfg.user = o->user;
	cfg.skip_verify = o->skip_verify;
	cfg.ca_file = o->ca_file;
	s3d_error_clear(&err);
	rc = s3d_reg_open(&cfg, r, &err);
	free(url);
	if (rc != S3D_OK) {
		s3d_cli_error(o->cmd, NULL, err.message[0] ? err.message : s3d_strerror(rc));
		return rc == S3D_E_INVAL ? 2 : 1;
	}
	return 0;
}

static void push_opts(const struct popts *o, struct bar *b, s3d_reg_push_opts *po)
{
	memset(po, 0, sizeof(*po));
	po->threshold = o->part_size;
	po->concurrency = o->concurrency;
	po->stop = &interrupted;
	if (isatty(STDERR_FILENO)) {
		po->progress = bar_draw;
		po->progress_ud = b;
	}
}

/* ---- push-blob ---------------------------------------------------------------- */

int s3d_cmd_push_blob(int argc, char **argv)
{
	struct popts o;
	s3d_reg_push_opts po;
	s3d_reg *r = NULL;
	s3d_error err;
	struct stat st;
	struct bar b;
	char digest[80];
	int64_t size = 0;
	int fd = -1, exists = 0, rc;

	memset(&o, 0, sizeof(o));
	o.cmd = "push-blob";
	o.usage = push_blob_usage;
	rc = parse_opts(argc, argv, &o);
	if (rc != 0)
		goto out;
	if (!s3d_reg_valid_repo(o.pos[0])) {
		rc = usage(&o, "REPO is not a valid repository name");
		goto out;
	}
	fd = open(o.pos[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = fail_errno(&o, "cannot open", o.pos[1], errno);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = fail_errno(&o, "cannot upload", o.pos[1], EINVAL);
		goto out;
	}
	errno = 0;
	rc = s3d_reg_digest_fd(fd, digest, &size);
	if (rc != S3D_OK) {
		rc = fail_errno(&o, "cannot read", o.pos[1], rc == S3D_E_IO && errno ? errno : EIO);
		goto out;
	}
	rc = open_registry(&o, &r);
	if (rc != 0)
		goto out;
	/* from here on a session may be open: Ctrl-C cancels it */
	catch_signals();
	s3d_error_clear(&err);
	rc = s3d_reg_blob_exists(r, o.pos[0], digest, &exists, &err);
	if (rc != S3D_OK) {
		rc = fail(&o, NULL, rc, &err);
		goto out;
	}
	if (exists) {
		note("%s: already in %s, not uploaded\n", digest, o.pos[0]);
	} else {
		memset(&b, 0, sizeof(b));
		snprintf(b.label, sizeof(b.label), "%.19s", digest);
		push_opts(&o, &b, &po);
		s3d_error_clear(&err);
		rc = s3d_reg_push_blob(r, o.pos[0], fd, size, digest, &po, &err);
		bar_end(&b);
		if (rc != S3D_OK && !interrupted) {
			rc = fail(&o, NULL, rc, &err);
			goto out;
		}
	}
	/* a signal after the blob was stored interrupted nothing */
	if (interrupted && rc != S3D_OK) {
		rc = interrupted_exit(o.cmd);
		goto out;
	}
	printf("%s\n", digest);
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	if (rc < 0)
		rc = 0; /* --help */
	if (fd >= 0)
		close(fd);
	s3d_reg_close(r);
	free_opts(&o);
	return rc;
}

/* ---- push ---------------------------------------------------------------------- */

struct push {
	const struct popts *o;
	s3d_reg *r;
	const char *dir;
	char repo[256];
	char tag[129];
};

/* dir/name (name without a leading '/'), into out (PATH_MAX). */
static int layout_path(const struct push *p, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", p->dir, name);

	return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int blob_path(const struct push *p, const char *digest, char *out, size_t cap)
{
	char name[128];

	snprintf(name, sizeof(name), "blobs/sha256/%s", digest + 7);
	return layout_path(p, name, out, cap);
}

/* A whole small file of the layout into out (bounded by out->max). */
static int read_small(const struct push *p, const char *path, s3d_buf *out)
{
	struct stat st;
	ssize_t got;
	int fd, rc = 1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		fail_errno(p->o, "cannot open", path, errno);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > out->max) {
		fprintf(stderr, "s3d push: %s: not a regular file of at most %zu bytes\n", path,
			out->max);
		goto out;
	}
	s3d_buf_reset(out);
	if (s3d_buf_reserve(out, (size_t)st.st_size) != S3D_OK)
		goto out;
	while (out->len < (size_t)st.st_size) {
		got = read(fd, out->ptr + out->len, (size_t)st.st_size - out->len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			fail_errno(p->o, "cannot read", path, got < 0 ? errno : EIO);
			goto out;
		}
		out->len += (size_t)got;
	}
	out->ptr[out->len] = 0;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static int same_digest(const s3d_buf *b, const char *digest)
{
	char got[80] = "sha256:";

	return s3d_sha256_hex(b->len ? (const void *)b->ptr : "", b->len, got + 7) == S3D_OK &&
	       strcmp(got, digest) == 0;
}

/* One config or layer blob: skipped when the registry has it. */
static int push_layout_blob(struct push *p, const s3d_reg_desc *d)
{
	char path[4096], what[120];
	s3d_reg_push_opts po;
	s3d_error err;
	struct stat st;
	struct bar b;
	int fd = -1, exists = 0, rc;

	if (interrupted)
		return 1;
	snprintf(what, sizeof(what), "blob %s", d->digest);
	if (blob_path(p, d->digest, path, sizeof(path)) != 0)
		return fail_errno(p->o, "path too long:", p->dir, ENAMETOOLONG);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && d->foreign) {
		note("%.19s: non-distributable layer not in the layout, skipped\n", d->digest);
		return 0;
	}
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = fail_errno(p->o, "cannot open", path, errno);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size != d->size) {
		fprintf(stderr, "s3d push: %s: %lld bytes, but the manifest says %lld\n", path,
			(long long)st.st_size, (long long)d->size);
		rc = 1;
		goto out;
	}
	s3d_error_clear(&err);
	rc = s3d_reg_blob_exists(p->r, p->repo, d->digest, &exists, &err);
	if (rc != S3D_OK) {
		rc = fail(p->o, what, rc, &err);
		goto out;
	}
	if (exists) {
		note("%.19s: already in the registry\n", d->digest);
		rc = 0;
		goto out;
	}
	memset(&b, 0, sizeof(b));
	snprintf(b.label, sizeof(b.label), "%.19s", d->digest);
	push_opts(p->o, &b, &po);
	s3d_error_clear(&err);
	rc = s3d_reg_push_blob(p->r, p->repo, fd, d->size, d->digest, &po, &err);
	bar_end(&b);
	if (rc != S3D_OK && interrupted)
		rc = 1; /* said once, by s3d_cmd_push */
	else
		rc = rc == S3D_OK ? 0 : fail(p->o, what, rc, &err);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* known: the body's digest when we checked it already (else computed). */
static int put_manifest(struct push *p, const char *ref, const char *media_type,
			const s3d_buf *body, const char *known, char digest[80])
{
	char what[400];
	s3d_error err;
	int rc;

	if (interrupted)
		return 1;
	snprintf(what, sizeof(what), "manifest %s:%s", p->repo, ref);
	s3d_error_clear(&err);
	if (known) {
		rc = s3d_reg_put_manifest_as(p->r, p->repo, ref, media_type, body->ptr, body->len,
					     known, &err);
		if (rc == S3D_OK)
			snprintf(digest, 80, "%s", known);
	} else {
		rc = s3d_reg_put_manifest(p->r, p->repo, ref, media_type, body->ptr, body->len,
					  digest, &err);
	}
	return rc == S3D_OK ? 0 : fail(p->o, what, rc, &err);
}

static int push_manifest(struct push *p, const s3d_reg_desc *d, const char *ref, int depth,
			 char digest[80]);

/* The children of an index (by digest), then the index itself. */
static int push_children(struct push *p, const s3d_reg_manifest *m, int depth)
{
	char ignored[80];
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < m->ndescs; i++)
		rc = push_manifest(p, &m->descs[i], m->descs[i].digest, depth + 1, ignored);
	return rc;
}

/* The manifest (or index) of descriptor d, everything it refers to first. */
static int push_manifest(struct push *p, const s3d_reg_desc *d, const char *ref, int depth,
			 char digest[80])
{
	char path[4096];
	s3d_reg_manifest m;
	s3d_error err;
	s3d_buf body;
	size_t i;
	int rc;

	if (depth > MAX_DEPTH) {
		fprintf(stderr, "s3d push: indexes nested deeper than %d\n", MAX_DEPTH);
		return 1;
	}
	s3d_reg_manifest_init(&m);
	s3d_buf_init(&body, S3D_REG_JSON_MAX);
	rc = blob_path(p, d->digest, path, sizeof(path)) != 0 ? 1 : read_small(p, path, &body);
	if (rc != 0)
		goto out;
	if ((int64_t)body.len != d->size || !same_digest(&body, d->digest)) {
		fprintf(stderr, "s3d push: %s does not match its digest and size\n", path);
		rc = 1;
		goto out;
	}
	s3d_error_clear(&err);
	rc = s3d_reg_parse_manifest(body.ptr, body.len, &m, &err);
	if (rc != S3D_OK) {
		rc = fail_local(p->o, path, rc, &err);
		goto out;
	}
	if (m.is_index)
		rc = push_children(p, &m, depth);
	for (i = 0; rc == 0 && !m.is_index && i < m.ndescs; i++)
		rc = push_layout_blob(p, &m.descs[i]);
	if (rc == 0)
		rc = put_manifest(p, ref, m.media_type[0] ? m.media_type : d->media_type, &body,
				  d->digest, digest);
out:
	s3d_reg_manifest_cleanup(&m);
	s3d_buf_cleanup(&body);
	return rc;
}

/* REPO:TAG (the tag after the last ':' that follows the last '/'). */
static int split_ref(struct push *p, const char *ref)
{
	const char *slash = strrchr(ref, '/'), *colon = strrchr(ref, ':');

	if (!colon || (slash && colon < slash) || (size_t)(colon - ref) >= sizeof(p->repo) ||
	    strlen(colon + 1) >= sizeof(p->tag))
		return -1;
	memcpy(p->repo, ref, (size_t)(colon - ref));
	p->repo[colon - ref] = 0;
	strcpy(p->tag, colon + 1);
	return s3d_reg_valid_repo(p->repo) && s3d_reg_valid_tag(p->tag) ? 0 : -1;
}

/* Several entries in index.json: they become one image index under TAG. */
static int push_layout_index(struct push *p, const s3d_buf *index_json,
			     const s3d_reg_manifest *index, char digest[80])
{
	s3d_error err;
	s3d_buf body;
	int rc;

	s3d_buf_init(&body, S3D_REG_JSON_MAX);
	s3d_error_clear(&err);
	rc = s3d_reg_build_index(index_json->ptr, index_json->len, &body, &err);
	if (rc != S3D_OK)
		rc = fail_local(p->o, "index.json", rc, &err);
	else
		rc = push_children(p, index, 0);
	if (rc == 0)
		rc = put_manifest(p, p->tag, "application/vnd.oci.image.index.v1+json", &body,
				  NULL, digest);
	s3d_buf_cleanup(&body);
	return rc;
}

static int push_layout(struct push *p, char digest[80])
{
	char path[4096];
	s3d_reg_manifest index;
	s3d_error err;
	s3d_buf buf;
	int rc;

	s3d_reg_manifest_init(&index);
	s3d_buf_init(&buf, S3D_REG_JSON_MAX);
	rc = layout_path(p, "oci-layout", path, sizeof(path)) != 0 ? 1 : read_small(p, path, &buf);
	if (rc != 0)
		goto out;
	s3d_error_clear(&err);
	rc = s3d_reg_parse_oci_layout(buf.ptr, buf.len, &err);
	if (rc != S3D_OK) {
		rc = fail_local(p->o, path, rc, &err);
		goto out;
	}
	rc = layout_path(p, "index.json", path, sizeof(path)) != 0 ? 1 : read_small(p, path, &buf);
	if (rc != 0)
		goto out;
	s3d_error_clear(&err);
	rc = s3d_reg_parse_manifest(buf.ptr, buf.len, &index, &err);
	if (rc == S3D_OK && (!index.is_index || index.ndescs == 0)) {
		snprintf(err.message, sizeof(err.message), "no manifests listed");
		rc = S3D_E_PROTOCOL;
	}
	if (rc != S3D_OK) {
		rc = fail_local(p->o, path, rc, &err);
		goto out;
	}
	if (index.ndescs == 1)
		rc = push_manifest(p, &index.descs[0], p->tag, 0, digest);
	else
		rc = push_layout_index(p, &buf, &index, digest);
out:
	s3d_reg_manifest_cleanup(&index);
	s3d_buf_cleanup(&buf);
	return rc;
}

int s3d_cmd_push(int argc, char **argv)
{
	struct popts o;
	struct push p;
	char digest[80] = "";
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&p, 0, sizeof(p));
	o.cmd = "push";
	o.usage = push_usage;
	rc = parse_opts(argc, argv, &o);
	if (rc != 0)
		goto out;
	p.o = &o;
	p.dir = o.pos[0];
	if (split_ref(&p, o.pos[1]) != 0) {
		rc = usage(&o, "the second argument must be REPO:TAG (a valid name and tag)");
		goto out;
	}
	rc = open_registry(&o, &p.r);
	if (rc == 0) {
		catch_signals();
		rc = push_layout(&p, digest);
		if (interrupted && rc != 0) /* after the manifest: nothing interrupted */
			rc = interrupted_exit(o.cmd);
	}
	if (rc == 0) {
		printf("%s\n", digest);
		rc = fflush(stdout) == 0 ? 0 : 1;
	}
out:
	if (rc < 0)
		rc = 0; /* --help */
	s3d_reg_close(p.r);
	free_opts(&o);
	return rc;
}
