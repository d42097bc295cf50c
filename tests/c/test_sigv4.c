/* SigV4 stages against the S3 documentation's published examples. The full
 * AWS SigV4 test suite runs from Go (bridge/internal/engine). */
#include "t.h"

#include "s3direct.h"
#include "sigv4.h"

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define HOST "examplebucket.s3.amazonaws.com"
#define T20130524 ((time_t)1369353600)

static s3d_signer *signer(void)
{
	s3d_signer *s = NULL;
	if (s3d_signer_new(AK, SK, NULL, "us-east-1", "s3", &s) != S3D_OK)
		return NULL;
	return s;
}

static int presign_rc(s3d_sigv4_request *req)
{
	s3d_signer *s = signer();
	s3d_sigv4_result r;
	int rc;

	s3d_sigv4_result_init(&r);
	rc = s3d_sigv4_presign(s, req, &r);
	s3d_sigv4_result_cleanup(&r);
	s3d_signer_free(s);
	return rc;
}

static void test_hostile_inputs(void)
{
	s3d_kv bad_hdr[] = { { "x-amz-meta-a", "v\r\nInjected: 1" } };
	s3d_kv bad_name[] = { { "bad name", "v" } };
	s3d_kv colon_name[] = { { "a:b", "v" } };
	s3d_sigv4_request req = { .method = "GET", .host = HOST, .path = "/k",
				  .when = T20130524, .expires = 60 };
	s3d_signer *s = NULL;

	T_EQ_INT(S3D_E_INVAL, s3d_signer_new(NULL, SK, NULL, "us-east-1", "s3", &s));
	T_EQ_INT(S3D_E_INVAL, s3d_signer_new(AK, SK, NULL, "us/east", "s3", &s));
	T_EQ_INT(S3D_E_INVAL, s3d_signer_new(AK, SK, NULL, "", "s3", &s));
	T_EQ_INT(S3D_E_INVAL, s3d_signer_new(AK, NULL, NULL, "us-east-1", "s3", &s));

	req.expires = 0;
	T_EQ_INT(S3D_E_INVAL, presign_rc(&req));
	req.expires = 604801;
	T_EQ_INT(S3D_E_INVAL, presign_rc(&req));
	req.expires = -5;
	T_EQ_INT(S3D_E_INVAL, presign_rc(&req));
	req.expires = 604800;
	T_EQ_INT(S3D_OK, presign_rc(&req));
	req.expires = 1;
	T_EQ_INT(S3D_OK, presign_rc(&req));

	req.method = "get";
	T_EQ_INT(S3D_E_INVAL, presign_rc(&req));
	req.method = "";
	T_EQ_INT(S3D_E_INVAL, presign_rc(&req));
	req.method = "GET";
	req.path = "no-leading-slash";
	T_EQ_INT(S3D_E_INVAL, presign_rc(&req));
	req.path = "/k";
	req.host = NULL;
	T_EQ_INT(S3D_E_INVAL, presign_rc(&req));
	req.host = HOST;
	req.headers = bad_hdr;
	req.nheaders = 1;
	T_EQ_INT(S3D_E_INVAL, presign_rc(&req));
	req.headers = bad_name;
	T_EQ_INT(S3D_E_INVAL, presign_rc(&req));
	req.headers = colon_name;
	T_EQ_INT(S3D_E_INVAL, presign_rc(&req));
	req.headers = NULL; /* count without array */
	T_EQ_INT(S3D_E_INVAL, presign_rc(&req));
}

static void test_too_many_params(void)
{
	static s3d_kv q[S3D_SIGV4_MAX_PARAMS + 1];
	s3d_sigv4_request req = { .method = "GET", .host = HOST, .path = "/",
				  .query = q, .nquery = S3D_SIGV4_MAX_PARAMS + 1,
				  .when = T20130524, .expires = 60 };
	size_t i;

	for (i = 0; i < S3D_SIGV4_MAX_PARAMS + 1; i++) {
		q[i].name = "p";
		q[i].value = "v";
	}
	T_EQ_INT(S3D_E_TOOBIG, presign_rc(&req));
}

/* "Authenticating Requests: Using Query Parameters" example. */
static void test_s3_docs_presigned_get(void)
{
	s3d_sigv4_request req = { .method = "GET", .host = HOST, .path = "/test.txt",
				  .when = T20130524, .expires = 86400 };
	s3d_signer *s = signer();
	s3d_sigv4_result r;

	T_REQUIRE(s);
	s3d_sigv4_result_init(&r);
	T_EQ_INT(S3D_OK, s3d_sigv4_presign(s, &req, &r));
	T_EQ_STR("GET\n/test.txt\n"
		 "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		 "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n"
		 "host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD",
		 s3d_buf_str(&r.canonical_request));
	T_EQ_STR("AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
		 "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04",
		 s3d_buf_str(&r.string_to_sign));
	T_EQ_STR("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404", r.signature);
	T_EQ_STR("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		 "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
		 "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
		 s3d_buf_str(&r.query));
	s3d_sigv4_result_cleanup(&r);
	s3d_signer_free(s);
}

static void header_example(const char *method, const char *path, const s3d_kv *query,
			   size_t nquery, const s3d_kv *headers, size_t nheaders,
			   const char *payload, const char *want_creq,
			   const char *want_sts_hash, const char *want_sig)
{
	s3d_sigv4_request req = { .method = method, .host = HOST, .path = path,
				  .query = query, .nquery = nquery,
				  .headers = headers, .nheaders = nheaders,
				  .payload_hash = payload, .when = T20130524,
				  .flags = S3D_SIGV4_CONTENT_SHA256_HEADER };
	s3d_signer *s = signer();
	s3d_sigv4_result r;
	char auth[512];

	T_REQUIRE(s);
	s3d_sigv4_result_init(&r);
	T_EQ_INT(S3D_OK, s3d_sigv4_sign_headers(s, &req, &r));
	T_EQ_STR(want_creq, s3d_buf_str(&r.canonical_request));
	T_TRUE(strstr(s3d_buf_str(&r.string_to_sign), want_sts_hash) != NULL);
	T_EQ_STR(want_sig, r.signature);
	T_EQ_STR("20130524T000000Z", r.amz_date);
	snprintf(auth, sizeof(auth),
		 "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		 "SignedHeaders=%s, Signature=%s", s3d_buf_str(&r.signed_headers), want_sig);
	T_EQ_STR(auth, s3d_buf_str(&r.authorization));
	s3d_sigv4_result_cleanup(&r);
	s3d_signer_free(s);
}

/* "Signature Calculations for the Authorization Header" examples. */
static void test_s3_docs_get_object(void)
{
	s3d_kv h[] = { { "Range", "bytes=0-9" } };

	header_example("GET", "/test.txt", NULL, 0, h, 1, S3D_EMPTY_SHA256,
		       "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
		       "x-amz-content-sha256:" S3D_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
		       "host;range;x-amz-content-sha256;x-amz-date\n" S3D_EMPTY_SHA256,
		       "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
		       "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_s3_docs_put_object(void)
{
	s3d_kv h[] = { { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
		       { "x-amz-storage-class", "REDUCED_REDUNDANCY" } };
	char body_hash[65];

	T_EQ_INT(S3D_OK, s3d_sha256_hex("Welcome to Amazon S3.", 21, body_hash));
	T_EQ_STR("44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072", body_hash);
	header_example("PUT", "/test$file.text", NULL, 0, h, 2, body_hash,
		       "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"
		       "host:examplebucket.s3.amazonaws.com\n"
		       "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
		       "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
		       "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
		       "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
		       "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
		       "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void test_s3_docs_get_lifecycle(void)
{
	s3d_kv q[] = { { "lifecycle", "" } };

	header_example("GET", "/", q, 1, NULL, 0, S3D_EMPTY_SHA256,
		       "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\n"
		       "x-amz-content-sha256:" S3D_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
		       "host;x-amz-content-sha256;x-amz-date\n" S3D_EMPTY_SHA256,
		       "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
		       "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

static void test_s3_docs_list_objects(void)
{
	/* given out of order: the canonical query sorts them */
	s3d_kv q[] = { { "prefix", "J" }, { "max-keys", "2" } };

	header_example("GET", "/", q, 2, NULL, 0, S3D_EMPTY_SHA256,
		       "GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\n"
		       "x-amz-content-sha256:" S3D_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
		       "host;x-amz-content-sha256;x-amz-date\n" S3D_EMPTY_SHA256,
		       "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
		       "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

/* Stages called one by one give the same answer as the whole; the key cache
 * follows the date. */
static void test_stages_and_key_cache(void)
{
	s3d_sigv4_request req = { .method = "GET", .host = HOST, .path = "/test.txt",
				  .when = T20130524, .expires = 86400 };
	s3d_signer *s = signer();
	s3d_sigv4_result r, r2;

	T_REQUIRE(s);
	s3d_sigv4_result_init(&r);
	s3d_sigv4_result_init(&r2);
	T_EQ_INT(S3D_OK, s3d_sigv4_canonical_request(s, &req, 1, &r));
	T_EQ_INT(S3D_OK, s3d_sigv4_string_to_sign(s, req.when, &r));
	T_EQ_INT(S3D_OK, s3d_sigv4_signature(s, req.when, &r));
	T_EQ_STR("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404", r.signature);

	req.when += 86400; /* next day: a new signing key */
	T_EQ_INT(S3D_OK, s3d_sigv4_presign(s, &req, &r2));
	T_TRUE(strcmp(r.signature, r2.signature) != 0);
	T_TRUE(strstr(s3d_buf_str(&r2.query), "20130525%2Fus-east-1") != NULL);
	req.when -= 86400; /* back: same result as the first time */
	T_EQ_INT(S3D_OK, s3d_sigv4_presign(s, &req, &r2));
	T_EQ_STR(r.signature, r2.signature);

	/* a stage without its input is refused */
	s3d_sigv4_result_cleanup(&r);
	s3d_sigv4_result_init(&r);
	T_EQ_INT(S3D_E_INVAL, s3d_sigv4_string_to_sign(s, req.when, &r));
	T_EQ_INT(S3D_E_INVAL, s3d_sigv4_signature(s, req.when, &r));
	s3d_sigv4_result_cleanup(&r);
	s3d_sigv4_result_cleanup(&r2);
	s3d_signer_free(s);
}

/* Signed checksum and content-type stay headers on a presigned PUT; keys are
 * encoded but never normalized; values are trimmed. */
static void test_presign_signed_headers(void)
{
	s3d_kv h[] = { { "X-Amz-Checksum-Sha256", "  n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg= " },
		       { "Content-Type", "application/octet-stream" } };
	s3d_sigv4_request req = { .method = "PUT", .host = "127.0.0.1:9000",
				  .path = "/bucket/a b/../c//d+%e/\xe1\x88\xb4",
				  .headers = h, .nheaders = 2,
				  .when = T20130524, .expires = 3600 };
	s3d_signer *s = signer();
	s3d_sigv4_result r;
	const char *creq;

	T_REQUIRE(s);
	s3d_sigv4_result_init(&r);
	T_EQ_INT(S3D_OK, s3d_sigv4_presign(s, &req, &r));
	creq = s3d_buf_str(&r.canonical_request);
	T_TRUE(strncmp(creq, "PUT\n/bucket/a%20b/../c//d%2B%25e/%E1%88%B4\n",
			strlen("PUT\n/bucket/a%20b/../c//d%2B%25e/%E1%88%B4\n")) == 0);
	T_EQ_STR("content-type;host;x-amz-checksum-sha256", s3d_buf_str(&r.signed_headers));
	T_TRUE(strstr(creq, "\nx-amz-checksum-sha256:n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=\n") != NULL);
	T_TRUE(strstr(s3d_buf_str(&r.query), "X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-checksum-sha256") != NULL);
	/* not hoisted into the query: only named in the signed-header list */
	T_TRUE(strstr(s3d_buf_str(&r.query), "sha256=") == NULL);
	T_TRUE(strstr(s3d_buf_str(&r.query), "X-Amz-Checksum") == NULL);
	s3d_sigv4_result_cleanup(&r);
	s3d_signer_free(s);
}

static void test_session_token(void)
{
	s3d_sigv4_request req = { .method = "GET", .host = HOST, .path = "/k",
				  .when = T20130524, .expires = 60 };
	s3d_signer *s = NULL;
	s3d_sigv4_result r;

	T_REQUIRE(s3d_signer_new(AK, SK, "tok/en+=", "us-east-1", "s3", &s) == S3D_OK);
	s3d_sigv4_result_init(&r);
	T_EQ_INT(S3D_OK, s3d_sigv4_presign(s, &req, &r));
	T_TRUE(strstr(s3d_buf_str(&r.canonical_request), "X-Amz-Security-Token=tok%2Fen%2B%3D") != NULL);
	req.flags = S3D_SIGV4_OMIT_SESSION_TOKEN;
	T_EQ_INT(S3D_OK, s3d_sigv4_presign(s, &req, &r));
	T_TRUE(strstr(s3d_buf_str(&r.canonical_request), "Security-Token") == NULL);
	T_TRUE(strstr(s3d_buf_str(&r.query), "&X-Amz-Security-Token=tok%2Fen%2B%3D") != NULL);
	req.flags = S3D_SIGV4_CONTENT_SHA256_HEADER;
	T_EQ_INT(S3D_OK, s3d_sigv4_sign_headers(s, &req, &r));
	T_EQ_STR("host;x-amz-content-sha256;x-amz-date;x-amz-security-token",
		 s3d_buf_str(&r.signed_headers));
	s3d_sigv4_result_cleanup(&r);
	s3d_signer_free(s);
}

/* The date arithmetic agrees with gmtime_r + strftime everywhere it is used. */
static void test_amz_date_matches_libc(void)
{
	static const time_t fixed[] = { 0, 59, 86399, 86400, 951782400 /* 2000-02-29 */,
					951868800, 4107542400 /* 2100-03-01 */,
					1709164800 /* 2024-02-29 */, 253402300799LL };
	char ours[17], want[17];
	struct tm tm;
	unsigned seed = 12345;
	size_t i;
	int bad = 0;

	T_EQ_INT(S3D_E_INVAL, s3d_sigv4_amz_date((time_t)-1, ours));
	T_EQ_INT(S3D_E_INVAL, s3d_sigv4_amz_date((time_t)253402300800LL, ours));
	for (i = 0; i < 200000; i++) {
		time_t t;

		if (i < sizeof(fixed) / sizeof(fixed[0])) {
			t = fixed[i];
		} else {
			seed = seed * 1103515245u + 12345u;
			t = (time_t)(((uint64_t)seed << 20 ^ (uint64_t)i * 2654435761u) % 253402300800ULL);
		}
		gmtime_r(&t, &tm);
		strftime(want, sizeof(want), "%Y%m%dT%H%M%SZ", &tm);
		if (s3d_sigv4_amz_date(t, ours) != S3D_OK || strcmp(ours, want) != 0) {
			if (bad++ < 3)
				T_EQ_STR(want, ours);
		}
	}
	T_EQ_INT(0, bad);
}

int main(void)
{
	T_RUN(test_amz_date_matches_libc);
	T_RUN(test_hostile_inputs);
	T_RUN(test_too_many_params);
	T_RUN(test_s3_docs_presigned_get);
	T_RUN(test_s3_docs_get_object);
	T_RUN(test_s3_docs_put_object);
	T_RUN(test_s3_docs_get_lifecycle);
	T_RUN(test_s3_docs_list_objects);
	T_RUN(test_stages_and_key_cache);
	T_RUN(test_presign_signed_headers);
	T_RUN(test_session_token);
	return t_done("sigv4");
}
