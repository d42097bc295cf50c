/*
 * Expiry of presigned upload sessions (sweep.c) against a live S3 server
 * (versitygw started by tests/with-s3.sh). Sessions are made the way the
 * registry makes them (the stock upload's startedat, then presign) and their
 * bytes sent through the presigned URLs; a sweep "later" is a sweep with a
 * `now` past the session TTL. Every case works below its own root directory,
 * so that one case's sweep never sees another's objects. Hostile input first.
 */
#include "t.h"
#include "t_s3.h"
#include "t_svc.h"

#define TTL 86400
#define MiB (1024ll * 1024)

/* ---- helpers ---------------------------------------------------------------- */

/* The stock POST (startedat), then a presign at now (0: the clock) with
 * digest/size (NULL/-1: none) in single mode, or multipart with parts URLs.
 * 0 on success; r holds the URLs. */
static int open_session(s3d_driver *d, s3d_service *svc, char uuid[40], const char *digest,
			int64_t size, int parts, time_t now, s3d_presign_result *r)
{
	s3d_presign_request rq;
	s3d_error err;

	if (t_stock_upload(d, "it/app", uuid) != 0)
		return -1;
	memset(&rq, 0, sizeof(rq));
	rq.repo = "it/app";
	rq.uuid = uuid;
	rq.digest = digest;
	rq.size = size;
	rq.multipart = parts > 0;
	rq.parts = parts;
	rq.now = now;
	s3d_error_clear(&err);
	if (s3d_service_presign(svc, &rq, r, &err) != S3D_OK) {
		fprintf(stderr, "  presign: %s\n", err.message);
		return -1;
	}
	return 0;
}

static int sweep(s3d_service *svc, time_t now, s3d_sweep_stats *st)
{
	s3d_error err;
	int rc;

	s3d_error_clear(&err);
	memset(st, 0x7f, sizeof(*st)); /* the sweep zeroes it */
	rc = s3d_service_sweep(svc, now, st, &err);
	if (rc != S3D_OK || st->errors)
		fprintf(stderr, "    sweep: rc %d, %d errors, %s\n", rc, st->errors, err.message);
	return rc;
}

#define T_STATS(st, exp, ab, del, errs)                                      \
	do {                                                                 \
		T_EQ_INT(exp, (st).expired);                                 \
		T_EQ_INT(ab, (st).aborted_uploads);                          \
		T_EQ_INT(del, (st).deleted_objects);                         \
		T_EQ_INT(errs, (st).errors);                                 \
	} while (0)

/* The private area of root holds nothing of any session. */
static void t_private_empty(const char *root)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/_s3direct/sessions/", root);
	T_EQ_INT(0, t_objects_under(p));
	snprintf(p, sizeof(p), "%s/_s3direct/uploads/", root);
	T_EQ_INT(0, t_objects_under(p));
	T_EQ_INT(0, t_uploads_under(p));
}

/* ---- hostile and empty ------------------------------------------------------------ */

static void test_hostile_and_junk(void)
{
	s3d_driver *d = t_svc_driver(NULL, "sw-junk");
	s3d_service *svc = t_svc_open(d, NULL);
	s3d_sweep_stats st;
	s3d_error err;
	char uuid[40], key[256], nested[256], odd[256], tails[256];
	time_t now = time(NULL);

	T_REQUIRE(svc);
	T_EQ_INT(S3D_E_INVAL, s3d_service_sweep(NULL, 0, &st, &err));
	/* nothing at all */
	T_EQ_INT(S3D_OK, sweep(svc, 0, &st));
	T_STATS(st, 0, 0, 0, 0);
	T_EQ_INT(S3D_OK, s3d_service_sweep(svc, 0, NULL, &err));

	/* a marker that does not decode, keys that name no session, the
	 * writer's tails area */
	t_uuid(uuid);
	snprintf(key, sizeof(key), "sw-junk/_s3direct/sessions/%s", uuid);
	T_REQUIRE(t_put_object(key, "garbage", 7) == S3D_OK);
	snprintf(nested, sizeof(nested), "sw-junk/_s3direct/uploads/%s/nested", uuid);
	T_REQUIRE(t_put_object(nested, "x", 1) == S3D_OK);
	snprintf(odd, sizeof(odd), "sw-junk/_s3direct/sessions/not.a.uuid");
	T_REQUIRE(t_put_object(odd, "x", 1) == S3D_OK);
	snprintf(tails, sizeof(tails), "sw-junk/_s3direct/tails/x");
	T_REQUIRE(t_put_object(tails, "x", 1) == S3D_OK);

	/* young: kept */
	T_EQ_INT(S3D_OK, sweep(svc, 0, &st));
	T_STATS(st, 0, 0, 0, 0);
	T_TRUE(t_exists(key));
	/* older than any session: the bad marker goes, the rest stays */
	T_EQ_INT(S3D_OK, sweep(svc, now + TTL + 60, &st));
	T_STATS(st, 0, 0, 1, 0);
	T_TRUE(!t_exists(key));
	T_TRUE(t_exists(nested));
	T_TRUE(t_exists(odd));
	T_TRUE(t_exists(tails));
	T_EQ_INT(S3D_OK, sweep(svc, now + TTL + 60, &st));
	T_STATS(st, 0, 0, 0, 0);

	s3d_service_free(svc);
	s3d_driver_free(d);
}

/* ---- expiry through the index ------------------------------------------------------ */

static void test_expires_own_sessions(void)
{
	s3d_driver *d = t_svc_driver(NULL, "sw-exp");
	s3d_service *svc = t_svc_open(d, NULL);
	s3d_presign_result r;
	s3d_presign_request rq;
	s3d_upload_status ust;
	s3d_sweep_stats st;
	s3d_session s;
	s3d_stat sst;
	s3d_error err;
	char single[40], mp[40], direct[40], empty[40], live[40], digest[80], bkey[1024],
		path[512], tkey[256];
	uint8_t *data = t_make_pattern(4000, 61);
	time_t now = time(NULL), later = now + TTL + 10;
	size_t i;

	T_REQUIRE(svc && data);
	s3d_presign_result_init(&r);

	/* single with bytes at its temp key */
	T_REQUIRE(open_session(d, svc, single, NULL, -1, 0, 0, &r) == 0);
	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, 1000, NULL));
	/* multipart with two parts */
	T_REQUIRE(open_session(d, svc, mp, NULL, -1, 2, 0, &r) == 0);
	T_EQ_INT(200, t_http_put(t_part_url(&r, 0), NULL, NULL, data, 1000, NULL));
	T_EQ_INT(200, t_http_put(t_part_url(&r, 1), NULL, NULL, data + 1000, 1000, NULL));
	/* direct: the bytes at the blob's key */
	t_digest_of(data, 4000, digest, NULL);
	T_REQUIRE(open_session(d, svc, direct, digest, 4000, 0, 0, &r) == 0);
	T_TRUE(r.session.direct);
	snprintf(bkey, sizeof(bkey), "%s", r.session.key);
	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, 4000, NULL));
	T_TRUE(t_exists(bkey));
	/* presigned, nothing sent */
	T_REQUIRE(open_session(d, svc, empty, NULL, -1, 0, 0, &r) == 0);
	/* opened later: still running at `later` */
	T_REQUIRE(open_session(d, svc, live, NULL, -1, 1, now + 30, &r) == 0);

	T_EQ_INT(5, t_objects_under("sw-exp/_s3direct/sessions/"));
	T_EQ_INT(1, t_objects_under("sw-exp/_s3direct/uploads/"));
	T_EQ_INT(2, t_uploads_under("sw-exp/_s3direct/uploads/"));

	/* nothing is due yet */
	T_EQ_INT(S3D_OK, sweep(svc, 0, &st));
	T_STATS(st, 0, 0, 0, 0);
	T_EQ_INT(5, t_objects_under("sw-exp/_s3direct/sessions/"));
	T_EQ_INT(2, t_uploads_under("sw-exp/_s3direct/uploads/"));

	/* later: four expire, each counted once: one upload aborted, one temp
	 * object and four markers deleted */
	T_EQ_INT(S3D_OK, sweep(svc, later, &st));
	T_STATS(st, 4, 1, 5, 0);
	T_EQ_INT(1, t_objects_under("sw-exp/_s3direct/sessions/"));
	T_EQ_INT(0, t_objects_under("sw-exp/_s3direct/uploads/"));
	T_EQ_INT(1, t_uploads_under("sw-exp/_s3direct/uploads/")); /* the live one's */
	snprintf(tkey, sizeof(tkey), "sw-exp/_s3direct/sessions/%s", live);
	T_TRUE(t_exists(tkey));
	{
		const char *gone[] = { single, mp, direct, empty };

		for (i = 0; i < 4; i++) {
			T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(svc), gone[i], &s, &err));
			T_EQ_INT(S3D_SESSION_EXPIRED, s.status);
			T_EQ_STR("expired", s.detail);
			t_upload_path(path, sizeof(path), "it/app", gone[i], "startedat");
			T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(d, path, &sst, &err));
		}
	}
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(svc), live, &s, &err));
	T_EQ_INT(S3D_SESSION_UPLOADING, s.status);
	/* the content-addressed blob is never the sweeper's */
	T_TRUE(t_exists(bkey));

	/* the expired sessions answer so */
	memset(&rq, 0, sizeof(rq));
	rq.repo = "it/app";
	rq.uuid = mp;
	rq.size = -1;
	rq.multipart = 1;
	rq.parts = 1;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_EXPIRED, s3d_service_presign(svc, &rq, &r, &err));
	memset(&ust, 0, sizeof(ust));
	T_EQ_INT(S3D_E_EXPIRED, s3d_service_status(svc, "it/app", single, &ust, &err));
	s3d_upload_status_cleanup(&ust);

	/* idempotent */
	T_EQ_INT(S3D_OK, sweep(svc, later, &st));
	T_STATS(st, 0, 0, 0, 0);
	T_EQ_INT(S3D_OK, sweep(svc, later + 5, &st));
	T_STATS(st, 0, 0, 0, 0);

	/* and the last one in its turn */
	T_EQ_INT(S3D_OK, sweep(svc, later + 60, &st));
	T_STATS(st, 1, 1, 1, 0);
	t_private_empty("sw-exp");
	T_TRUE(t_exists(bkey));
	T_EQ_INT(S3D_OK, sweep(svc, later + 60, &st));
	T_STATS(st, 0, 0, 0, 0);

	free(data);
	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
	s3d_driver_free(d);
}

/* ---- expiry through the markers ---------------------------------------------------- */

static void test_expires_other_process_sessions(void)
{
	s3d_driver *da = t_svc_driver(NULL, "sw-mark"), *db = t_svc_driver(NULL, "sw-mark");
	s3d_service *a = t_svc_open(da, NULL), *b = t_svc_open(db, NULL);
	s3d_presign_result r;
	s3d_sweep_stats st;
	s3d_session s;
	s3d_stat sst;
	s3d_error err;
	char single[40], mp[40], digest[80], bkey[1024], path[512], direct[40];
	uint8_t data[3000];
	time_t later = time(NULL) + TTL + 10;

	T_REQUIRE(a && b);
	s3d_presign_result_init(&r);
	t_fill(data, sizeof(data), 71);
	T_REQUIRE(open_session(da, a, single, NULL, -1, 0, 0, &r) == 0);
	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, 1000, NULL));
	T_REQUIRE(open_session(da, a, mp, NULL, -1, 3, 0, &r) == 0);
	T_EQ_INT(200, t_http_put(t_part_url(&r, 2), NULL, NULL, data, 1000, NULL));
	t_digest_of(data, sizeof(data), digest, NULL);
	T_REQUIRE(open_session(da, a, direct, digest, -1, 0, 0, &r) == 0);
	snprintf(bkey, sizeof(bkey), "%s", r.session.key);
	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), NULL));

	/* b never saw them: its sweep finds them through their markers */
	T_EQ_INT(S3D_OK, sweep(b, later, &st));
	T_STATS(st, 3, 1, 4, 0);
	t_private_empty("sw-mark");
	T_TRUE(t_exists(bkey));
	t_upload_path(path, sizeof(path), "it/app", mp, "startedat");
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(db, path, &sst, &err));
	T_EQ_INT(S3D_OK, sweep(b, later, &st));
	T_STATS(st, 0, 0, 0, 0);

	/* a's index still holds them open: a's sweep expires them there,
	 * with nothing left in S3 to remove */
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(a), mp, &s, &err));
	T_EQ_INT(S3D_SESSION_UPLOADING, s.status);
	T_EQ_INT(S3D_OK, sweep(a, later, &st));
	T_STATS(st, 3, 0, 0, 0);
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(a), mp, &s, &err));
	T_EQ_INT(S3D_SESSION_EXPIRED, s.status);
	T_EQ_INT(S3D_OK, sweep(a, later, &st));
	T_STATS(st, 0, 0, 0, 0);
	T_TRUE(t_exists(bkey));

	s3d_presign_result_cleanup(&r);
	s3d_service_free(b);
	s3d_service_free(a);
	s3d_driver_free(db);
	s3d_driver_free(da);
}

/* Two processes sweeping the same sessions at once. */
struct sweep_job {
	s3d_service *svc;
	time_t now;
	s3d_sweep_stats st;
	int rc;
};

static void *sweep_thread(void *ud)
{
	struct sweep_job *j = ud;
	s3d_error err;

	s3d_error_clear(&err);
	j->rc = s3d_service_sweep(j->svc, j->now, &j->st, &err);
	if (j->rc != S3D_OK || j->st.errors) {
		char text[512];

		s3d_error_format(&err, j->rc, text, sizeof(text));
		fprintf(stderr, "    sweep: rc %d, %d errors, %s\n", j->rc, j->st.errors, text);
	}
	return NULL;
}

static void test_concurrent_sweeps(void)
{
	s3d_driver *da = t_svc_driver(NULL, "sw-conc"), *db = t_svc_driver(NULL, "sw-conc");
	s3d_service *a = t_svc_open(da, NULL), *b = t_svc_open(db, NULL);
	s3d_presign_result r;
	struct sweep_job ja, jb;
	pthread_t ta, tb;
	char uuid[40];
	uint8_t data[500];
	int i;

	T_REQUIRE(a && b);
	s3d_presign_result_init(&r);
	t_fill(data, sizeof(data), 81);
	for (i = 0; i < 6; i++) {
		T_REQUIRE(open_session(da, a, uuid, NULL, -1, i % 2 ? 1 : 0, 0, &r) == 0);
		if (i % 2)
			T_EQ_INT(200, t_http_put(t_part_url(&r, 0), NULL, NULL, data, sizeof(data),
						 NULL));
		else
			T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data),
						 NULL));
	}
	memset(&ja, 0, sizeof(ja));
	memset(&jb, 0, sizeof(jb));
	ja.svc = a;
	jb.svc = b;
	ja.now = jb.now = time(NULL) + TTL + 10;
	T_REQUIRE(pthread_create(&ta, NULL, sweep_thread, &ja) == 0);
	T_REQUIRE(pthread_create(&tb, NULL, sweep_thread, &jb) == 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	T_EQ_INT(S3D_OK, ja.rc);
	T_EQ_INT(S3D_OK, jb.rc);
	T_EQ_INT(0, ja.st.errors);
	T_EQ_INT(0, jb.st.errors);
	T_EQ_INT(6, ja.st.expired); /* a's index */
	T_TRUE(jb.st.expired <= 6);
	T_TRUE(ja.st.aborted_uploads + jb.st.aborted_uploads >= 3);
	t_private_empty("sw-conc");

	s3d_presign_result_cleanup(&r);
	s3d_service_free(b);
	s3d_service_free(a);
	s3d_driver_free(db);
	s3d_driver_free(da);
}

/* ---- orphans ---------------------------------------------------------------------- */

static void test_orphans_only_when_old(void)
{
	s3d_driver *d = t_svc_driver(NULL, "sw-orph");
	s3d_service *svc = t_svc_open(d, NULL);
	s3d_presign_result r;
	s3d_sweep_stats st;
	s3d_error err;
	s3d_buf id;
	s3d_part part;
	char orphan_obj[256], orphan_mpu[256], u1[40], u2[40], live[40], live_key[1024],
		live_mpu[40], live_mpu_key[1024], mk[256];
	time_t now = time(NULL);
	uint8_t data[100];

	T_REQUIRE(svc);
	s3d_presign_result_init(&r);
	s3d_buf_init(&id, 511);
	t_fill(data, sizeof(data), 91);

	/* bytes under the uploads prefix that no marker names */
	t_uuid(u1);
	t_uuid(u2);
	snprintf(orphan_obj, sizeof(orphan_obj), "sw-orph/_s3direct/uploads/%s", u1);
	snprintf(orphan_mpu, sizeof(orphan_mpu), "sw-orph/_s3direct/uploads/%s", u2);
	T_REQUIRE(t_put_object(orphan_obj, data, sizeof(data)) == S3D_OK);
	T_REQUIRE(s3d_create_multipart(t_svc.admin, t_svc.bucket, orphan_mpu, NULL, &id, &err) ==
		  S3D_OK);
	T_REQUIRE(s3d_upload_part(t_svc.admin, t_svc.bucket, orphan_mpu, s3d_buf_str(&id), 1, data,
				  sizeof(data), NULL, &part, &err) == S3D_OK);
	/* sessions still running when the orphans are old: opened "later"
	 * (their bytes put here directly: URLs signed in the future are
	 * refused), so they have a marker and their bytes are theirs */
	T_REQUIRE(open_session(d, svc, live, NULL, -1, 0, now + 2 * TTL, &r) == 0);
	snprintf(live_key, sizeof(live_key), "%s", r.session.key);
	T_REQUIRE(t_put_object(live_key, data, sizeof(data)) == S3D_OK);
	T_REQUIRE(open_session(d, svc, live_mpu, NULL, -1, 1, now + 2 * TTL, &r) == 0);
	snprintf(live_mpu_key, sizeof(live_mpu_key), "%s", r.session.key);
	T_EQ_INT(2, t_objects_under("sw-orph/_s3direct/uploads/"));
	T_EQ_INT(2, t_uploads_under("sw-orph/_s3direct/uploads/"));

	/* young orphans are kept (a presign may be about to record them) */
	T_EQ_INT(S3D_OK, sweep(svc, 0, &st));
	T_STATS(st, 0, 0, 0, 0);
	T_EQ_INT(S3D_OK, sweep(svc, now + TTL - 60, &st));
	T_STATS(st, 0, 0, 0, 0);
	T_TRUE(t_exists(orphan_obj));
	T_EQ_INT(2, t_uploads_under("sw-orph/_s3direct/uploads/"));

	/* older than the TTL: removed; the live sessions' bytes stay */
	T_EQ_INT(S3D_OK, sweep(svc, now + TTL + 60, &st));
	T_STATS(st, 0, 1, 1, 0);
	T_TRUE(!t_exists(orphan_obj));
	T_EQ_INT(0, t_uploads_under(orphan_mpu));
	T_TRUE(t_exists(live_key));
	T_EQ_INT(1, t_uploads_under(live_mpu_key));
	snprintf(mk, sizeof(mk), "sw-orph/_s3direct/sessions/%s", live);
	T_TRUE(t_exists(mk));
	T_EQ_INT(S3D_OK, sweep(svc, now + TTL + 60, &st));
	T_STATS(st, 0, 0, 0, 0);

	/* at their end, the live ones go too */
	T_EQ_INT(S3D_OK, sweep(svc, now + 3 * TTL, &st));
	T_STATS(st, 2, 1, 3, 0);
	t_private_empty("sw-orph");

	s3d_buf_cleanup(&id);
	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
	s3d_driver_free(d);
}

/* ---- finalizing sessions ----------------------------------------------------------- */

static void test_fresh_finalize_untouched(void)
{
	s3d_driver *d = t_svc_driver(NULL, "sw-fin"), *d2 = t_svc_driver(NULL, "sw-fin");
	s3d_service_config cfg;
	s3d_service *svc, *other;
	s3d_presign_result r;
	s3d_sweep_stats st;
	s3d_session s, m;
	s3d_error err;
	char uuid[40], key[1024], mk[256];
	uint8_t data[100];
	time_t now = time(NULL);

	t_svc_config(&cfg);
	cfg.session_ttl = 60;
	cfg.finalize_stale = 900;
	svc = t_svc_open(d, &cfg);
	other = t_svc_open(d2, &cfg);
	T_REQUIRE(svc && other);
	s3d_presign_result_init(&r);
	t_fill(data, sizeof(data), 99);
	T_REQUIRE(open_session(d, svc, uuid, NULL, -1, 1, now, &r) == 0);
	T_EQ_INT(200, t_http_put(t_part_url(&r, 0), NULL, NULL, data, sizeof(data), NULL));
	snprintf(key, sizeof(key), "%s", r.session.key);
	snprintf(mk, sizeof(mk), "sw-fin/_s3direct/sessions/%s", uuid);

	/* a finalize claims it at now + 50, as finalize does: marker, index */
	s = r.session;
	s.status = S3D_SESSION_FINALIZING;
	s.updated = now + 50;
	T_REQUIRE(s3d_svc_save(svc, &s, S3D_SVC_OPEN, NULL, &err) == S3D_OK);

	/* past the session's end but the finalize is fresh: nobody touches it */
	T_EQ_INT(S3D_OK, sweep(svc, now + 500, &st));
	T_STATS(st, 0, 0, 0, 0);
	T_EQ_INT(S3D_OK, sweep(other, now + 500, &st));
	T_STATS(st, 0, 0, 0, 0);
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(svc), uuid, &s, &err));
	T_EQ_INT(S3D_SESSION_FINALIZING, s.status);
	T_EQ_INT(1, t_uploads_under(key));
	T_EQ_INT(S3D_OK, s3d_svc_marker_get(svc, uuid, &m, &err));
	T_EQ_INT(S3D_SESSION_FINALIZING, m.status);
	T_EQ_INT(S3D_OK, sweep(svc, now + 50 + 899, &st));
	T_STATS(st, 0, 0, 0, 0);
	T_EQ_INT(1, t_uploads_under(key));

	/* stale: taken over, by the process whose index holds it */
	T_EQ_INT(S3D_OK, sweep(svc, now + 50 + 900, &st));
	T_STATS(st, 1, 1, 1, 0);
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(svc), uuid, &s, &err));
	T_EQ_INT(S3D_SESSION_EXPIRED, s.status);
	T_EQ_INT(0, t_uploads_under(key));
	T_TRUE(!t_exists(mk));
	t_private_empty("sw-fin");

	/* the same, taken over by a process that knows it from the marker only */
	T_REQUIRE(open_session(d, svc, uuid, NULL, -1, 1, now, &r) == 0);
	T_EQ_INT(200, t_http_put(t_part_url(&r, 0), NULL, NULL, data, sizeof(data), NULL));
	snprintf(key, sizeof(key), "%s", r.session.key);
	s = r.session;
	s.status = S3D_SESSION_FINALIZING;
	s.updated = now + 50;
	T_REQUIRE(s3d_svc_save(svc, &s, S3D_SVC_OPEN, NULL, &err) == S3D_OK);
	T_EQ_INT(S3D_OK, sweep(other, now + 50 + 899, &st));
	T_STATS(st, 0, 0, 0, 0);
	T_EQ_INT(1, t_uploads_under(key));
	T_EQ_INT(S3D_OK, sweep(other, now + 50 + 900, &st));
	T_STATS(st, 1, 1, 1, 0);
	t_private_empty("sw-fin");

	s3d_presign_result_cleanup(&r);
	s3d_service_free(other);
	s3d_service_free(svc);
	s3d_driver_free(d2);
	s3d_driver_free(d);
}

/* ---- more than a listing page ---------------------------------------------------- */

static void test_pages(void)
{
	s3d_driver *d = t_svc_driver(NULL, "sw-pages");
	s3d_service *svc = t_svc_open(d, NULL);
	s3d_sweep_stats st;
	s3d_session s;
	s3d_error err;
	char key[256];
	time_t now = time(NULL);
	int i, rc = S3D_OK, n = 1001;

	T_REQUIRE(svc);
	/* markers of sessions other processes opened and left to expire */
	for (i = 0; rc == S3D_OK && i < n; i++) {
		s3d_session_init(&s);
		t_uuid(s.uuid);
		snprintf(s.repo, sizeof(s.repo), "it/app");
		s.status = S3D_SESSION_PENDING;
		s.mode = S3D_MODE_SINGLE;
		snprintf(s.key, sizeof(s.key), "sw-pages/_s3direct/uploads/%s", s.uuid);
		s.created = s.updated = now - 2 * TTL;
		s.expires = now - TTL;
		rc = s3d_svc_marker_put(svc, &s, &err);
	}
	T_REQUIRE(rc == S3D_OK);
	/* temp objects no marker names */
	for (i = 0; rc == S3D_OK && i < n; i++) {
		t_uuid(s.uuid);
		snprintf(key, sizeof(key), "sw-pages/_s3direct/uploads/%s", s.uuid);
		rc = t_put_object(key, "x", 1);
	}
	T_REQUIRE(rc == S3D_OK);
	T_EQ_INT(n, t_objects_under("sw-pages/_s3direct/sessions/"));
	T_EQ_INT(n, t_objects_under("sw-pages/_s3direct/uploads/"));

	/* the markers are due now, the orphans not yet */
	T_EQ_INT(S3D_OK, sweep(svc, 0, &st));
	T_STATS(st, n, 0, n, 0);
	T_EQ_INT(0, t_objects_under("sw-pages/_s3direct/sessions/"));
	T_EQ_INT(n, t_objects_under("sw-pages/_s3direct/uploads/"));
	T_EQ_INT(S3D_OK, sweep(svc, now + TTL + 60, &st));
	T_STATS(st, 0, 0, n, 0);
	t_private_empty("sw-pages");

	s3d_service_free(svc);
	s3d_driver_free(d);
}

/* Ended sessions stay in the index for one TTL after their end, then go. */
static void test_prunes_ended_records(void)
{
	static const int statuses[] = { S3D_SESSION_COMPLETED, S3D_SESSION_FAILED,
					 S3D_SESSION_CANCELLED, S3D_SESSION_EXPIRED };
	s3d_driver *d = t_svc_driver(NULL, "sw-prune");
	s3d_service *svc = t_svc_open(d, NULL);
	char old_ids[4][40], recent[40], open_id[40];
	s3d_sweep_stats st;
	s3d_session s;
	s3d_error err;
	time_t now = time(NULL);
	int i;

	T_REQUIRE(svc);
	for (i = 0; i < 4; i++) {
		s3d_session_init(&s);
		t_uuid(old_ids[i]);
		snprintf(s.uuid, sizeof(s.uuid), "%s", old_ids[i]);
		snprintf(s.repo, sizeof(s.repo), "it/app");
		s.status = statuses[i];
		s.created = s.updated = now - 3 * TTL;
		s.expires = now - 2 * TTL; /* ended more than one TTL ago */
		T_EQ_INT(S3D_OK, s3d_index_put(s3d_service_index(svc), &s, S3D_INDEX_ABSENT, NULL, &err));
	}
	/* ended, but less than one TTL ago: kept */
	s3d_session_init(&s);
	t_uuid(recent);
	snprintf(s.uuid, sizeof(s.uuid), "%s", recent);
	snprintf(s.repo, sizeof(s.repo), "it/app");
	s.status = S3D_SESSION_COMPLETED;
	s.created = now - 3 * TTL;
	s.expires = now - 2 * TTL;
	s.updated = now - TTL / 2; /* ended (say, expired) recently */
	T_EQ_INT(S3D_OK, s3d_index_put(s3d_service_index(svc), &s, S3D_INDEX_ABSENT, NULL, &err));
	/* open and running: never pruned (the sweep leaves it alone) */
	t_uuid(open_id);
	snprintf(s.uuid, sizeof(s.uuid), "%s", open_id);
	s.status = S3D_SESSION_PENDING;
	s.expires = now + TTL;
	T_EQ_INT(S3D_OK, s3d_index_put(s3d_service_index(svc), &s, S3D_INDEX_ABSENT, NULL, &err));

	T_EQ_INT(S3D_OK, sweep(svc, now, &st));
	T_EQ_INT(4, st.pruned);
	T_EQ_INT(0, st.errors);
	for (i = 0; i < 4; i++)
		T_EQ_INT(S3D_E_NOTFOUND, s3d_index_get(s3d_service_index(svc), old_ids[i], &s, &err));
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(svc), recent, &s, &err));
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(svc), open_id, &s, &err));
	T_EQ_INT(S3D_SESSION_PENDING, s.status);
	/* idempotent */
	T_EQ_INT(S3D_OK, sweep(svc, now, &st));
	T_EQ_INT(0, st.pruned);

	s3d_service_free(svc);
	s3d_driver_free(d);
}

/* ---- main -------------------------------------------------------------------------- */

int main(void)
{
	int rc;

	if (t_svc_begin("sweep", "swp") != 0)
		return 1;
	t_svc.config.session_ttl = TTL;
	T_RUN(test_hostile_and_junk);
	T_RUN(test_expires_own_sessions);
	T_RUN(test_expires_other_process_sessions);
	T_RUN(test_concurrent_sweeps);
	T_RUN(test_orphans_only_when_old);
	T_RUN(test_fresh_finalize_untouched);
	T_RUN(test_pages);
	T_RUN(test_prunes_ended_records);
	rc = t_done("sweep");
	t_svc_end();
	return rc;
}
