#include "t.h"

#include "s3direct.h"
#include "uri.h"

static const char *enc(s3d_buf *b, const char *s, size_t n, int keep_slash)
{
	s3d_buf_reset(b);
	if (s3d_uri_encode(b, s, n, keep_slash) != S3D_OK)
		return "(error)";
	return s3d_buf_str(b);
}

static const char *norm(s3d_buf *b, const char *s)
{
	s3d_buf_reset(b);
	if (s3d_uri_normalize_path(b, s, strlen(s)) != S3D_OK)
		return "(error)";
	return s3d_buf_str(b);
}

static void test_hostile(void)
{
	s3d_buf b;

	s3d_buf_init(&b, 5);
	/* every escaped byte triples: the ceiling holds */
	T_EQ_INT(S3D_E_TOOBIG, s3d_uri_encode(&b, "  ", 2, 1));
	s3d_buf_cleanup(&b);
	s3d_buf_init(&b, 64);
	T_EQ_STR("%00%FF%0A%0D", enc(&b, "\0\xff\n\r", 4, 1));
	T_EQ_STR("", enc(&b, "", 0, 0));
	s3d_buf_cleanup(&b);
}

static void test_sigv4_rules(void)
{
	s3d_buf b;

	s3d_buf_init(&b, 4096);
	T_EQ_STR("AZaz09-_.~", enc(&b, "AZaz09-_.~", 10, 0));
	T_EQ_STR("a/b//c/", enc(&b, "a/b//c/", 7, 1));
	T_EQ_STR("a%2Fb", enc(&b, "a/b", 3, 0));
	T_EQ_STR("%20%2B%2A%25%3D%26%3F%23%21%24", enc(&b, " +*%=&?#!$", 10, 1));
	T_EQ_STR("%E1%88%B4", enc(&b, "\xe1\x88\xb4", 3, 0));
	/* keys are never normalized by encoding */
	T_EQ_STR("./../a", enc(&b, "./../a", 6, 1));
	s3d_buf_cleanup(&b);
}

static void test_normalize(void)
{
	s3d_buf b;

	s3d_buf_init(&b, 4096);
	T_EQ_STR("/", norm(&b, ""));
	T_EQ_STR("/", norm(&b, "/"));
	T_EQ_STR("/", norm(&b, "//"));
	T_EQ_STR("/", norm(&b, "/.."));
	T_EQ_STR("/", norm(&b, "/../.."));
	T_EQ_STR("/example", norm(&b, "/./example"));
	T_EQ_STR("/example/", norm(&b, "//example//"));
	T_EQ_STR("/", norm(&b, "/example/.."));
	T_EQ_STR("/a/c", norm(&b, "/a/b/../c"));
	T_EQ_STR("/a/", norm(&b, "/a/b/../"));
	T_EQ_STR("/...", norm(&b, "/..."));
	s3d_buf_cleanup(&b);
}

int main(void)
{
	T_RUN(test_hostile);
	T_RUN(test_sigv4_rules);
	T_RUN(test_normalize);
	return t_done("uri");
}
