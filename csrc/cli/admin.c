/*
 * s3d gc and s3d sessions: the presigned upload sessions of a registry,
 * from its configuration file (csrc/regconfig.c reads it as the registry
 * does: same parameters, defaults and REGISTRY_STORAGE_S3DIRECT_* /
 * AWS_* environment).
 *
 *   s3d gc --config FILE [--json]
 *       One s3d_service_sweep, the registry's sweeper: expires the sessions
 *       past their end (this node's index and every S3 marker), aborts their
 *       multipart uploads, deletes their temp objects and markers, and
 *       removes orphans under the private uploads prefix older than
 *       sessionttl. Prints the counts.
 *
 *   s3d sessions --config FILE [--json] [--index-only]
 *       The sessions of the node's index (sessionindex), plus those only
 *       known from an S3 marker (<root>/_s3direct/sessions/<uuid>: open
 *       sessions of other registry processes), one GET per such marker.
 *       --index-only skips S3.
 *
 * Nothing secret is printed: no credentials, no presigned URL (sessions do
 * not hold any). Exit codes: 0 success, 1 runtime error (the configuration,
 * the index, S3: code, message and request id printed), 2 usage error.
 */
#include "cmd.h"
#include "common.h"

#include "regconfig.h"
#include "s3direct.h"
#include "service.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_SESSIONS 100000           /* listed at most */
#define MARKER_MAX (64u * 1024u)      /* bytes of one marker read */
#define KEY_MAX 2048

struct admin_opts {
	const char *config;
	int json;
	int index_only;
};

static int admin_usage(const char *cmd, const char *why, int code)
{
	FILE *out = code ? stderr : stdout;

	if (why)
		s3d_cli_error(cmd, NULL, why);
	if (strcmp(cmd, "gc") == 0)
		fputs("usage: " S3D_CLI_GC_SYNOPSIS
		      "  expires the presigned upload sessions past their end and removes what\n"
		      "  they uploaded (the registry's sweeper, once); prints the counts\n", out);
	else
		fputs("usage: " S3D_CLI_SESSIONS_SYNOPSIS
		      "  lists the presigned upload sessions of the node's session index and\n"
		      "  those only known from S3 markers (--index-only: the index alone)\n", out);
	fputs("  REGISTRY_CONFIG is the registry's configuration file (storage: s3direct:);\n"
	      "  REGISTRY_STORAGE_S3DIRECT_* and AWS_* environment variables apply as in\n"
	      "  the registry; a relative sessionindex is relative to the current directory\n",
	      out);
	return code;
}

/* 0 parsed, else the exit code (2 usage, 0 after --help). */
static int admin_parse(const char *cmd, int argc, char **argv, struct admin_opts *o, int *done)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "index-only", no_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char why[128];
	int ch;

	memset(o, 0, sizeof(*o));
	*done = 0;
	optind = 0; /* glibc: start over (s3d may have parsed before) */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'i':
			if (strcmp(cmd, "sessions") != 0)
				return *done = 1, admin_usage(cmd, "unknown option --index-only", 2);
			o->index_only = 1;
			break;
		case 'h':
			*done = 1;
			return admin_usage(cmd, NULL, 0);
		default:
			snprintf(why, sizeof(why), "unknown option or missing value: %.64s",
				 argv[optind - 1] ? argv[optind - 1] : "?");
			*done = 1;
			return admin_usage(cmd, why, 2);
		}
	}
	if (optind < argc) {
		snprintf(why, sizeof(why), "unexpected argument: %.64s", argv[optind]);
		*done = 1;
		return admin_usage(cmd, why, 2);
	}
	if (!o->config || !o->config[0]) {
		*done = 1;
		return admin_usage(cmd, "--config FILE is required", 2);
	}
	return 0;
}

static int admin_load(const char *cmd, const char *path, s3d_regconfig *cfg)
{
	s3d_error e;
	int rc;

	s3d_error_clear(&e);
	rc = s3d_regconfig_load(path, NULL, cfg, &e);
	if (rc == S3D_OK)
		return 0;
	/* the message already names the file, the parameter and why */
	return s3d_cli_error(cmd, NULL, e.message[0] ? e.message : s3d_strerror(rc));
}

static int admin_driver(const char *cmd, const s3d_regconfig *cfg, s3d_driver **d)
{
	char what[512];
	s3d_error e;
	int rc;

	s3d_error_clear(&e);
	rc = s3d_driver_new(&cfg->driver, d, &e);
	if (rc == S3D_OK)
		return 0;
	snprintf(what, sizeof(what), "bucket %.200s at %.200s", cfg->driver.bucket,
		 cfg->driver.client.endpoint);
	return s3d_cli_fail(cmd, what, rc, &e);
}

/*
 * 1 when the node's session index exists, 0 when it does not and need not
 * (ENOENT, required 0), -1 after "s3d CMD: WHAT: why". Never creates one
 * (s3d_service_new would): a wrong path would silently give an empty index.
 */
static int admin_index_found(const char *cmd, const char *what, const char *path,
			     int required)
{
	struct stat sb;

	if (stat(path, &sb) == 0)
		return 1;
	if (errno == ENOENT && !required)
		return 0;
	s3d_cli_error(cmd, what, strerror(errno));
	return -1;
}

/* ------------------------------------------------------------------ gc */

int s3d_cmd_gc(int argc, char **argv)
{
	struct admin_opts o;
	s3d_regconfig cfg;
	s3d_driver *d = NULL;
	s3d_service *svc = NULL;
	s3d_sweep_stats st;
	s3d_error e;
	char what[512];
	int code, done, rc;

	code = admin_parse("gc", argc, argv, &o, &done);
	if (done)
		return code;
	s3d_regconfig_init(&cfg);
	if ((code = admin_load("gc", o.config, &cfg)) != 0)
		goto out;
	if (!cfg.presign)
		fprintf(stderr, "s3d gc: note: presign is false in %s: sweeping what earlier "
				"sessions left\n", o.config);
	snprintf(what, sizeof(what), "session index %.300s (parameter sessionindex)",
		 cfg.service.index.path);
	if (admin_index_found("gc", what, cfg.service.index.path, 1) < 0) {
		code = 1;
		goto out;
	}
	if ((code = admin_driver("gc", &cfg, &d)) != 0)
		goto out;
	s3d_error_clear(&e);
	rc = s3d_service_new(d, &cfg.service, &svc, &e);
	if (rc != S3D_OK) {
		code = s3d_cli_fail("gc", what, rc, &e);
		goto out;
	}
	memset(&st, 0, sizeof(st));
	s3d_error_clear(&e);
	rc = s3d_service_sweep(svc, 0, &st, &e);
	if (rc != S3D_OK) {
		code = s3d_cli_fail("gc", "sweep", rc, &e);
		goto out;
	}
	if (o.json)
		printf("{\"expired\":%d,\"aborted_uploads\":%d,\"deleted_objects\":%d,\"errors\":%d,"
		       "\"pruned\":%d}\n",
		       st.expired, st.aborted_uploads, st.deleted_objects, st.errors, st.pruned);
	else
		printf("expired=%d aborted_uploads=%d deleted_objects=%d errors=%d pruned=%d\n",
		       st.expired, st.aborted_uploads, st.deleted_objects, st.errors, st.pruned);
	if (st.errors) {
		fprintf(stderr, "s3d gc: %d step%s failed (the next sweep retries %s; the "
				"registry's log or a second run shows the S3 error)\n",
			st.errors, st.errors == 1 ? "" : "s", st.errors == 1 ? "it" : "them");
		code = 1;
	}
out:
	s3d_service_free(svc);
	s3d_driver_free(d);
	s3d_regconfig_cleanup(&cfg);
	return code;
}

/* ------------------------------------------------------------ sessions */

enum { SRC_INDEX = 1, SRC_S3 = 2 };

struct row {
	s3d_session s;
	int src;
};

struct table {
	struct row *rows;
	size_t n, cap;
	size_t nindex;          /* rows[0..nindex): the index's, in uuid order */
	int truncated;
	int nomem;              /* a row could not be added: the list is short */
};

static int table_add(struct table *t, const s3d_session *s, int src)
{
	struct row *r;
	size_t cap;

	if (t->n >= MAX_SESSIONS) {
		t->truncated = 1;
		return 1;
	}
	if (t->n == t->cap) {
		cap = t->cap ? t->cap * 2 : 64;
		r = realloc(t->rows, cap * sizeof(*r));
		if (!r) {
			t->nomem = 1;
			return -1;
		}
		t->rows = r;
		t->cap = cap;
	}
	t->rows[t->n].s = *s;
	t->rows[t->n++].src = src;
	return 0;
}

/* The index's row of uuid (s3d_index_scan gives uuid order). */
static struct row *table_find(struct table *t, const char *uuid)
{
	size_t lo = 0, hi = t->nindex, mid;
	int d;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		d = strcmp(t->rows[mid].s.uuid, uuid);
		if (d == 0)
			return &t->rows[mid];
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int from_index(void *ud, const s3d_session *s)
{
	return table_add(ud, s, SRC_INDEX) != 0;
}

struct marker_scan {
	struct table *t;
	s3d_client *c;
	const char *bucket;
	size_t prefix_len;
	int unreadable;
	int first_rc;
	s3d_error first_err;
};

static int marker_sink(void *ud, const uint8_t *p, size_t n)
{
	return s3d_buf_append(ud, p, n) != S3D_OK;
}

/* One marker key: known from the index, else read and decoded. */
static int from_marker(void *ud, const s3d_list_entry *e)
{
	struct marker_scan *m = ud;
	const char *uuid = e->key + m->prefix_len;
	struct row *r;
	s3d_session s;
	s3d_error err;
	s3d_buf body;
	int rc;

	if (e->kind != S3D_ENTRY_OBJECT || strlen(e->key) <= m->prefix_len ||
	    s3d_svc_check_uuid(uuid, NULL) != S3D_OK)
		return 0;
	r = table_find(m->t, uuid);
	if (r) {
		r->src |= SRC_S3;
		return 0;
	}
	if (m->t->n >= MAX_SESSIONS) {
		m->t->truncated = 1;
		return 1;
	}
	s3d_buf_init(&body, MARKER_MAX);
	s3d_error_clear(&err);
	rc = s3d_get_object(m->c, m->bucket, e->key, 0, -1, marker_sink, &body, NULL, &err);
	if (rc == S3D_OK && s3d_session_decode(body.ptr ? body.ptr : (const uint8_t *)"",
					       body.len, &s) == S3D_OK &&
	    strcmp(s.uuid, uuid) == 0) {
		table_add(m->t, &s, SRC_S3);
	} else if (rc == S3D_OK || rc == S3D_E_ABORTED) {
		m->unreadable++; /* not a marker s3d can read */
	} else if (rc != S3D_E_NOTFOUND && m->first_rc == S3D_OK) {
		m->first_rc = rc; /* NOTFOUND: ended meanwhile */
		m->first_err = err;
	}
	s3d_buf_cleanup(&body);
	return m->t->nomem;
}

static int by_created(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->s.created != y->s.created)
		return x->s.created < y->s.created ? -1 : 1;
	return strcmp(x->s.uuid, y->s.uuid);
}

static void fmt_time(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "-");
}

static const char *mode_name(int mode)
{
	return mode == S3D_MODE_SINGLE ? "single" : mode == S3D_MODE_MULTIPART ? "multipart" : "none";
}

static const char *source_name(int src)
{
	return src == (SRC_INDEX | SRC_S3) ? "index+s3" : src == SRC_S3 ? "s3" : "index";
}

/* Open but past its end: the next sweep expires it. */
static int past_expiry(const s3d_session *s, int64_t now)
{
	return (S3D_SESSION_BIT(s->status) & (S3D_SVC_OPEN | S3D_SESSION_BIT(S3D_SESSION_FINALIZING))) &&
	       s->expires <= now;
}

static json_t *json_str_or_null(const char *s)
{
	return s && s[0] ? json_string(s) : json_null();
}

static json_t *json_size(int64_t v)
{
	return v >= 0 ? json_integer((json_int_t)v) : json_null();
}

static int print_json(const struct table *t, const s3d_regconfig *cfg, int index_found,
		      int markers, int64_t now)
{
	json_t *root = json_object(), *list = json_array(), *o;
	char created[32], expires[32], updated[32];
	size_t i;
	int rc = 0;

	if (!root || !list)
		goto nomem;
	json_object_set_new(root, "index", json_string(cfg->service.index.path));
	json_object_set_new(root, "index_found", json_boolean(index_found));
	json_object_set_new(root, "markers_listed", json_boolean(markers));
	json_object_set_new(root, "truncated", json_boolean(t->truncated));
	for (i = 0; i < t->n; i++) {
		const s3d_session *s = &t->rows[i].s;

		fmt_time(s->created, created);
		fmt_time(s->expires, expires);
		fmt_time(s->updated, updated);
		o = json_pack("{s:s, s:s, s:o, s:s, s:s, s:b, s:s, s:o, s:o, s:o, s:o, s:o, s:I,"
			      " s:s, s:s, s:s, s:b, s:o, s:s}",
			      "uuid", s->uuid, "repository", s->repo, "user", json_str_or_null(s->user),
			      "status", s3d_session_status_name(s->status), "mode", mode_name(s->mode),
			      "direct", s->direct, "key", s->key,
			      "upload_id", json_str_or_null(s->upload_id),
			      "declared_digest", json_str_or_null(s->declared_digest),
			      "declared_size", json_size(s->declared_size),
			      "final_digest", json_str_or_null(s->final_digest),
			      "final_size", json_size(s->final_size), "part_size", (json_int_t)s->part_size,
			      "created", created, "expires", expires, "updated", updated,
			      "past_expiry", past_expiry(s, now), "detail", json_str_or_null(s->detail),
			      "source", source_name(t->rows[i].src));
		if (!o || json_array_append_new(list, o) != 0)
			goto nomem;
	}
	json_object_set_new(root, "sessions", list);
	list = NULL;
	if (json_dumpf(root, stdout, JSON_INDENT(2)) != 0 || fputc('\n', stdout) == EOF)
		rc = 1;
	json_decref(root);
	return rc;
nomem:
	json_decref(list);
	json_decref(root);
	fputs("s3d sessions: out of memory\n", stderr);
	return 1;
}

/* A column-aligned table: widths from the data. */
#define NCOLS 9
static int print_text(const struct table *t, int64_t now)
{
	static const char *const heads[NCOLS] = { "UUID", "REPOSITORY", "STATUS", "MODE", "CREATED",
						   "EXPIRES", "DIGEST", "SIZE", "SOURCE" };
	size_t w[NCOLS], i, k, past = 0;
	char cells[NCOLS][300];

	for (k = 0; k < NCOLS; k++)
		w[k] = strlen(heads[k]);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			for (k = 0; k < NCOLS; k++)
				printf("%-*s%s", k + 1 < NCOLS ? (int)w[k] : 0, heads[k],
				       k + 1 < NCOLS ? "  " : "\n");
		}
		for (i = 0; i < t->n; i++) {
			const s3d_session *s = &t->rows[i].s;
			const char *digest = s->final_digest[0] ? s->final_digest : s->declared_digest;
			int64_t size = s->final_size >= 0 ? s->final_size : s->declared_size;
			int late = past_expiry(s, now);

			snprintf(cells[0], sizeof(cells[0]), "%s", s->uuid);
			snprintf(cells[1], sizeof(cells[1]), "%s", s->repo);
			snprintf(cells[2], sizeof(cells[2]), "%s%s", s3d_session_status_name(s->status),
				 late ? "*" : "");
			snprintf(cells[3], sizeof(cells[3]), "%s", mode_name(s->mode));
			fmt_time(s->created, cells[4]);
			fmt_time(s->expires, cells[5]);
			snprintf(cells[6], sizeof(cells[6]), "%s%s", digest[0] ? digest : "-",
				 digest[0] && !s->final_digest[0] ? " (declared)" : "");
			if (size >= 0)
				snprintf(cells[7], sizeof(cells[7]), "%lld%s", (long long)size,
					 s->final_size < 0 ? " (declared)" : "");
			else
				snprintf(cells[7], sizeof(cells[7]), "-");
			snprintf(cells[8], sizeof(cells[8]), "%s", source_name(t->rows[i].src));
			for (k = 0; k < NCOLS; k++) {
				if (pass == 0 && strlen(cells[k]) > w[k])
					w[k] = strlen(cells[k]);
				if (pass == 1)
					printf("%-*s%s", k + 1 < NCOLS ? (int)w[k] : 0, cells[k],
					       k + 1 < NCOLS ? "  " : "\n");
			}
			past += pass == 1 && late;
		}
	}
	if (past)
		printf("* past its end: the next sweep (the registry's, or s3d gc) expires it\n");
	return fflush(stdout) != 0 || ferror(stdout) ? 1 : 0;
}

/* Every marker below <root>/_s3direct/sessions/. */
static int scan_markers(s3d_driver *d, const s3d_regconfig *cfg, struct table *t,
			struct marker_scan *m, s3d_error *e)
{
	char prefix[KEY_MAX];
	s3d_list_opts lo;
	int n;

	n = snprintf(prefix, sizeof(prefix), "%s%s%s", cfg->driver.root,
		     cfg->driver.root[0] ? "/" : "", S3D_SVC_SESSIONS_DIR);
	if (n < 0 || (size_t)n >= sizeof(prefix))
		return S3D_E_TOOBIG;
	memset(m, 0, sizeof(*m));
	m->t = t;
	m->c = s3d_driver_client(d);
	m->bucket = cfg->driver.bucket;
	m->prefix_len = (size_t)n;
	memset(&lo, 0, sizeof(lo));
	lo.prefix = prefix;
	return s3d_list_objects(m->c, m->bucket, &lo, from_marker, m, e);
}

int s3d_cmd_sessions(int argc, char **argv)
{
	struct admin_opts o;
	struct marker_scan m;
	struct table t;
	s3d_regconfig cfg;
	s3d_driver *d = NULL;
	s3d_index *ix = NULL;
	s3d_error e;
	char what[512];
	int code, done, rc, index_found;
	int64_t now = (int64_t)time(NULL);

	code = admin_parse("sessions", argc, argv, &o, &done);
	if (done)
		return code;
	memset(&t, 0, sizeof(t));
	s3d_regconfig_init(&cfg);
	if ((code = admin_load("sessions", o.config, &cfg)) != 0)
		goto out;
	snprintf(what, sizeof(what), "session index %.300s (parameter sessionindex)",
		 cfg.service.index.path);
	index_found = admin_index_found("sessions", what, cfg.service.index.path, o.index_only);
	if (index_found < 0) {
		code = 1;
		goto out;
	}
	if (!index_found)
		fprintf(stderr, "s3d sessions: note: no %s on this machine: showing the S3 markers "
				"only (a relative path is relative to the current directory)\n", what);
	if (index_found) {
		s3d_error_clear(&e);
		rc = s3d_index_open(&cfg.service.index, &ix, &e);
		if (rc == S3D_OK)
			rc = s3d_index_scan(ix, from_index, &t, &e);
		if (rc == S3D_OK && t.nomem) /* the scan stopped early, not at the end */
			rc = S3D_E_NOMEM;
		t.nindex = t.n;
		if (rc != S3D_OK) {
			code = s3d_cli_fail("sessions", what, rc, &e);
			goto out;
		}
	}
	if (!o.index_only) {
		if ((code = admin_driver("sessions", &cfg, &d)) != 0)
			goto out;
		s3d_error_clear(&e);
		rc = scan_markers(d, &cfg, &t, &m, &e);
		if (rc == S3D_OK && t.nomem)
			rc = S3D_E_NOMEM;
		if (rc != S3D_OK) {
			code = s3d_cli_fail("sessions", "listing the session markers", rc, &e);
			goto out;
		}
		if (m.first_rc != S3D_OK) {
			code = s3d_cli_fail("sessions", "reading a session marker", m.first_rc,
					  &m.first_err);
			goto out;
		}
		if (m.unreadable)
			fprintf(stderr, "s3d sessions: note: %d marker%s could not be read as a "
					"session (skipped)\n", m.unreadable, m.unreadable == 1 ? "" : "s");
	}
	if (t.truncated)
		fprintf(stderr, "s3d sessions: note: more than %d sessions: the first %d shown\n",
			MAX_SESSIONS, MAX_SESSIONS);
	if (t.n > 1)
		qsort(t.rows, t.n, sizeof(*t.rows), by_created);
	if (o.json)
		code = print_json(&t, &cfg, index_found, !o.index_only, now);
	else
		code = print_text(&t, now);
out:
	s3d_index_close(ix);
	s3d_driver_free(d);
	s3d_regconfig_cleanup(&cfg);
	free(t.rows);
	return code;
}
