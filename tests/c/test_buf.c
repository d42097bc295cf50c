#include "t.h"

#include "buf.h"
#include "s3direct.h"

static void test_ceiling_refuses_and_keeps_contents(void)
{
	s3d_buf b;

	s3d_buf_init(&b, 8);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "12345678"));
	T_EQ_INT(S3D_E_TOOBIG, s3d_buf_appendc(&b, '9'));
	T_EQ_INT(S3D_E_TOOBIG, s3d_buf_append(&b, "x", SIZE_MAX));
	T_EQ_INT(S3D_E_TOOBIG, s3d_buf_printf(&b, "%d", 1));
	T_EQ_INT(8, b.len);
	T_EQ_STR("12345678", s3d_buf_str(&b));
	s3d_buf_cleanup(&b);
}

static void test_zero_ceiling(void)
{
	s3d_buf b;

	s3d_buf_init(&b, 0);
	T_EQ_STR("", s3d_buf_str(&b));
	T_EQ_INT(S3D_E_TOOBIG, s3d_buf_appendc(&b, 'a'));
	T_EQ_INT(S3D_OK, s3d_buf_append(&b, "", 0));
	T_EQ_STR("", s3d_buf_str(&b));
	s3d_buf_cleanup(&b);
	s3d_buf_cleanup(&b); /* idempotent */
}

static void test_growth_and_terminator(void)
{
	s3d_buf b;
	int i;

	s3d_buf_init(&b, 1 << 20);
	for (i = 0; i < 10000; i++)
		T_EQ_INT(S3D_OK, s3d_buf_printf(&b, "%04d", i % 10000));
	T_EQ_INT(40000, b.len);
	T_EQ_INT(0, b.ptr[b.len]);
	T_TRUE(memcmp(b.ptr + 39996, "9999", 4) == 0);
	s3d_buf_reset(&b);
	T_EQ_INT(0, b.len);
	T_EQ_STR("", s3d_buf_str(&b));
	T_EQ_INT(S3D_OK, s3d_buf_append(&b, "a\0b", 3));
	T_EQ_INT(3, s3d_buf_view(&b).len);
	s3d_buf_cleanup_wipe(&b);
	T_TRUE(b.ptr == NULL);
}

static void test_strlcpy(void)
{
	char small[4];

	T_EQ_INT(S3D_E_TOOBIG, s3d_strlcpy(small, sizeof(small), "abcd", 4));
	T_EQ_STR("", small);
	T_EQ_INT(S3D_OK, s3d_strlcpy(small, sizeof(small), "abc", 3));
	T_EQ_STR("abc", small);
	T_EQ_INT(S3D_E_TOOBIG, s3d_strlcpy(small, 0, "", 0));
}

static void test_errors(void)
{
	s3d_error e;
	char out[512];

	T_EQ_STR("success", s3d_strerror(S3D_OK));
	T_EQ_STR("unknown error", s3d_strerror(-1));
	T_EQ_STR("unknown error", s3d_strerror(S3D_E_LAST));
	T_EQ_STR("digest mismatch", s3d_strerror(S3D_E_DIGEST));
	s3d_error_clear(&e);
	s3d_error_format(&e, S3D_E_TIMEOUT, out, sizeof(out));
	T_EQ_STR("timed out", out);
	e.http_status = 404;
	snprintf(e.code, sizeof(e.code), "NoSuchKey");
	snprintf(e.message, sizeof(e.message), "The specified key does not exist.");
	snprintf(e.request_id, sizeof(e.request_id), "REQ1");
	s3d_error_format(&e, S3D_E_S3, out, sizeof(out));
	T_EQ_STR("NoSuchKey: The specified key does not exist. (HTTP 404, request id REQ1)", out);
	s3d_error_format(&e, S3D_E_S3, out, 5); /* truncates, stays terminated */
	T_EQ_STR("NoSu", out);
}

int main(void)
{
	T_RUN(test_ceiling_refuses_and_keeps_contents);
	T_RUN(test_zero_ceiling);
	T_RUN(test_growth_and_terminator);
	T_RUN(test_strlcpy);
	T_RUN(test_errors);
	return t_done("buf");
}
