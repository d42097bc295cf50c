/*
 * regclient: the pure parsers (WWW-Authenticate, presign answers, tokens,
 * OCI errors, manifests and layouts, names, URLs), hostile inputs first;
 * then the HTTP side against a mock registry + S3 on a loopback fault
 * server (tests/c/t_s3.h): the presigned flow single and multipart,
 * retries with fresh URLs, S3 and OCI errors, Basic and Bearer auth.
 * No live S3 needed.
 */
#include "t.h"
#include "t_s3.h"

#include "regclient.h"

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#define CH(s) s3d_reg_parse_challenge((s), strlen(s), &ch)
#define J(s) (const uint8_t *)(s), strlen(s)

/* ---- WWW-Authenticate -------------------------------------------------------- */

static void test_challenge_hostile(void)
{
	s3d_reg_challenge ch;
	char big[S3D_REG_HEADER_MAX + 2], many[2048];
	size_t i, n;

	T_EQ_INT(S3D_E_INVAL, s3d_reg_parse_challenge(NULL, 3, &ch));
	T_EQ_INT(S3D_E_INVAL, s3d_reg_parse_challenge("Basic", 5, NULL));
	T_EQ_INT(S3D_E_PROTOCOL, CH(""));
	T_EQ_INT(S3D_E_PROTOCOL, CH("  ,  , "));
	T_EQ_INT(S3D_E_PROTOCOL, CH("realm=\"x\""));               /* param before scheme */
	T_EQ_INT(S3D_E_PROTOCOL, CH("Bearer realm=\"abc"));        /* unterminated */
	T_EQ_INT(S3D_E_PROTOCOL, CH("Bearer realm=\"abc\\"));      /* escape at the end */
	T_EQ_INT(S3D_E_PROTOCOL, CH("Bearer realm=\"a\x01" "b\""));
	T_EQ_INT(S3D_E_PROTOCOL, CH("Bearer realm=\"a\r\nX-Evil: 1\""));
	T_EQ_INT(S3D_E_PROTOCOL, CH("Bearer realm=\"a\x7f\""));
	T_EQ_INT(S3D_E_PROTOCOL, CH("Bearer realm=\"a\",realm=\"b\""));   /* repeated */
	T_EQ_INT(S3D_E_PROTOCOL, CH("Bearer realm=\"a\",REALM=\"b\""));
	T_EQ_INT(S3D_E_PROTOCOL, CH("Bearer realm=\"a\" junk"));
	T_EQ_INT(S3D_E_PROTOCOL, CH("Bearer\"x\""));
	T_EQ_INT(S3D_E_PROTOCOL, CH("Bearer realm=x=y"));
	T_EQ_INT(S3D_E_PROTOCOL, CH("Negotiate abc=="));            /* no usable scheme */
	T_EQ_INT(S3D_E_PROTOCOL, CH("Digest realm=\"x\", qop=\"auth\""));
	T_EQ_INT(S3D_E_PROTOCOL, CH("@@@"));
	/* an embedded NUL inside the value's n bytes */
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_challenge("Basic realm=\"a\0b\"", 17, &ch));
	/* over the header limit */
	memset(big, 'a', sizeof(big));
	memcpy(big, "Basic ", 6);
	T_EQ_INT(S3D_E_TOOBIG, s3d_reg_parse_challenge(big, sizeof(big), &ch));
	/* a kept value longer than its field */
	n = (size_t)snprintf(big, sizeof(big), "Bearer realm=\"");
	for (i = 0; i < 1100; i++)
		big[n++] = 'r';
	big[n++] = '"';
	T_EQ_INT(S3D_E_TOOBIG, s3d_reg_parse_challenge(big, n, &ch));
	T_EQ_INT(0, ch.scheme);
	T_EQ_STR("", ch.realm);
	/* 33 parameters in one challenge */
	n = (size_t)snprintf(many, sizeof(many), "Bearer realm=\"r\"");
	for (i = 0; i < 32; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, ",p%zu=v", i);
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_challenge(many, n, &ch));
	/* 32 are fine */
	n = (size_t)snprintf(many, sizeof(many), "Bearer realm=\"r\"");
	for (i = 0; i < 31; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, ",p%zu=v", i);
	T_EQ_INT(S3D_OK, s3d_reg_parse_challenge(many, n, &ch));
	T_EQ_STR("r", ch.realm);
}

static void test_challenge(void)
{
	s3d_reg_challenge ch;
	const char *v;

	T_EQ_INT(S3D_OK, CH("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
			    "scope=\"repository:library/ubuntu:pull,push\""));
	T_EQ_INT(S3D_REG_AUTH_BEARER, ch.scheme);
	T_EQ_STR("https://auth.docker.io/token", ch.realm);
	T_EQ_STR("registry.docker.io", ch.service);
	T_EQ_STR("repository:library/ubuntu:pull,push", ch.scope);
	T_EQ_STR("", ch.error);

	T_EQ_INT(S3D_OK, CH("Basic realm=\"Registry Realm\""));
	T_EQ_INT(S3D_REG_AUTH_BASIC, ch.scheme);
	T_EQ_STR("Registry Realm", ch.realm);

	/* Bearer wins over an earlier Basic; unknown schemes and params skipped */
	T_EQ_INT(S3D_OK, CH("Negotiate YWJj==, Basic realm=\"b\", charset=\"UTF-8\", "
			    "Bearer realm=\"https://a/t\",service=svc, Bearer realm=\"second\""));
	T_EQ_INT(S3D_REG_AUTH_BEARER, ch.scheme);
	T_EQ_STR("https://a/t", ch.realm);
	T_EQ_STR("svc", ch.service);

	/* escapes, blanks around '=', case-insensitive names, error= */
	T_EQ_INT(S3D_OK, CH("BEARER  REALM = \"a\\\"b\\\\c\" ,error=\"insufficient_scope\""));
	T_EQ_STR("a\"b\\c", ch.realm);
	T_EQ_STR("insufficient_scope", ch.error);

	/* a scheme alone, then Basic with a token68 */
	T_EQ_INT(S3D_OK, CH("Basic, Foo"));
	T_EQ_INT(S3D_REG_AUTH_BASIC, ch.scheme);
	T_EQ_STR("", ch.realm);

	/* "realm=" alone reads as a token68 (RFC 7235), not as a parameter */
	T_EQ_INT(S3D_OK, CH("Bearer realm="));
	T_EQ_INT(S3D_REG_AUTH_BEARER, ch.scheme);
	T_EQ_STR("", ch.realm);

	/* only the n bytes count (no NUL needed) */
	v = "Basic realm=\"short\"GARBAGE";
	T_EQ_INT(S3D_OK, s3d_reg_parse_challenge(v, 19, &ch));
	T_EQ_STR("short", ch.realm);
}

/* ---- presign answers ------------------------------------------------------------ */

static void test_presign_single_hostile(void)
{
	static const char *const bad[] = {
		"[1]",
		"{}",
		"{\"presigned_url\":\"/relative\"}",
		"{\"presigned_url\":\"ftp://h/x\"}",
		"{\"presigned_url\":\"http://h/a b\"}",
		"{\"presigned_url\":\"http://h/a\\u0000b\"}",
		"{\"presigned_url\":\"http://h/a\\r\\nX: y\"}",
		"{\"presigned_url\":\"http://h/\",\"presigned_url\":\"http://i/\"}",
		"{\"presigned_url\":\"http://h/\",\"method\":\"POST\"}",
		"{\"presigned_url\":\"http://h/\",\"headers\":[]}",
		"{\"presigned_url\":\"http://h/\",\"headers\":{\"a b\":\"v\"}}",
		"{\"presigned_url\":\"http://h/\",\"headers\":{\"a:\":\"v\"}}",
		"{\"presigned_url\":\"http://h/\",\"headers\":{\"\":\"v\"}}",
		"{\"presigned_url\":\"http://h/\",\"headers\":{\"a\":\"v\\r\\nX-Evil: 1\"}}",
		"{\"presigned_url\":\"http://h/\",\"headers\":{\"a\":1}}",
		"{\"presigned_url\":\"http://h/\",\"headers\":{\"X-A\":\"1\",\"x-a\":\"2\"}}",
	};
	s3d_reg_presign p;
	s3d_error err;
	char *big;
	size_t i, n;
	s3d_buf many;

	s3d_reg_presign_init(&p);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_presign_single(J("not json"), &p, &err));
	T_TRUE(strstr(err.message, "not JSON") != NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = s3d_reg_parse_presign_single(J(bad[i]), &p, &err);

		if (rc != S3D_E_PROTOCOL)
			fprintf(stderr, "    answer %s\n", bad[i]);
		T_EQ_INT(S3D_E_PROTOCOL, rc);
	}
	/* 65 headers */
	s3d_buf_init(&many, 1 << 20);
	s3d_buf_appendz(&many, "{\"presigned_url\":\"http://h/\",\"headers\":{");
	for (i = 0; i < 65; i++)
		s3d_buf_printf(&many, "%s\"h%zu\":\"v\"", i ? "," : "", i);
	s3d_buf_appendz(&many, "}}");
	T_EQ_INT(S3D_E_TOOBIG, s3d_reg_parse_presign_single(many.ptr, many.len, &p, &err));
	s3d_buf_cleanup(&many);
	/* over 4 MiB */
	n = S3D_REG_JSON_MAX + 1;
	big = malloc(n);
	T_REQUIRE(big != NULL);
	memset(big, ' ', n);
	T_EQ_INT(S3D_E_TOOBIG, s3d_reg_parse_presign_single((uint8_t *)big, n, &p, &err));
	free(big);
	T_TRUE(p.url == NULL && p.headers == NULL && p.nheaders == 0);
	s3d_reg_presign_cleanup(&p);
}

static void test_presign_single(void)
{
	s3d_reg_presign p;
	s3d_error err;
	const char *ans =
		"{\"presigned_url\":\"http://127.0.0.1:9000/registry/k?X-Amz-Signature=abc\","
		"\"method\":\"PUT\",\"expires_at\":\"2026-11-24T18:00:00Z\","
		"\"headers\":{\"x-amz-checksum-sha256\":\"q83vEjRWeJA=\",\"content-length\":\"1234\","
		"\"x-amz-meta-s3direct\":\"session:u\"},\"session_expires_at\":\"x\"}";

	s3d_reg_presign_init(&p);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_reg_parse_presign_single(J(ans), &p, &err));
	T_EQ_STR("http://127.0.0.1:9000/registry/k?X-Amz-Signature=abc", p.url);
	T_EQ_INT(3, p.nheaders);
	T_EQ_STR("x-amz-checksum-sha256", p.headers[0].name);
	T_EQ_STR("q83vEjRWeJA=", p.headers[0].value);
	T_EQ_STR("content-length", p.headers[1].name);
	T_EQ_STR("1234", p.headers[1].value);
	/* reparsing into a used struct frees the old contents (ASan checks) */
	T_EQ_INT(S3D_OK, s3d_reg_parse_presign_single(J("{\"presigned_url\":\"https://h/x\","
							 "\"headers\":null}"), &p, &err));
	T_EQ_STR("https://h/x", p.url);
	T_EQ_INT(0, p.nheaders);
	s3d_reg_presign_cleanup(&p);
	s3d_reg_presign_cleanup(&p); /* twice is harmless */
}

static void test_presign_parts(void)
{
	static const char *const bad[] = { /* asked for part 1 only */
		"{\"part_size\":0,\"parts\":[{\"part_number\":1,\"url\":\"http://h/1\"}]}",
		"{\"part_size\":5368709121,\"parts\":[{\"part_number\":1,\"url\":\"http://h/1\"}]}",
		"{\"part_size\":5.5,\"parts\":[{\"part_number\":1,\"url\":\"http://h/1\"}]}",
		"{\"part_size\":5,\"parts\":[{\"part_number\":\"1\",\"url\":\"http://h/1\"}]}",
		"{\"part_size\":5,\"parts\":[{\"part_number\":1,\"url\":\"file:///etc/passwd\"}]}",
		"{\"part_size\":5,\"parts\":[7]}",
	};
	s3d_reg_presign p;
	s3d_error err;
	size_t i;
	const char *ok = "{\"part_size\":5242880,\"parts\":[{\"part_number\":4,\"url\":\"http://h/4\"},"
			 "{\"part_number\":3,\"url\":\"http://h/3\"}],\"method\":\"PUT\",\"headers\":{}}";

	s3d_reg_presign_init(&p);
	s3d_error_clear(&err);
	/* arguments */
	T_EQ_INT(S3D_E_INVAL, s3d_reg_parse_presign_parts(J(ok), 0, 1, &p, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reg_parse_presign_parts(J(ok), 1, 0, &p, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reg_parse_presign_parts(J(ok), 1, 1001, &p, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reg_parse_presign_parts(J(ok), 9999, 3, &p, &err));
	/* hostile answers */
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_presign_parts(J(ok), 3, 3, &p, &err)); /* count */
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_presign_parts(J(ok), 1, 2, &p, &err)); /* range */
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_parse_presign_parts(J("{\"part_size\":5,\"parts\":[{\"part_number\":1,\"url\":"
					       "\"http://h/1\"},{\"part_number\":1,\"url\":\"http://h/1\"}]}"),
					     1, 2, &p, &err));
	T_TRUE(strstr(err.message, "twice") != NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = s3d_reg_parse_presign_parts(J(bad[i]), 1, 1, &p, &err);

		if (rc != S3D_E_PROTOCOL)
			fprintf(stderr, "    answer %s\n", bad[i]);
		T_EQ_INT(S3D_E_PROTOCOL, rc);
	}
	T_TRUE(p.part_urls == NULL && p.nparts == 0);
	/* a good one, parts out of order */
	T_EQ_INT(S3D_OK, s3d_reg_parse_presign_parts(J(ok), 3, 2, &p, &err));
	T_EQ_INT(5242880, p.part_size);
	T_EQ_INT(3, p.first_part);
	T_EQ_INT(2, p.nparts);
	T_EQ_STR("http://h/3", p.part_urls[0]);
	T_EQ_STR("http://h/4", p.part_urls[1]);
	T_EQ_INT(0, p.nheaders);
	s3d_reg_presign_cleanup(&p);
}

static void test_token(void)
{
	s3d_buf tok;
	s3d_error err;
	char *long_tok;
	s3d_buf body;

	s3d_buf_init(&tok, S3D_REG_TOKEN_MAX);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_token(J("{}"), &tok, &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_token(J("{\"token\":\"\"}"), &tok, &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_token(J("{\"token\":\"a b\"}"), &tok, &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_token(J("{\"token\":\"a\\r\\nX: 1\"}"), &tok, &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_token(J("{\"token\":\"caf\\u00e9\"}"), &tok, &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_token(J("{\"token\":7}"), &tok, &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_token(J("\"tok\""), &tok, &err));
	long_tok = malloc(S3D_REG_TOKEN_MAX + 2);
	T_REQUIRE(long_tok != NULL);
	memset(long_tok, 'a', S3D_REG_TOKEN_MAX + 1);
	long_tok[S3D_REG_TOKEN_MAX + 1] = 0;
	s3d_buf_init(&body, 1 << 20);
	s3d_buf_printf(&body, "{\"token\":\"%s\"}", long_tok);
	T_EQ_INT(S3D_E_TOOBIG, s3d_reg_parse_token(body.ptr, body.len, &tok, &err));
	s3d_buf_cleanup(&body);
	free(long_tok);
	T_EQ_INT(0, tok.len);

	T_EQ_INT(S3D_OK, s3d_reg_parse_token(J("{\"token\":\"abc.def-ghi\",\"expires_in\":300}"), &tok,
					     &err));
	T_EQ_STR("abc.def-ghi", s3d_buf_str(&tok));
	T_EQ_INT(S3D_OK, s3d_reg_parse_token(J("{\"access_token\":\"xyz\"}"), &tok, &err));
	T_EQ_STR("xyz", s3d_buf_str(&tok));
	T_EQ_INT(S3D_OK, s3d_reg_parse_token(J("{\"token\":\"\",\"access_token\":\"zz\"}"), &tok, &err));
	T_EQ_STR("zz", s3d_buf_str(&tok));
	s3d_buf_cleanup(&tok);
}

static void test_error_body(void)
{
	s3d_error err;

	s3d_error_clear(&err);
	err.http_status = 418;
	snprintf(err.resource, sizeof(err.resource), "keep");
	snprintf(err.code, sizeof(err.code), "untouched");
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_error(J("<Error/>"), &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_error(J("{\"errors\":[]}"), &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_error(J("{\"errors\":[{\"message\":\"m\"}]}"), &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_error(J("{\"errors\":[\"x\"]}"), &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_error(J("{\"errors\":{\"code\":\"X\"}}"), &err));
	T_EQ_STR("untouched", err.code);

	/* control characters replaced; what else is there kept */
	T_EQ_INT(S3D_OK, s3d_reg_parse_error(J("{\"errors\":[{\"code\":\"DENIED\",\"message\":"
					       "\"quota \\u001b[31mexceeded\\r\\n\"}]}"), &err));
	T_EQ_STR("DENIED", err.code);
	T_EQ_STR("quota ?[31mexceeded??", err.message);
	T_EQ_INT(418, err.http_status);
	T_EQ_STR("keep", err.resource);

	/* our middleware: detail is the formatted S3 error */
	T_EQ_INT(S3D_OK, s3d_reg_parse_error(J("{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":"
					       "\"storage failed\",\"detail\":\"NoSuchBucket: gone\"},"
					       "{\"code\":\"X\"},{\"code\":\"Y\"}]}"), &err));
	T_EQ_STR("UNKNOWN", err.code);
	T_EQ_STR("storage failed (NoSuchBucket: gone) (+2 more)", err.message);

	/* detail object with the S3 fields */
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_reg_parse_error(J("{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"m\","
					       "\"detail\":{\"Code\":\"SlowDown\",\"Message\":\"later\","
					       "\"RequestId\":\"R1\"}}]}"), &err));
	T_EQ_STR("m (S3 SlowDown: later)", err.message);
	T_EQ_STR("R1", err.request_id);
	/* the stock registry's detail (an access list) adds nothing */
	T_EQ_INT(S3D_OK, s3d_reg_parse_error(J("{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":"
					       "\"authentication required\",\"detail\":[{\"Type\":"
					       "\"repository\"}]}]}"), &err));
	T_EQ_STR("authentication required", err.message);
}

/* ---- manifests ----------------------------------------------------------------- */

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define DESC(mt, d, size) "{\"mediaType\":\"" mt "\",\"digest\":\"" d "\",\"size\":" #size "}"
#define MT_M "application/vnd.oci.image.manifest.v1+json"
#define MT_I "application/vnd.oci.image.index.v1+json"
#define MT_C "application/vnd.oci.image.config.v1+json"
#define MT_L "application/vnd.oci.image.layer.v1.tar+gzip"

static void test_manifest_hostile(void)
{
	s3d_reg_manifest m;
	s3d_error err;
	s3d_buf many;
	int i;

	s3d_reg_manifest_init(&m);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_UNSUPPORTED,
		 s3d_reg_parse_manifest(J("{\"schemaVersion\":1,\"fsLayers\":[]}"), &m, &err));
	T_EQ_INT(S3D_E_UNSUPPORTED,
		 s3d_reg_parse_manifest(J("{\"mediaType\":\"application/vnd.docker.distribution."
					  "manifest.v1+prettyjws\",\"config\":" DESC(MT_C, D1, 1) "}"),
					&m, &err));
	T_EQ_INT(S3D_E_UNSUPPORTED,
		 s3d_reg_parse_manifest(J("{\"config\":{\"mediaType\":\"" MT_C "\",\"digest\":\"sha512:"
					  "abcd\",\"size\":1}}"), &m, &err));
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_parse_manifest(J("{\"config\":{\"mediaType\":\"" MT_C "\",\"digest\":\"sha256:"
					  "ABCD\",\"size\":1}}"), &m, &err));
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_parse_manifest(J("{\"config\":{\"mediaType\":\"" MT_C "\",\"digest\":\"sha256:"
					  "../../etc/passwd\",\"size\":1}}"), &m, &err));
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_parse_manifest(J("{\"config\":" DESC(MT_C, D1, -1) "}"), &m, &err));
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_parse_manifest(J("{\"config\":" DESC(MT_C, D1, 1.5) "}"), &m, &err));
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_parse_manifest(J("{\"config\":{\"digest\":\"" D1 "\",\"size\":1}}"), &m, &err));
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_parse_manifest(J("{\"config\":{\"mediaType\":\"a b/c\",\"digest\":\"" D1
					  "\",\"size\":1}}"), &m, &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_manifest(J("{\"schemaVersion\":2}"), &m, &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_manifest(J("{\"schemaVersion\":\"2\",\"manifests\":[]}"),
							&m, &err));
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_parse_manifest(J("{\"manifests\":[],\"config\":" DESC(MT_C, D1, 1) "}"), &m,
					&err));
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_parse_manifest(J("{\"mediaType\":\"" MT_I "\",\"config\":" DESC(MT_C, D1, 1) "}"),
					&m, &err));
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_parse_manifest(J("{\"mediaType\":\"" MT_M "\",\"manifests\":[]}"), &m, &err));
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_parse_manifest(J("{\"config\":" DESC(MT_C, D1, 1) ",\"layers\":{}}"), &m, &err));
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_parse_manifest(J("{\"config\":" DESC(MT_C, D1, 1) ",\"layers\":[" DESC(MT_L, D2, 1)
					  ",{\"mediaType\":\"" MT_L "\",\"digest\":\"" D3 "\",\"size\":1,"
					  "\"urls\":[1]}]}"), &m, &err));
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_parse_manifest(J("{\"config\":" DESC(MT_C, D1, 1)
					  ",\"config\":" DESC(MT_C, D2, 1) "}"), &m, &err));
	/* 10,001 layers */
	s3d_buf_init(&many, 8u << 20);
	s3d_buf_appendz(&many, "{\"config\":" DESC(MT_C, D1, 1) ",\"layers\":[");
	for (i = 0; i < S3D_REG_MAX_DESCS; i++)
		s3d_buf_appendz(&many, DESC(MT_L, D2, 1) ",");
	s3d_buf_appendz(&many, DESC(MT_L, D2, 1) "]}");
	T_EQ_INT(S3D_E_TOOBIG, s3d_reg_parse_manifest(many.ptr, many.len, &m, &err));
	s3d_buf_cleanup(&many);
	T_TRUE(m.descs == NULL && m.ndescs == 0);
	s3d_reg_manifest_cleanup(&m);
}

static void test_manifest(void)
{
	s3d_reg_manifest m;
	s3d_error err;

	s3d_reg_manifest_init(&m);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK,
		 s3d_reg_parse_manifest(J("{\"schemaVersion\":2,\"mediaType\":\"" MT_M "\",\"config\":"
					  DESC(MT_C, D1, 10) ",\"layers\":[" DESC(MT_L, D2, 20)
					  ",{\"mediaType\":\"application/vnd.oci.image.layer."
					  "nondistributable.v1.tar+gzip\",\"digest\":\"" D3 "\",\"size\":30,"
					  "\"urls\":[\"https://x/y\"]}],\"annotations\":{\"a\":\"b\"}}"),
					&m, &err));
	T_EQ_INT(0, m.is_index);
	T_EQ_STR(MT_M, m.media_type);
	T_EQ_INT(3, m.ndescs);
	T_EQ_STR(MT_C, m.descs[0].media_type);
	T_EQ_STR(D1, m.descs[0].digest);
	T_EQ_INT(10, m.descs[0].size);
	T_EQ_INT(0, m.descs[0].foreign);
	T_EQ_INT(0, m.descs[0].is_manifest);
	T_EQ_INT(20, m.descs[1].size);
	T_EQ_INT(0, m.descs[1].foreign);
	T_EQ_INT(1, m.descs[2].foreign);

	/* Docker manifest list with platforms */
	T_EQ_INT(S3D_OK,
		 s3d_reg_parse_manifest(J("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker."
					  "distribution.manifest.list.v2+json\",\"manifests\":[{\"mediaType\":"
					  "\"application/vnd.docker.distribution.manifest.v2+json\","
					  "\"digest\":\"" D1 "\",\"size\":5,\"platform\":{\"os\":\"linux\"}},"
					  DESC(MT_M, D2, 6) "]}"), &m, &err));
	T_EQ_INT(1, m.is_index);
	T_EQ_INT(2, m.ndescs);
	T_EQ_INT(1, m.descs[0].is_manifest);
	T_EQ_INT(1, m.descs[1].is_manifest);
	T_EQ_STR(D2, m.descs[1].digest);

	/* an OCI layout's index.json: no mediaType, one entry */
	T_EQ_INT(S3D_OK, s3d_reg_parse_manifest(J("{\"schemaVersion\":2,\"manifests\":[" DESC(MT_M, D1, 5)
						  "]}"), &m, &err));
	T_EQ_INT(1, m.is_index);
	T_EQ_STR("", m.media_type);
	T_EQ_INT(1, m.ndescs);
	/* an artifact manifest without layers */
	T_EQ_INT(S3D_OK, s3d_reg_parse_manifest(J("{\"schemaVersion\":2,\"config\":" DESC(MT_C, D1, 2)
						  "}"), &m, &err));
	T_EQ_INT(1, m.ndescs);
	s3d_reg_manifest_cleanup(&m);
}

static void test_layout_and_index(void)
{
	s3d_reg_manifest m;
	s3d_error err;
	s3d_buf out;
	json_t *root;
	const char *index = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_M "\",\"digest\":\""
			    D1 "\",\"size\":5,\"annotations\":{\"org.opencontainers.image.ref.name\":\"a\"}},"
			    DESC(MT_M, D2, 6) "]}";

	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_reg_parse_oci_layout(J("{\"imageLayoutVersion\":\"1.0.0\"}"), &err));
	T_EQ_INT(S3D_E_UNSUPPORTED, s3d_reg_parse_oci_layout(J("{\"imageLayoutVersion\":\"2.0.0\"}"),
							       &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_oci_layout(J("{}"), &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_parse_oci_layout(J("1.0.0"), &err));

	s3d_buf_init(&out, S3D_REG_JSON_MAX);
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_build_index(J("{\"config\":" DESC(MT_C, D1, 1) "}"), &out, &err));
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_reg_build_index(J("{\"mediaType\":\"application/x-other+json\",\"manifests\":[]}"),
				     &out, &err));
	T_EQ_INT(S3D_OK, s3d_reg_build_index(J(index), &out, &err));
	root = json_loadb((const char *)out.ptr, out.len, 0, NULL);
	T_REQUIRE(root != NULL);
	T_EQ_STR(MT_I, json_string_value(json_object_get(root, "mediaType")));
	T_EQ_INT(2, json_integer_value(json_object_get(root, "schemaVersion")));
	T_EQ_INT(2, json_array_size(json_object_get(root, "manifests")));
	json_decref(root);
	T_TRUE(strchr((const char *)out.ptr, '\n') == NULL); /* compact */
	s3d_reg_manifest_init(&m);
	T_EQ_INT(S3D_OK, s3d_reg_parse_manifest(out.ptr, out.len, &m, &err));
	T_EQ_INT(1, m.is_index);
	T_EQ_INT(2, m.ndescs);
	T_EQ_STR(D1, m.descs[0].digest);
	T_EQ_STR(D2, m.descs[1].digest);
	s3d_reg_manifest_cleanup(&m);
	/* an output buffer too small */
	s3d_buf_cleanup(&out);
	s3d_buf_init(&out, 16);
	T_EQ_INT(S3D_E_TOOBIG, s3d_reg_build_index(J(index), &out, &err));
	s3d_buf_cleanup(&out);
}

/* valid() of each of the n names is want (1 or 0); a name that is not says so. */
static void names_are(int (*valid)(const char *), const char *const *names, size_t n, int want)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int ok = !valid(names[i]) == !want;

		if (!ok)
			fprintf(stderr, "    name [%s]\n", names[i] ? names[i] : "(null)");
		T_TRUE(ok);
	}
}

#define NAMES_ARE(valid, names, want) \
	names_are(valid, names, sizeof(names) / sizeof(names[0]), want)

/* A name of max letters passes valid(), one of max + 1 does not (max < 300). */
static void longest_name_is(int (*valid)(const char *), size_t max)
{
	char name[301];

	memset(name, 'a', max + 1);
	name[max + 1] = 0;
	T_TRUE(!valid(name));
	name[max] = 0;
	T_TRUE(valid(name));
}

static void test_names(void)
{
	static const char *const bad_repos[] = { NULL, "", "A", "a//b", "/a", "a/", "a..b",
						 "a___b", "-a", "a-", "a/../b", "a?b" };
	static const char *const good_repos[] = { "a", "library/ubuntu", "a.b_c__d-e---f/g0" };
	static const char *const bad_tags[] = { "", ".x", "-x", "a/b", "a:b" };
	static const char *const good_tags[] = { "v1", "_x", "1.0-rc_2" };
	static const char *const bad_digests[] = {
		"sha256:abc",
		"sha512:" "1111111111111111111111111111111111111111111111111111111111111111",
		"sha256:" "111111111111111111111111111111111111111111111111111111111111111A",
		D1 "0",
	};

	NAMES_ARE(s3d_reg_valid_repo, bad_repos, 0);
	longest_name_is(s3d_reg_valid_repo, 255);
	NAMES_ARE(s3d_reg_valid_repo, good_repos, 1);

	NAMES_ARE(s3d_reg_valid_tag, bad_tags, 0);
	longest_name_is(s3d_reg_valid_tag, 128);
	NAMES_ARE(s3d_reg_valid_tag, good_tags, 1);

	NAMES_ARE(s3d_reg_valid_digest, bad_digests, 0);
	T_TRUE(s3d_reg_valid_digest(D1));
}

static void test_url_append(void)
{
	s3d_kv q[3] = { { "presigned", "true" }, { "digest", D1 }, { "x", "a&b c/d" } };
	s3d_buf out;

	s3d_buf_init(&out, S3D_REG_URL_MAX);
	T_EQ_INT(S3D_E_INVAL, s3d_reg_url_append(NULL, "ftp://h/x", NULL, 0, &out));
	T_EQ_INT(S3D_E_INVAL, s3d_reg_url_append(NULL, "javascript:alert(1)", NULL, 0, &out));
	T_EQ_INT(S3D_E_INVAL, s3d_reg_url_append(NULL, "/relative", NULL, 0, &out));
	T_EQ_INT(S3D_E_INVAL, s3d_reg_url_append(NULL, "http://h/", q, 1, NULL));
	T_EQ_INT(S3D_E_INVAL, s3d_reg_url_append("http://h/", "file:///etc/passwd", NULL, 0, &out));

	/* a relative Location against the request URL, with its _state kept */
	T_EQ_INT(S3D_OK, s3d_reg_url_append("http://h:5000/v2/a/blobs/uploads/",
					    "/v2/a/blobs/uploads/u1?_state=s", q, 2, &out));
	T_EQ_STR("http://h:5000/v2/a/blobs/uploads/u1?_state=s&presigned=true&digest=sha256%3a"
		 "1111111111111111111111111111111111111111111111111111111111111111",
		 s3d_buf_str(&out));
	/* an absolute one; values encoded */
	T_EQ_INT(S3D_OK, s3d_reg_url_append("http://h:5000/x", "https://o/p", q + 2, 1, &out));
	T_TRUE(strncmp(s3d_buf_str(&out), "https://o/p?x=a%26b", 19) == 0);
	T_TRUE(strchr(s3d_buf_str(&out), ' ') == NULL);
	s3d_buf_cleanup(&out);
}

/* ---- HTTP: a mock registry and S3 on a loopback fault server --------------------- */

enum { F_NONE, F_403_ONCE, F_500_ONCE, F_BADDIGEST, F_CLOSE_ONCE };
enum { A_NONE, A_BASIC, A_BEARER };

struct mock {
	pthread_mutex_t mu;
	const char *endpoint;     /* where presigned URLs point: the S3 server */
	struct t_fault_server s3; /* S3 on its own server: the fault server is
				     serial, and the client makes registry calls
				     while part PUTs are half sent */
	int auth;
	char basic[256];          /* the Authorization the registry accepts */
	int64_t part_size;
	int fail_part, fail_mode;
	int finalize_mode;        /* 0 ok, 1 DIGEST_INVALID, 2 another digest */
	int head_status;
	int presign_garbage;
	int sign_wrong_length;    /* single presign: content-length of size + 1 */
	const char *manifest_digest;
	volatile sig_atomic_t *stop_on_put; /* set when an S3 PUT arrives (Ctrl-C) */
	int delete_status;        /* 0: 204 */
	/* what happened */
	int posts, presigns, s3_puts, finalizes, deletes, heads, manifests, tokens, unauth;
	int64_t s3_bytes;
	int s3_auth_seen, s3_bad_cl, s3_checksum_seen, s3_meta_seen;
	int64_t part_len[16];
	char presign_q[8][512];
	char token_q[512];
	char finalize_q[512];
	char manifest_ct[256];
	char last_auth[512];
};

static void mock_init(struct mock *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	m->part_size = 5 << 20;
	m->head_status = 404;
}

static void send_json(int fd, const char *status, const char *extra, const char *body)
{
	char hdr[600];

	snprintf(hdr, sizeof(hdr), "Content-Type: application/json\r\n%s", extra ? extra : "");
	t_send_answer(fd, status, hdr, body, strlen(body));
}

/* The value of query parameter name in target (cut to cap), "" when absent. */
static void qparam(const char *target, const char *name, char *out, size_t cap)
{
	const char *p = strchr(target, '?');
	size_t n = strlen(name);

	out[0] = 0;
	while (p) {
		p++;
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			t_copy_cut(out, cap, p + n + 1, strcspn(p + n + 1, "&"));
			return;
		}
		p = strchr(p, '&');
	}
}

/* How many times a header line starts with name (case-insensitive). */
static int header_count(const char *req, const char *name)
{
	const char *p = req;
	size_t n = strlen(name);
	int k = 0;

	while ((p = strstr(p, "\r\n")) && p[2] != '\r') {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':')
			k++;
	}
	return k;
}

static void mock_s3(struct mock *m, int fd, const char *req, const char *target)
{
	char num[16], cl[32];
	int part = 1;

	m->s3_puts++;
	if (m->stop_on_put)
		*m->stop_on_put = SIGINT;
	qparam(target, "partNumber", num, sizeof(num));
	if (num[0])
		part = atoi(num);
	if (header_count(req, "Authorization"))
		m->s3_auth_seen++;
	if (header_count(req, "Content-Length") != 1 || header_count(req, "Expect"))
		m->s3_bad_cl++;
	if (header_count(req, "x-amz-checksum-sha256") == 1)
		m->s3_checksum_seen++;
	if (header_count(req, "x-amz-meta-s3direct") == 1)
		m->s3_meta_seen++;
	t_req_header(req, "Content-Length", cl, sizeof(cl));
	if (part == m->fail_part && m->fail_mode != F_NONE) {
		int mode = m->fail_mode;

		if (mode != F_BADDIGEST)
			m->fail_mode = F_NONE; /* once */
		if (mode == F_CLOSE_ONCE)
			return;
		if (mode == F_403_ONCE) {
			t_send_s3_error(fd, "403 Forbidden", "AccessDenied", "REQ403");
			return;
		}
		if (mode == F_500_ONCE) {
			t_send_s3_error(fd, "500 Internal Server Error", "InternalError", "REQ500");
			return;
		}
		t_send_s3_error(fd, "400 Bad Request", "BadDigest", "REQ123");
		return;
	}
	if (part >= 1 && part < 16)
		m->part_len[part] = atoll(cl);
	m->s3_bytes += atoll(cl);
	t_send_answer(fd, "200 OK", "ETag: \"e\"\r\n", "", 0);
}

static void mock_presign(struct mock *m, int fd, const char *target)
{
	char parts[16], first[16], size[32];
	s3d_buf b;
	int i, n, f;

	if (m->presigns < 8)
		t_copy_cut(m->presign_q[m->presigns], 512, strchr(target, '?'),
			   strlen(strchr(target, '?')));
	m->presigns++;
	if (m->presign_garbage) {
		send_json(fd, "200 OK", NULL, "{\"presigned_url\": 42}");
		return;
	}
	qparam(target, "parts", parts, sizeof(parts));
	qparam(target, "first_part", first, sizeof(first));
	qparam(target, "size", size, sizeof(size));
	s3d_buf_init(&b, 1 << 20);
	if (parts[0]) {
		n = atoi(parts);
		f = first[0] ? atoi(first) : 1;
		s3d_buf_printf(&b, "{\"part_size\":%lld,\"parts\":[", (long long)m->part_size);
		for (i = 0; i < n; i++)
			s3d_buf_printf(&b, "%s{\"part_number\":%d,\"url\":\"%s/s3/bkt/key?partNumber=%d"
				       "&uploadId=U&X-Amz-Signature=SECRETSIG\"}", i ? "," : "", f + i,
				       m->endpoint, f + i);
		s3d_buf_appendz(&b, "],\"method\":\"PUT\",\"headers\":{}}");
	} else {
		s3d_buf_printf(&b, "{\"presigned_url\":\"%s/s3/bkt/key?X-Amz-Signature=SECRETSIG\","
			       "\"method\":\"PUT\",\"headers\":{\"content-length\":\"%s\","
			       "\"x-amz-checksum-sha256\":\"abc=\",\"x-amz-meta-s3direct\":"
			       "\"session:uuid1\"}}", m->endpoint,
			       m->sign_wrong_length ? "1001" : size);
	}
	send_json(fd, "200 OK", "Cache-Control: no-store\r\n", s3d_buf_str(&b));
	s3d_buf_cleanup(&b);
}

static void mock_finalize(struct mock *m, int fd, const char *target)
{
	char d[128], extra[256];
	const char *hex;

	m->finalizes++;
	qparam(target, "digest", d, sizeof(d));
	t_copy_cut(m->finalize_q, sizeof(m->finalize_q), d, strlen(d));
	if (m->finalize_mode == 1) {
		send_json(fd, "400 Bad Request", NULL,
			  "{\"errors\":[{\"code\":\"DIGEST_INVALID\",\"message\":\"provided digest did "
			  "not match uploaded content\"}]}");
		return;
	}
	/* echo the digest sent ("sha256%3a<hex>"), or another one */
	hex = strncasecmp(d, "sha256%3a", 9) == 0 ? d + 9 : "";
	if (m->finalize_mode == 2)
		snprintf(extra, sizeof(extra), "Docker-Content-Digest: %s\r\n", D3);
	else
		snprintf(extra, sizeof(extra), "Docker-Content-Digest: sha256:%s\r\n", hex);
	t_send_answer(fd, "201 Created", extra, "", 0);
}

/* 0: authorized; else the 401 was sent. */
static int mock_auth(struct mock *m, int fd, const char *auth)
{
	char extra[512];

	if (m->auth == A_NONE)
		return 0;
	if (m->auth == A_BASIC && strcmp(auth, m->basic) == 0)
		return 0;
	if (m->auth == A_BEARER && strcmp(auth, "Bearer tok123") == 0)
		return 0;
	m->unauth++;
	if (m->auth == A_BASIC)
		snprintf(extra, sizeof(extra), "WWW-Authenticate: Basic realm=\"test\"\r\n");
	else
		snprintf(extra, sizeof(extra) - 64,
			 "WWW-Authenticate: Bearer realm=\"%s/token\",service=\"svc\","
			 "scope=\"repository:test/repo:pull\"\r\n", m->endpoint);
	send_json(fd, "401 Unauthorized", extra,
		  "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\","
		  "\"detail\":null}]}");
	return 1;
}

static void mock_answer(void *ud, int fd, const char *req, size_t len)
{
	struct mock *m = ud;
	char method[16], target[4096], auth[512], path[4096], extra[256];

	(void)len;
	pthread_mutex_lock(&m->mu);
	if (t_req_line(req, method, sizeof(method), target, sizeof(target)) != 0)
		goto out;
	t_req_header(req, "Authorization", auth, sizeof(auth));
	t_copy_cut(path, sizeof(path), target, strcspn(target, "?"));
	if (strncmp(path, "/s3/", 4) == 0) {
		mock_s3(m, fd, req, target);
		goto out;
	}
	if (strcmp(path, "/token") == 0) {
		m->tokens++;
		t_copy_cut(m->token_q, sizeof(m->token_q), target, strlen(target));
		if (m->basic[0] && strcmp(auth, m->basic) != 0)
			send_json(fd, "401 Unauthorized", NULL, "{\"details\":\"bad credentials\"}");
		else
			send_json(fd, "200 OK", NULL, "{\"token\":\"tok123\",\"expires_in\":300}");
		goto out;
	}
	t_copy_cut(m->last_auth, sizeof(m->last_auth), auth, strlen(auth));
	if (mock_auth(m, fd, auth))
		goto out;
	if (strcmp(method, "POST") == 0 && strcmp(path, "/v2/test/repo/blobs/uploads/") == 0) {
		m->posts++;
		t_send_answer(fd, "202 Accepted",
			      "Location: /v2/test/repo/blobs/uploads/uuid1?_state=st4te\r\n"
			      "Docker-Upload-UUID: uuid1\r\n", "", 0);
	} else if (strcmp(path, "/v2/test/repo/blobs/uploads/uuid1") == 0 &&
		   strcmp(method, "GET") == 0) {
		mock_presign(m, fd, target);
	} else if (strcmp(path, "/v2/test/repo/blobs/uploads/uuid1") == 0 &&
		   strcmp(method, "PUT") == 0) {
		mock_finalize(m, fd, target);
	} else if (strcmp(path, "/v2/test/repo/blobs/uploads/uuid1") == 0 &&
		   strcmp(method, "DELETE") == 0) {
		m->deletes++;
		if (m->delete_status == 503)
			send_json(fd, "503 Service Unavailable", NULL, "{\"errors\":[]}");
		else
			t_send_answer(fd, "204 No Content", NULL, "", 0);
	} else if (strcmp(method, "HEAD") == 0 && strncmp(path, "/v2/test/repo/blobs/", 20) == 0) {
		m->heads++;
		snprintf(extra, sizeof(extra), "%d %s", m->head_status,
			 m->head_status == 200 ? "OK" : "Whatever");
		if (m->head_status == 307)
			t_send_answer(fd, "307 Temporary Redirect", "Location: http://s3/x\r\n", "", 0);
		else
			t_send_head(fd, extra, NULL, 0);
	} else if (strcmp(method, "PUT") == 0 && strncmp(path, "/v2/test/repo/manifests/", 24) == 0) {
		m->manifests++;
		t_req_header(req, "Content-Type", m->manifest_ct, sizeof(m->manifest_ct));
		snprintf(extra, sizeof(extra), "Docker-Content-Digest: %s\r\n", m->manifest_digest);
		t_send_answer(fd, "201 Created", extra, "", 0);
	} else {
		send_json(fd, "404 Not Found", NULL, "{\"errors\":[{\"code\":\"NAME_UNKNOWN\"}]}");
	}
out:
	pthread_mutex_unlock(&m->mu);
}

/* A temp file of n pattern bytes; its digest into digest. */
static int temp_file(size_t n, char digest[80], char path[64])
{
	uint8_t *p = t_make_pattern(n, 7), md[32];
	int fd, i;

	snprintf(path, 64, "/tmp/s3d-regclient-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || !p || write(fd, p, n) != (ssize_t)n) {
		free(p);
		return -1;
	}
	t_sha256(p, n, md);
	free(p);
	strcpy(digest, "sha256:");
	for (i = 0; i < 32; i++)
		sprintf(digest + 7 + 2 * i, "%02x", md[i]);
	return fd;
}

static s3d_reg *mock_reg(const struct t_fault_server *srv, const char *user)
{
	s3d_reg_config cfg;
	s3d_reg *r = NULL;
	s3d_error err;

	memset(&cfg, 0, sizeof(cfg));
	cfg.url = srv->endpoint;
	cfg.user = user;
	cfg.retry_base_ms = 1;
	cfg.max_retries = 2;
	s3d_error_clear(&err);
	if (s3d_reg_open(&cfg, &r, &err) != S3D_OK)
		fprintf(stderr, "  s3d_reg_open: %s\n", err.message);
	return r;
}

/* m initialized and answering on srv, which it knows as its endpoint. 0 on
 * success. */
/* The registry on srv, S3 (the presigned URLs) on m->s3: one handler. */
static int mock_start(struct mock *m, struct t_fault_server *srv)
{
	mock_init(m);
	if (t_fault_start(srv, mock_answer, m) != 0)
		return -1;
	if (t_fault_start(&m->s3, mock_answer, m) != 0) {
		t_fault_stop(srv);
		return -1;
	}
	m->endpoint = m->s3.endpoint;
	return 0;
}

static void mock_stop(struct mock *m, struct t_fault_server *srv)
{
	t_fault_stop(&m->s3);
	t_fault_stop(srv);
}

/* The next pushes see part `part` fail as mode says; the counts of S3 PUTs
 * and presigns start again. */
static void mock_fail(struct mock *m, int part, int mode)
{
	pthread_mutex_lock(&m->mu);
	m->s3_puts = m->presigns = 0;
	m->fail_part = part;
	m->fail_mode = mode;
	pthread_mutex_unlock(&m->mu);
}

static void fast_opts(s3d_reg_push_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->threshold = 5 << 20;
	o->retry_base_ms = 1;
	o->max_retries = 3;
}

static void basic_of(const char *user, char out[256])
{
	char b64[200];

	s3d_base64((const uint8_t *)user, strlen(user), b64, sizeof(b64));
	snprintf(out, 256, "Basic %s", b64);
}

static void test_open_hostile(void)
{
	s3d_reg_config cfg;
	s3d_reg *r = (s3d_reg *)1;
	s3d_error err;

	memset(&cfg, 0, sizeof(cfg));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_reg_open(&cfg, &r, &err));
	cfg.url = "ftp://h";
	T_EQ_INT(S3D_E_INVAL, s3d_reg_open(&cfg, &r, &err));
	cfg.url = "http://user:pw@h:5000";
	T_EQ_INT(S3D_E_INVAL, s3d_reg_open(&cfg, &r, &err));
	T_TRUE(strstr(err.message, "pw") == NULL);
	cfg.url = "http://h:5000/?q=1";
	T_EQ_INT(S3D_E_INVAL, s3d_reg_open(&cfg, &r, &err));
	cfg.url = "http://h:5000";
	cfg.user = "nocolon";
	T_EQ_INT(S3D_E_INVAL, s3d_reg_open(&cfg, &r, &err));
	cfg.user = "a:b\r\nX: y";
	T_EQ_INT(S3D_E_INVAL, s3d_reg_open(&cfg, &r, &err));
	T_TRUE(r == NULL);
	cfg.user = "a:b";
	T_EQ_INT(S3D_OK, s3d_reg_open(&cfg, &r, &err));
	/* bad arguments never reach the network */
	T_EQ_INT(S3D_E_INVAL, s3d_reg_push_blob(r, "Bad Repo", 0, 1, D1, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reg_push_blob(r, "a", 0, 1, "sha256:short", NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reg_push_blob(r, "a", -1, 1, D1, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reg_put_manifest(r, "a", "bad tag!", MT_M, "{}", 2, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reg_put_manifest(r, "a", "v1", "nonsense", "{}", 2, NULL, &err));
	s3d_reg_close(r);
}

static void test_transport_refused(void)
{
	struct t_fault_server srv;
	struct mock m;
	s3d_reg *r;
	s3d_buf loc;
	s3d_error err;

	/* a port that was just free: connection refused */
	mock_init(&m);
	T_REQUIRE(t_fault_start(&srv, mock_answer, &m) == 0);
	t_fault_stop(&srv);
	r = mock_reg(&srv, NULL);
	T_REQUIRE(r != NULL);
	s3d_buf_init(&loc, S3D_REG_URL_MAX);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_TRANSPORT, s3d_reg_start_upload(r, "test/repo", &loc, &err));
	T_TRUE(err.curl_code != 0);
	T_EQ_INT(3, err.attempts);
	T_TRUE(strstr(err.resource, "registry POST http://127.0.0.1:") != NULL);
	s3d_buf_cleanup(&loc);
	s3d_reg_close(r);
}

static void test_push_single(void)
{
	struct t_fault_server srv;
	struct mock m;
	s3d_reg_push_opts o;
	s3d_reg *r;
	s3d_error err;
	char digest[80], path[64], want[128];
	int fd;

	T_REQUIRE(mock_start(&m, &srv) == 0);
	r = mock_reg(&srv, NULL);
	fd = temp_file(1000, digest, path);
	fast_opts(&o);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_reg_push_blob(r, "test/repo", fd, 1000, digest, &o, &err));
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(1, m.posts);
	T_EQ_INT(1, m.presigns);
	snprintf(want, sizeof(want), "?_state=st4te&presigned=true&size=1000&digest=sha256%%3a%s",
		 digest + 7);
	T_EQ_STR(want, m.presign_q[0]);
	T_EQ_INT(1, m.s3_puts);
	T_EQ_INT(1000, m.s3_bytes);
	T_EQ_INT(0, m.s3_auth_seen);
	T_EQ_INT(0, m.s3_bad_cl);        /* one Content-Length (curl's), no Expect */
	T_EQ_INT(1, m.s3_checksum_seen); /* the signed headers were sent */
	T_EQ_INT(1, m.s3_meta_seen);
	T_EQ_INT(1, m.finalizes);
	T_TRUE(strstr(m.finalize_q, digest + 7) != NULL);
	T_EQ_INT(0, m.deletes);
	pthread_mutex_unlock(&m.mu);

	/* the registry signs another length than the file's: refused, cancelled */
	pthread_mutex_lock(&m.mu);
	m.sign_wrong_length = 1;
	pthread_mutex_unlock(&m.mu);
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_push_blob(r, "test/repo", fd, 1000, digest, &o, &err));
	T_TRUE(strstr(err.message, "content-length of 1001") != NULL);
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(1, m.s3_puts);
	T_EQ_INT(1, m.deletes);
	pthread_mutex_unlock(&m.mu);

	close(fd);
	unlink(path);
	s3d_reg_close(r);
	mock_stop(&m, &srv);
}

static void test_push_multipart_retries(void)
{
	struct t_fault_server srv;
	struct mock m;
	s3d_reg_push_opts o;
	s3d_reg *r;
	s3d_error err;
	char digest[80], path[64];
	size_t size = (12u << 20) + 5;
	int fd;

	T_REQUIRE(mock_start(&m, &srv) == 0);
	m.fail_part = 2;
	m.fail_mode = F_403_ONCE; /* an expired URL: a fresh one is asked for */
	r = mock_reg(&srv, NULL);
	fd = temp_file(size, digest, path);
	fast_opts(&o);
	o.url_batch = 2;
	o.concurrency = 2;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_reg_push_blob(r, "test/repo", fd, (int64_t)size, digest, &o, &err));
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(4, m.s3_puts); /* 3 parts + 1 retry */
	T_EQ_INT(5 << 20, m.part_len[1]);
	T_EQ_INT(5 << 20, m.part_len[2]);
	T_EQ_INT((2 << 20) + 5, m.part_len[3]);
	T_EQ_INT((int64_t)size, m.s3_bytes);
	T_EQ_INT(0, m.s3_bad_cl);
	T_EQ_INT(0, m.s3_checksum_seen);
	/* parts=1 (learns the part size), then parts 2-3, then part 2 again */
	T_EQ_INT(3, m.presigns);
	T_TRUE(strstr(m.presign_q[0], "parts=1&first_part=1&size=12582917&digest=") != NULL);
	T_TRUE(strstr(m.presign_q[1], "parts=2&first_part=2&") != NULL);
	T_TRUE(strstr(m.presign_q[2], "parts=2&first_part=2&") != NULL);
	T_EQ_INT(1, m.finalizes);
	T_EQ_INT(0, m.deletes);
	pthread_mutex_unlock(&m.mu);
	/* a 500 and a dropped connection: the same URL again */
	mock_fail(&m, 1, F_500_ONCE);
	T_EQ_INT(S3D_OK, s3d_reg_push_blob(r, "test/repo", fd, (int64_t)size, digest, &o, &err));
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(4, m.s3_puts);
	T_EQ_INT(2, m.presigns);
	pthread_mutex_unlock(&m.mu);
	mock_fail(&m, 3, F_CLOSE_ONCE);
	T_EQ_INT(S3D_OK, s3d_reg_push_blob(r, "test/repo", fd, (int64_t)size, digest, &o, &err));
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(4, m.s3_puts);
	T_EQ_INT(0, m.deletes);
	pthread_mutex_unlock(&m.mu);

	close(fd);
	unlink(path);
	s3d_reg_close(r);
	mock_stop(&m, &srv);
}

static void test_push_errors(void)
{
	struct t_fault_server srv;
	struct mock m;
	s3d_reg_push_opts o;
	s3d_reg *r;
	s3d_error err;
	char digest[80], path[64], text[1024];
	int fd;

	T_REQUIRE(mock_start(&m, &srv) == 0);
	m.fail_part = 1;
	m.fail_mode = F_BADDIGEST;
	r = mock_reg(&srv, NULL);
	fd = temp_file(100, digest, path);
	fast_opts(&o);
	/* S3 refuses the bytes: its code and request id, no retry, no signature */
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_S3, s3d_reg_push_blob(r, "test/repo", fd, 100, digest, &o, &err));
	T_EQ_STR("BadDigest", err.code);
	T_EQ_STR("REQ123", err.request_id);
	T_EQ_INT(400, err.http_status);
	T_EQ_STR("S3 PUT 127.0.0.1/s3/bkt/key", err.resource);
	s3d_error_format(&err, S3D_E_S3, text, sizeof(text));
	T_TRUE(strstr(text, "SECRETSIG") == NULL && strstr(text, "Signature") == NULL);
	T_TRUE(strstr(text, "BadDigest") != NULL && strstr(text, "REQ123") != NULL);
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(1, m.s3_puts);
	T_EQ_INT(0, m.finalizes);
	T_EQ_INT(1, m.deletes); /* the session is cancelled */
	/* the registry refuses the finalize: its OCI error */
	m.fail_mode = F_NONE;
	m.finalize_mode = 1;
	pthread_mutex_unlock(&m.mu);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_DIGEST, s3d_reg_push_blob(r, "test/repo", fd, 100, digest, &o, &err));
	T_EQ_STR("DIGEST_INVALID", err.code);
	T_EQ_STR("provided digest did not match uploaded content", err.message);
	T_EQ_INT(400, err.http_status);
	T_TRUE(strncmp(err.resource, "registry PUT http://127.0.0.1:", 30) == 0);
	T_TRUE(strstr(err.resource, "_state") == NULL);
	/* a finalize answering another digest */
	pthread_mutex_lock(&m.mu);
	m.finalize_mode = 2;
	pthread_mutex_unlock(&m.mu);
	T_EQ_INT(S3D_E_DIGEST, s3d_reg_push_blob(r, "test/repo", fd, 100, digest, &o, &err));
	/* a presign answer that is not one */
	pthread_mutex_lock(&m.mu);
	m.finalize_mode = 0;
	m.presign_garbage = 1;
	m.deletes = 0;
	pthread_mutex_unlock(&m.mu);
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reg_push_blob(r, "test/repo", fd, 100, digest, &o, &err));
	T_TRUE(strstr(err.message, "presigned_url") != NULL);
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(1, m.deletes);
	pthread_mutex_unlock(&m.mu);
	/* an unknown repository: 404 from the registry */
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_reg_push_blob(r, "other", fd, 100, digest, &o, &err));
	T_EQ_STR("NAME_UNKNOWN", err.code);

	close(fd);
	unlink(path);
	s3d_reg_close(r);
	mock_stop(&m, &srv);
}

static void test_auth_basic(void)
{
	struct t_fault_server srv;
	struct mock m;
	s3d_reg_push_opts o;
	s3d_reg *r;
	s3d_error err;
	char digest[80], path[64];
	int fd, exists = 0;

	T_REQUIRE(mock_start(&m, &srv) == 0);
	m.auth = A_BASIC;
	basic_of("alice:s3cret", m.basic);
	fd = temp_file(10, digest, path);
	fast_opts(&o);

	/* no credentials: a clear error, one request */
	r = mock_reg(&srv, NULL);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_S3, s3d_reg_blob_exists(r, "test/repo", digest, &exists, &err));
	T_EQ_INT(401, err.http_status);
	T_EQ_STR("UNAUTHORIZED", err.code);
	T_TRUE(strstr(err.message, "requires credentials") != NULL);
	s3d_reg_close(r);

	/* wrong password: refused after one retry with it */
	r = mock_reg(&srv, "alice:wrong");
	pthread_mutex_lock(&m.mu);
	m.unauth = 0;
	pthread_mutex_unlock(&m.mu);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_S3, s3d_reg_push_blob(r, "test/repo", fd, 10, digest, &o, &err));
	T_EQ_INT(401, err.http_status);
	T_TRUE(strstr(err.message, "refused the credentials") != NULL);
	T_TRUE(strstr(err.message, "wrong") == NULL);
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(2, m.unauth);
	T_EQ_INT(0, m.posts);
	pthread_mutex_unlock(&m.mu);
	s3d_reg_close(r);

	/* the right one: Basic after the first 401, then on every call */
	r = mock_reg(&srv, "alice:s3cret");
	T_EQ_INT(S3D_OK, s3d_reg_push_blob(r, "test/repo", fd, 10, digest, &o, &err));
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(3, m.unauth);
	T_EQ_INT(1, m.posts);
	T_EQ_INT(1, m.finalizes);
	T_EQ_INT(0, m.s3_auth_seen);
	T_EQ_STR(m.basic, m.last_auth);
	pthread_mutex_unlock(&m.mu);
	s3d_reg_close(r);

	close(fd);
	unlink(path);
	mock_stop(&m, &srv);
}

static void test_auth_bearer(void)
{
	struct t_fault_server srv;
	struct mock m;
	s3d_reg_push_opts o;
	s3d_reg *r;
	s3d_error err;
	char digest[80], path[64];
	int fd;

	T_REQUIRE(mock_start(&m, &srv) == 0);
	m.auth = A_BEARER;
	basic_of("bob:pw", m.basic); /* what the token server wants */
	fd = temp_file(10, digest, path);
	fast_opts(&o);

	r = mock_reg(&srv, "bob:pw");
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_reg_push_blob(r, "test/repo", fd, 10, digest, &o, &err));
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(1, m.tokens);
	T_EQ_INT(1, m.unauth);
	T_TRUE(strstr(m.token_q, "service=svc") != NULL);
	T_TRUE(strstr(m.token_q, "scope=repository%3atest%2frepo%3apull%2cpush") != NULL);
	T_EQ_STR("Bearer tok123", m.last_auth);
	T_EQ_INT(0, m.s3_auth_seen);
	T_EQ_INT(1, m.finalizes);
	pthread_mutex_unlock(&m.mu);
	s3d_reg_close(r);

	/* the token server refuses the credentials */
	r = mock_reg(&srv, "bob:nope");
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_S3, s3d_reg_push_blob(r, "test/repo", fd, 10, digest, &o, &err));
	T_EQ_INT(401, err.http_status);
	T_TRUE(strstr(err.message, "token server refused") != NULL);
	T_TRUE(strncmp(err.resource, "token GET http://127.0.0.1:", 27) == 0);
	s3d_reg_close(r);

	close(fd);
	unlink(path);
	mock_stop(&m, &srv);
}

static void test_exists_and_manifest(void)
{
	struct t_fault_server srv;
	struct mock m;
	s3d_reg *r;
	s3d_error err;
	char got[80];
	const char *body = "{\"schemaVersion\":2}";
	int exists = -1;

	T_REQUIRE(mock_start(&m, &srv) == 0);
	r = mock_reg(&srv, NULL);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_reg_blob_exists(r, "test/repo", D1, &exists, &err));
	T_EQ_INT(0, exists);
	pthread_mutex_lock(&m.mu);
	m.head_status = 200;
	pthread_mutex_unlock(&m.mu);
	T_EQ_INT(S3D_OK, s3d_reg_blob_exists(r, "test/repo", D1, &exists, &err));
	T_EQ_INT(1, exists);
	pthread_mutex_lock(&m.mu);
	m.head_status = 307;
	pthread_mutex_unlock(&m.mu);
	T_EQ_INT(S3D_OK, s3d_reg_blob_exists(r, "test/repo", D1, &exists, &err));
	T_EQ_INT(1, exists);
	pthread_mutex_lock(&m.mu);
	m.head_status = 503; /* retried, then reported */
	pthread_mutex_unlock(&m.mu);
	T_EQ_INT(S3D_E_S3, s3d_reg_blob_exists(r, "test/repo", D1, &exists, &err));
	T_EQ_INT(503, err.http_status);
	T_EQ_INT(0, exists);
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(3 + 3, m.heads);
	pthread_mutex_unlock(&m.mu);

	/* manifest PUT: Content-Type is the media type; the digest is checked */
	{
		char want[80];
		uint8_t md[32];
		int i;

		t_sha256(body, strlen(body), md);
		strcpy(want, "sha256:");
		for (i = 0; i < 32; i++)
			sprintf(want + 7 + 2 * i, "%02x", md[i]);
		m.manifest_digest = want;
		T_EQ_INT(S3D_OK, s3d_reg_put_manifest(r, "test/repo", "v1", MT_M, body, strlen(body), got,
						      &err));
		T_EQ_STR(want, got);
		T_EQ_STR(MT_M, m.manifest_ct);
		m.manifest_digest = D2;
		T_EQ_INT(S3D_E_DIGEST, s3d_reg_put_manifest(r, "test/repo", want, MT_I, body,
							    strlen(body), got, &err));
		T_EQ_STR(MT_I, m.manifest_ct);
	}
	s3d_reg_close(r);
	mock_stop(&m, &srv);
}

/* Ctrl-C during the upload: S3D_E_ABORTED, the session cancelled (one
 * DELETE, not retried), never finalized. */
static void test_push_interrupted(void)
{
	struct t_fault_server srv;
	struct mock m;
	s3d_reg_push_opts o;
	volatile sig_atomic_t stop = 0;
	s3d_reg *r;
	s3d_error err;
	char digest[80], path[64];
	size_t size = (12u << 20) + 5;
	int fd;

	T_REQUIRE(mock_start(&m, &srv) == 0);
	r = mock_reg(&srv, NULL);
	fd = temp_file(size, digest, path);
	fast_opts(&o);
	o.concurrency = 1;
	o.stop = &stop;
	/* set before the call: no session is opened */
	stop = SIGINT;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_ABORTED, s3d_reg_push_blob(r, "test/repo", fd, (int64_t)size, digest, &o,
						  &err));
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(0, m.posts);
	T_EQ_INT(0, m.deletes);
	/* set by the first part PUT: the upload stops, the session is cancelled
	   (the DELETE fails: it is not retried) */
	stop = 0;
	m.stop_on_put = &stop;
	m.delete_status = 503;
	pthread_mutex_unlock(&m.mu);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_ABORTED, s3d_reg_push_blob(r, "test/repo", fd, (int64_t)size, digest, &o,
						  &err));
	T_EQ_STR("interrupted", err.message);
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(1, m.posts);
	T_TRUE(m.s3_puts >= 1 && m.s3_puts < 3);
	T_EQ_INT(0, m.finalizes);
	T_EQ_INT(1, m.deletes);
	/* a one-PUT blob interrupted: not finalized either */
	stop = 0;
	m.delete_status = 0;
	m.deletes = m.s3_puts = 0;
	pthread_mutex_unlock(&m.mu);
	T_EQ_INT(S3D_E_ABORTED, s3d_reg_push_blob(r, "test/repo", fd, 1000, digest, &o, &err));
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(1, m.s3_puts);
	T_EQ_INT(0, m.finalizes);
	T_EQ_INT(1, m.deletes);
	pthread_mutex_unlock(&m.mu);

	close(fd);
	unlink(path);
	s3d_reg_close(r);
	mock_stop(&m, &srv);
}

/* A manifest whose digest the caller has: sent as is, the answer checked. */
static void test_put_manifest_as(void)
{
	struct t_fault_server srv;
	struct mock m;
	s3d_reg *r;
	s3d_error err;

	T_REQUIRE(mock_start(&m, &srv) == 0);
	r = mock_reg(&srv, NULL);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_reg_put_manifest_as(r, "test/repo", "v1", MT_M, "{}", 2,
						      "sha256:short", &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reg_put_manifest_as(r, "test/repo", "v1", MT_M, "{}", 2, NULL,
						      &err));
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(0, m.manifests);
	m.manifest_digest = D1;
	pthread_mutex_unlock(&m.mu);
	T_EQ_INT(S3D_OK, s3d_reg_put_manifest_as(r, "test/repo", "v1", MT_M, "{}", 2, D1, &err));
	T_EQ_INT(S3D_E_DIGEST, s3d_reg_put_manifest_as(r, "test/repo", "v1", MT_M, "{}", 2, D2,
						       &err));
	T_TRUE(strstr(err.message, "answered digest " D1 " for " D2) != NULL);
	T_TRUE(strncmp(err.resource, "registry PUT http://127.0.0.1:", 30) == 0);
	pthread_mutex_lock(&m.mu);
	T_EQ_INT(2, m.manifests);
	pthread_mutex_unlock(&m.mu);
	s3d_reg_close(r);
	mock_stop(&m, &srv);
}

/* The file digest push-blob declares; manifests hashed by the library. */
static void test_digest_fd(void)
{
	char digest[80], want[80], path[64];
	int64_t size = -1;
	int fd;

	T_EQ_INT(S3D_E_IO, s3d_reg_digest_fd(-1, digest, &size));
	fd = temp_file((3u << 20) + 7, want, path);
	T_REQUIRE(fd >= 0);
	T_EQ_INT(S3D_OK, s3d_reg_digest_fd(fd, digest, &size));
	T_EQ_STR(want, digest);
	T_EQ_INT((3 << 20) + 7, size);
	T_TRUE(ftruncate(fd, 0) == 0);
	T_EQ_INT(S3D_OK, s3d_reg_digest_fd(fd, digest, &size));
	T_EQ_STR("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", digest);
	T_EQ_INT(0, size);
	close(fd);
	unlink(path);
}

int main(void)
{
	T_RUN(test_challenge_hostile);
	T_RUN(test_challenge);
	T_RUN(test_presign_single_hostile);
	T_RUN(test_presign_single);
	T_RUN(test_presign_parts);
	T_RUN(test_token);
	T_RUN(test_error_body);
	T_RUN(test_manifest_hostile);
	T_RUN(test_manifest);
	T_RUN(test_layout_and_index);
	T_RUN(test_names);
	T_RUN(test_url_append);
	T_RUN(test_open_hostile);
	T_RUN(test_transport_refused);
	T_RUN(test_push_single);
	T_RUN(test_push_multipart_retries);
	T_RUN(test_push_errors);
	T_RUN(test_auth_basic);
	T_RUN(test_auth_bearer);
	T_RUN(test_exists_and_manifest);
	T_RUN(test_push_interrupted);
	T_RUN(test_put_manifest_as);
	T_RUN(test_digest_fd);
	return t_done("regclient");
}
