/*
 * Minimal test harness shared by the C unit tests: hostile cases first, every
 * check counted, and one closing line CI understands: "N passed, N failed".
 *
 *   static void test_x(void) { T_EQ_INT(1, 1); T_EQ_STR("a", "a"); }
 *   int main(void) { T_RUN(test_x); return t_done("buf"); }
 */
#ifndef S3D_TEST_T_H
#define S3D_TEST_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

static int t_checks_failed_in_case;
static int t_cases_passed, t_cases_failed;

#define T_FAIL_(fmt, ...)                                                      \
	do {                                                                   \
		fprintf(stderr, "  FAIL %s:%d: " fmt "\n", __FILE__, __LINE__, \
			__VA_ARGS__);                                          \
		t_checks_failed_in_case++;                                     \
	} while (0)

#define T_TRUE(c)                                                              \
	do {                                                                   \
		if (!(c))                                                      \
			T_FAIL_("%s", #c);                                     \
	} while (0)

#define T_EQ_INT(want, got)                                                    \
	do {                                                                   \
		long long w_ = (long long)(want), g_ = (long long)(got);       \
		if (w_ != g_)                                                  \
			T_FAIL_("%s: want %lld, got %lld", #got, w_, g_);      \
	} while (0)

#define T_EQ_STR(want, got)                                                    \
	do {                                                                   \
		const char *w_ = (want), *g_ = (got);                          \
		if (!w_ || !g_ || strcmp(w_, g_) != 0)                         \
			T_FAIL_("%s:\n    want [%s]\n    got  [%s]", #got,      \
				w_ ? w_ : "(null)", g_ ? g_ : "(null)");       \
	} while (0)

#define T_EQ_MEM(want, wlen, got, glen)                                        \
	do {                                                                   \
		size_t wl_ = (wlen), gl_ = (glen);                             \
		if (wl_ != gl_ || memcmp((want), (got), wl_) != 0)             \
			T_FAIL_("%s: memory differs (want %zu bytes, got %zu)", \
				#got, wl_, gl_);                               \
	} while (0)

/* Ends the current test case when a check failed (use after setup steps). */
#define T_REQUIRE(c)                                                           \
	do {                                                                   \
		if (!(c)) {                                                    \
			T_FAIL_("required: %s", #c);                           \
			return;                                                \
		}                                                              \
	} while (0)

#define T_RUN(fn)                                                              \
	do {                                                                   \
		t_checks_failed_in_case = 0;                                   \
		fprintf(stderr, "- %s\n", #fn);                                \
		fn();                                                          \
		if (t_checks_failed_in_case) {                                 \
			t_cases_failed++;                                      \
			fprintf(stderr, "  => FAILED %s\n", #fn);              \
		} else {                                                       \
			t_cases_passed++;                                      \
		}                                                              \
	} while (0)

static inline int t_done(const char *suite)
{
	printf("%s: %d passed, %d failed\n", suite, t_cases_passed,
	       t_cases_failed);
	return t_cases_failed ? 1 : 0;
}

/* Required environment for live tests: missing means a loud failure. */
static inline const char *t_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr, "FATAL: %s is not set (run through tests/with-s3.sh)\n", name);
		printf("env: 0 passed, 1 failed\n");
		exit(1);
	}
	return v;
}

#endif
