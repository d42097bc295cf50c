/*
 * regconfig: the registry configuration reader. Hostile inputs first (size,
 * nesting, alias and merge bombs, syntax, secrets in messages), then the
 * registry's model (version, storage section, environment overrides), every
 * parameter's default, type and range as bridge/driver/params.go and
 * presign_params.go have them, yaml.v2's typing, the AWS endpoints, and a
 * live check that a loaded configuration opens the driver and the service
 * on the S3 server of tests/with-s3.sh.
 */
#include "t.h"
#include "t_s3.h"

#include "regconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_NAME "/etc/registry/config.yml"
#define SECRET "s3cr3t-SENTINEL-value"

static char *noenv[] = { NULL };

#define BASE                                   \
	"version: 0.1\n"                       \
	"log:\n"                               \
	"  level: info\n"                      \
	"storage:\n"                           \
	"  s3direct:\n"                        \
	"    regionendpoint: http://127.0.0.1:9000\n" \
	"    bucket: registry\n"               \
	"    accesskey: AKIATESTKEY\n"         \
	"    secretkey: " SECRET "\n"

static s3d_regconfig cfg;
static s3d_error err;

/* Parses text (printf format) with env; the result in cfg/err. */
static int parsef(char *const *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int parsef(char *const *env, const char *fmt, ...)
{
	static char text[1 << 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	s3d_regconfig_cleanup(&cfg);
	s3d_error_clear(&err);
	return s3d_regconfig_parse(FILE_NAME, text, strlen(text), env ? env : noenv, &cfg, &err);
}

static int has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

#define T_MSG_HAS(needle)                                                          \
	do {                                                                       \
		if (!has(err.message, (needle)))                                   \
			T_FAIL_("message [%s] lacks [%s]", err.message, (needle)); \
	} while (0)

/* A parse that must fail with rc, naming needle (and never the secret). */
#define T_BAD(rc_, needle, ...)                                                    \
	do {                                                                       \
		T_EQ_INT((rc_), parsef(__VA_ARGS__));                              \
		T_MSG_HAS(needle);                                                 \
		T_TRUE(!has(err.message, SECRET));                                 \
	} while (0)

/* ---------------------------------------------------------------- hostile */

static void test_too_big(void)
{
	size_t n = S3D_REGCONFIG_MAX_FILE + 1;
	char *big = malloc(n);
	int rc;

	T_REQUIRE(big);
	memset(big, '#', n);
	s3d_error_clear(&err);
	rc = s3d_regconfig_parse(FILE_NAME, big, n, noenv, &cfg, &err);
	T_EQ_INT(S3D_E_TOOBIG, rc);
	T_MSG_HAS(FILE_NAME);
	T_MSG_HAS("larger than 1048576 bytes");
	/* exactly the limit is read (a comment only: then no version) */
	rc = s3d_regconfig_parse(FILE_NAME, big, n - 1, noenv, &cfg, &err);
	T_EQ_INT(S3D_E_INVAL, rc);
	T_MSG_HAS("unsupported version");
	free(big);
}

static void test_deep_nesting(void)
{
	char text[4096];
	size_t o;
	int i;

	o = (size_t)snprintf(text, sizeof(text), "version: 0.1\nx: ");
	for (i = 0; i < 200; i++)
		text[o++] = '[';
	text[o] = 0;
	T_EQ_INT(S3D_E_TOOBIG, parsef(NULL, "%s", text));
	T_MSG_HAS("nested deeper than 64 levels");
	T_MSG_HAS(FILE_NAME ":2:");
	/* 60 levels of block mappings are fine (and ignored) */
	o = (size_t)snprintf(text, sizeof(text), BASE "deep:\n");
	for (i = 0; i < 60; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "%*sk%d:\n", 2 * (i + 1), "", i);
	T_EQ_INT(S3D_OK, parsef(NULL, "%s", text));
}

/* The classic billion laughs: parsed without expansion, in no time. */
static void test_alias_bomb(void)
{
	char text[8192];
	size_t o;
	int i, k;

	o = (size_t)snprintf(text, sizeof(text), BASE "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
	for (i = 1; i < 10; i++) {
		o += (size_t)snprintf(text + o, sizeof(text) - o, "a%d: &a%d [", i, i);
		for (k = 0; k < 9; k++)
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s*a%d", k ? ", " : "", i - 1);
		o += (size_t)snprintf(text + o, sizeof(text) - o, "]\n");
	}
	T_EQ_INT(S3D_OK, parsef(NULL, "%s", text));
	T_EQ_STR("registry", cfg.driver.bucket);

	/* too many aliases at all */
	o = (size_t)snprintf(text, sizeof(text), BASE "a: &a x\nb: [");
	T_REQUIRE(o < sizeof(text));
	{
		size_t n = 5000 * 4 + 1024;
		char *many = malloc(n);

		T_REQUIRE(many);
		memcpy(many, text, o);
		for (i = 0; i < 5000; i++) {
			memcpy(many + o, "*a, ", 4);
			o += 4;
		}
		memcpy(many + o, "]\n", 3);
		s3d_regconfig_cleanup(&cfg);
		s3d_error_clear(&err);
		T_EQ_INT(S3D_E_TOOBIG, s3d_regconfig_parse(FILE_NAME, many, strlen(many), noenv, &cfg, &err));
		T_MSG_HAS("more than 4096 aliases");
		free(many);
	}
	/* an alias to nothing */
	T_BAD(S3D_E_INVAL, "unknown anchor 'nope'", NULL, BASE "x: *nope\n");
}

/* Merge keys through aliases: 16^8 entries if expanded; refused by budget. */
static void test_merge_bomb(void)
{
	char text[8192];
	size_t o;
	int i, k;

	o = (size_t)snprintf(text, sizeof(text), "version: 0.1\nl0: &l0 {a: 1}\n");
	for (i = 1; i <= 8; i++) {
		o += (size_t)snprintf(text + o, sizeof(text) - o, "l%d: &l%d {<<: [", i, i);
		for (k = 0; k < 16; k++)
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s*l%d", k ? ", " : "", i - 1);
		o += (size_t)snprintf(text + o, sizeof(text) - o, "]}\n");
	}
	snprintf(text + o, sizeof(text) - o, "storage:\n  s3direct:\n    <<: *l8\n");
	T_EQ_INT(S3D_E_TOOBIG, parsef(NULL, "%s", text));
	T_MSG_HAS("merge keys (<<) expand to too many entries");
	/* a merge of something that is not a mapping */
	T_BAD(S3D_E_INVAL, "a merge key (<<) takes a mapping or a list of mappings", NULL,
	      BASE "    <<: 5\n");
	T_BAD(S3D_E_INVAL, "takes mappings only", NULL, BASE "    <<: [5]\n");
}

static void test_syntax(void)
{
	T_BAD(S3D_E_INVAL, FILE_NAME ":5: YAML: did not find expected ',' or ']' while parsing a flow "
	      "sequence started at line 3", NULL, "version: 0.1\nstorage:\n  s3direct: [\n  x: 1\n");
	T_BAD(S3D_E_INVAL, "YAML: ", NULL, "version: 0.1\n\tstorage: x\n");
	T_BAD(S3D_E_INVAL, "not a registry configuration", NULL, "- a\n- b\n");
	T_BAD(S3D_E_INVAL, "unsupported version \"\"", NULL, "%s", "");
	T_BAD(S3D_E_INVAL, "unsupported version \"\"", NULL, "storage: s3direct\n");
	T_BAD(S3D_E_INVAL, FILE_NAME ":1: version: unsupported version \"0.2\"", NULL,
	      "version: 0.2\nstorage: s3direct\n");
	T_BAD(S3D_E_INVAL, "not a mapping or list", NULL, "version: [0.1]\n");
	/* only the first document is read */
	T_EQ_INT(S3D_OK, parsef(NULL, BASE "---\n{{{{ not read\n"));
	/* a NUL byte from an escape in a string parameter */
	T_BAD(S3D_E_INVAL, "storage.s3direct.bucket: contains a NUL byte", NULL,
	      BASE "    bucket: \"a\\0b\"\n");
}

/* No error ever shows a secret, whichever parameter fails. */
static void test_secrets_never_shown(void)
{
	char *env[] = { "AWS_ACCESS_KEY_ID=AKIAENV", "AWS_SECRET_ACCESS_KEY=" SECRET,
			"AWS_SESSION_TOKEN=" SECRET "-token", NULL };
	static const char *const bad[] = {
		"    chunksize: nope\n", "    secure: maybe\n", "    storageclass: COLD\n",
		"    regionendpoint: ftp://x\n", "    sessionttl: forever\n", "    bogus: 1\n",
		"    secretkey: {a: " SECRET "}\n", "    accesskey: [" SECRET "]\n",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		T_TRUE(parsef(NULL, BASE "%s", bad[i]) != S3D_OK);
		T_TRUE(err.message[0] != 0);
		T_TRUE(!has(err.message, SECRET));
		T_TRUE(parsef(env, "version: 0.1\nstorage:\n  s3direct:\n    bucket: b\n"
				   "    regionendpoint: http://h\n%s", bad[i]) != S3D_OK);
		T_TRUE(!has(err.message, SECRET));
	}
	/* the secret from the environment with an error elsewhere */
	{
		char *env2[] = { "REGISTRY_STORAGE_S3DIRECT_SECRETKEY=" SECRET,
				 "REGISTRY_STORAGE_S3DIRECT_CHUNKSIZE=ten", NULL };

		T_BAD(S3D_E_INVAL, "chunksize (from REGISTRY_STORAGE_S3DIRECT_CHUNKSIZE): must be an "
		      "integer, ten invalid", env2, BASE);
	}
}

/* --------------------------------------------------------- registry model */

static void test_not_s3direct(void)
{
	T_BAD(S3D_E_UNSUPPORTED, "storage driver is filesystem, not s3direct", NULL,
	      "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n"
	      "  delete:\n    enabled: true\n");
	T_MSG_HAS(FILE_NAME ":3: storage:");
	T_BAD(S3D_E_UNSUPPORTED, "storage driver is s3, not s3direct", NULL,
	      "version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: us-east-1\n");
	T_BAD(S3D_E_UNSUPPORTED, "storage driver is inmemory", NULL,
	      "version: 0.1\nstorage: inmemory\n");
	T_BAD(S3D_E_INVAL, "no storage configuration provided", NULL,
	      "version: 0.1\nstorage:\n  delete:\n    enabled: true\n");
	T_BAD(S3D_E_INVAL, "no storage configuration provided", NULL, "version: 0.1\nlog: {}\n");
	T_BAD(S3D_E_INVAL, "must provide exactly one storage type, provided: s3direct, filesystem",
	      NULL, "version: 0.1\nstorage:\n  s3direct: {}\n  filesystem: {}\n");
	T_BAD(S3D_E_INVAL, "storage.s3direct: must be a mapping of parameters", NULL,
	      "version: 0.1\nstorage:\n  s3direct: yes\n");
	T_BAD(S3D_E_INVAL, "not a list", NULL, "version: 0.1\nstorage: [s3direct]\n");
	/* the string form is a driver without parameters */
	T_BAD(S3D_E_INVAL, FILE_NAME ":2: storage.s3direct.region: no region parameter provided",
	      NULL, "version: 0.1\nstorage: s3direct\n");
}

static void test_unknown_params(void)
{
	T_BAD(S3D_E_INVAL, FILE_NAME ":10: storage.s3direct: unknown parameter chunksise", NULL,
	      BASE "    chunksise: 10\n");
	T_BAD(S3D_E_INVAL, "unknown parameters Bucket, chunksise, zzz", NULL,
	      BASE "    zzz: 1\n    chunksise: 10\n    Bucket: x\n");
}

static void test_defaults(void)
{
	T_REQUIRE(parsef(NULL, BASE) == S3D_OK);
	T_EQ_STR("http://127.0.0.1:9000", cfg.driver.client.endpoint);
	T_EQ_STR("us-east-1", cfg.driver.client.region);
	T_EQ_STR("AKIATESTKEY", cfg.driver.client.access_key);
	T_EQ_STR(SECRET, cfg.driver.client.secret_key);
	T_TRUE(cfg.driver.client.session_token == NULL);
	T_EQ_STR("parameters", cfg.cred_source);
	/* a host-name-compatible bucket is virtual-hosted unless forcepathstyle */
	T_EQ_INT(1, cfg.driver.client.virtual_hosted);
	T_EQ_INT(0, cfg.driver.client.skip_verify);
	T_EQ_STR("s3direct/" S3D_VERSION, cfg.driver.client.user_agent);
	T_EQ_INT(10000, cfg.driver.client.connect_timeout_ms);
	T_EQ_INT(6, cfg.driver.client.max_retries);
	T_EQ_INT(100, cfg.driver.client.retry_base_ms);
	T_EQ_INT(120000, cfg.driver.client.retry_deadline_ms);
	T_EQ_STR("registry", cfg.driver.bucket);
	T_EQ_STR("", cfg.driver.root);
	T_EQ_STR("STANDARD", cfg.driver.put.storage_class);
	T_TRUE(cfg.driver.put.acl == NULL && cfg.driver.put.sse == NULL &&
	       cfg.driver.put.sse_kms_key_id == NULL);
	T_EQ_INT(10 << 20, cfg.driver.part_size);
	T_EQ_INT(2, cfg.driver.parts_in_flight);
	T_EQ_INT(20 << 20, cfg.driver.upload_memory); /* partsinflight x chunksize */
	T_EQ_INT(32 << 20, cfg.driver.copy_threshold);
	T_EQ_INT(32 << 20, cfg.driver.copy_part_size);
	T_EQ_INT(8, cfg.driver.copy_concurrency);
	T_EQ_INT(1200, cfg.driver.redirect_expires);
	T_EQ_INT(0, cfg.presign); /* off unless asked for: a drop-in for s3 */
	T_EQ_STR("/var/lib/s3direct/sessions", cfg.service.index.path);
	T_EQ_INT(3600, cfg.service.url_expires);
	T_EQ_INT(86400, cfg.service.session_ttl);
	T_EQ_INT(600, cfg.sweep_interval);
	T_EQ_INT(0, cfg.service.max_blob_size);
	T_EQ_INT(0, cfg.service.repo_quota);
	T_EQ_INT(64 << 20, cfg.service.part_size);
	T_EQ_STR("off", cfg.log_level);
}

/* Every parameter set, as registry-config/config-aws-example.yml would. */
static void test_every_parameter(void)
{
	T_REQUIRE(parsef(NULL,
			 "version: 0.1\n"
			 "storage:\n"
			 "  s3direct:\n"
			 "    accesskey: AK\n"
			 "    secretkey: SK\n"
			 "    region: eu-central-1\n"
			 "    regionendpoint: \"\"\n"
			 "    forcepathstyle: true\n"
			 "    bucket: my-bucket\n"
			 "    encrypt: true\n"
			 "    keyid: arn:aws:kms:eu-central-1:1:key/k\n"
			 "    secure: true\n"
			 "    skipverify: \"true\"\n"
			 "    v4auth: true\n"
			 "    chunksize: 16777216\n"
			 "    multipartcopychunksize: 67108864\n"
			 "    multipartcopymaxconcurrency: 100\n"
			 "    multipartcopythresholdsize: 0\n"
			 "    rootdirectory: /registry/prod/\n"
			 "    storageclass: standard_ia\n"
			 "    useragent: my-registry/2\n"
			 "    usedualstack: false\n"
			 "    accelerate: false\n"
			 "    usefipsendpoint: false\n"
			 "    objectacl: bucket-owner-full-control\n"
			 "    loglevel: DebugWithSigning\n"
			 "    partsinflight: 4\n"
			 "    uploadmemory: 0\n"
			 "    connecttimeout: 1500ms\n"
			 "    maxretries: 0\n"
			 "    retrydeadline: 1h30m\n"
			 "    presign: true\n"
			 "    sessionindex: relative/sessions\n"
			 "    presignexpiry: 90\n"
			 "    sessionttl: 1.5h\n"
			 "    sweepinterval: 0\n"
			 "    maxblobsize: 1073741824\n"
			 "    repoquota: \"2147483648\"\n"
			 "    presignpartsize: 5242880\n") == S3D_OK);
	T_EQ_STR("https://s3.eu-central-1.amazonaws.com", cfg.driver.client.endpoint);
	T_EQ_INT(0, cfg.driver.client.virtual_hosted);
	T_EQ_INT(1, cfg.driver.client.skip_verify);
	T_EQ_STR("aws:kms", cfg.driver.put.sse);
	T_EQ_STR("arn:aws:kms:eu-central-1:1:key/k", cfg.driver.put.sse_kms_key_id);
	T_EQ_INT(16 << 20, cfg.driver.part_size);
	T_EQ_INT(64 << 20, cfg.driver.copy_part_size);
	T_EQ_INT(64, cfg.driver.copy_concurrency);       /* the engine's pool ceiling */
	T_EQ_INT(5 << 20, cfg.driver.copy_threshold);    /* at least 5 MiB */
	T_EQ_STR("registry/prod", cfg.driver.root);
	T_EQ_STR("STANDARD_IA", cfg.driver.put.storage_class);
	T_EQ_STR("s3direct/" S3D_VERSION " my-registry/2", cfg.driver.client.user_agent);
	T_EQ_STR("bucket-owner-full-control", cfg.driver.put.acl);
	T_EQ_STR("debugwithsigning", cfg.log_level);
	T_EQ_INT(4, cfg.driver.parts_in_flight);
	T_EQ_INT(-1, cfg.driver.upload_memory); /* 0: no shared limit */
	T_EQ_INT(1500, cfg.driver.client.connect_timeout_ms);
	T_EQ_INT(0, cfg.driver.client.max_retries);
	T_EQ_INT(5400000, cfg.driver.client.retry_deadline_ms);
	T_EQ_INT(1, cfg.presign);
	T_EQ_STR("relative/sessions", cfg.service.index.path);
	T_EQ_INT(90, cfg.service.url_expires);
	T_EQ_INT(5400, cfg.service.session_ttl);
	T_EQ_INT(0, cfg.sweep_interval);
	T_EQ_INT(1073741824, cfg.service.max_blob_size);
	T_EQ_INT(2147483648LL, cfg.service.repo_quota);
	T_EQ_INT(5242880, cfg.service.part_size);

	/* encrypt without keyid: SSE-S3; keyid without encrypt: nothing */
	T_REQUIRE(parsef(NULL, BASE "    encrypt: yes\n") == S3D_OK);
	T_EQ_STR("AES256", cfg.driver.put.sse);
	T_TRUE(cfg.driver.put.sse_kms_key_id == NULL);
	T_REQUIRE(parsef(NULL, BASE "    keyid: k\n    storageclass: none\n    objectacl: private\n") ==
		  S3D_OK);
	T_TRUE(cfg.driver.put.sse == NULL && cfg.driver.put.storage_class == NULL &&
	       cfg.driver.put.acl == NULL);
	/* loglevel: anything goes (YAML's off is false) */
	T_REQUIRE(parsef(NULL, BASE "    loglevel: off\n") == S3D_OK);
	T_EQ_STR("off", cfg.log_level);
	T_REQUIRE(parsef(NULL, BASE "    loglevel: {x: 1}\n") == S3D_OK);
}

static void test_bad_values(void)
{
	T_BAD(S3D_E_INVAL, FILE_NAME ":10: storage.s3direct.chunksize: must be an integer, 10MB invalid",
	      NULL, BASE "    chunksize: 10MB\n");
	T_BAD(S3D_E_INVAL, "chunksize: 1 should be a number between 5242880 and 5368709120 (inclusive)",
	      NULL, BASE "    chunksize: 1\n");
	T_BAD(S3D_E_INVAL, "must be an integer, 6291456.5 invalid", NULL, BASE "    chunksize: 6291456.5\n");
	T_BAD(S3D_E_INVAL, "partsinflight: 65 should be a number between 1 and 64", NULL,
	      BASE "    partsinflight: 65\n");
	T_BAD(S3D_E_INVAL, "uploadmemory: -1 should be", NULL, BASE "    uploadmemory: -1\n");
	T_BAD(S3D_E_INVAL, "maxretries: -1 should be", NULL, BASE "    maxretries: -1\n");
	T_BAD(S3D_E_INVAL, "maxblobsize: must be an integer, 9223372036854775808 invalid", NULL,
	      BASE "    maxblobsize: 9223372036854775808\n");
	T_BAD(S3D_E_INVAL, "storage.s3direct.secure: should be a boolean", NULL, BASE "    secure: 1\n");
	T_BAD(S3D_E_INVAL, "secure: should be a boolean", NULL, BASE "    secure: \"yes\"\n");
	T_BAD(S3D_E_INVAL, "v4auth: is false", NULL, BASE "    v4auth: false\n");
	T_BAD(S3D_E_INVAL, "storageclass: must be one of", NULL, BASE "    storageclass: COLD\n");
	T_BAD(S3D_E_INVAL, "objectacl: invalid value Private", NULL, BASE "    objectacl: Private\n");
	T_BAD(S3D_E_INVAL, "bucket: must be a single value, not a list", NULL, BASE "    bucket: [a]\n");
	T_BAD(S3D_E_INVAL, "region: no region parameter provided", NULL,
	      "version: 0.1\nstorage:\n  s3direct:\n    bucket: b\n");
	T_BAD(S3D_E_INVAL, "region: invalid region provided: mars-1", NULL,
	      "version: 0.1\nstorage:\n  s3direct:\n    bucket: b\n    region: mars-1\n");
	T_BAD(S3D_E_INVAL, "bucket: no bucket parameter provided", NULL,
	      "version: 0.1\nstorage:\n  s3direct:\n    region: us-east-1\n    bucket: ~\n");
	T_BAD(S3D_E_INVAL, "accesskey: is set but secretkey is empty", NULL,
	      "version: 0.1\nstorage:\n  s3direct:\n    region: us-east-1\n    bucket: b\n"
	      "    accesskey: AK\n");
	T_BAD(S3D_E_INVAL, "secretkey: is set but accesskey is empty", NULL,
	      "version: 0.1\nstorage:\n  s3direct:\n    region: us-east-1\n    bucket: b\n"
	      "    secretkey: " SECRET "\n");
	T_BAD(S3D_E_INVAL, "no credentials", NULL,
	      "version: 0.1\nstorage:\n  s3direct:\n    region: us-east-1\n    bucket: b\n");
	T_BAD(S3D_E_INVAL, "regionendpoint: must be [http[s]://]host[:port] without path, query or user, "
	      "http://h/path invalid", NULL, BASE "    regionendpoint: http://h/path\n");
	T_BAD(S3D_E_INVAL, "without path, query or user", NULL, BASE "    regionendpoint: http://h?x=1\n");
	T_BAD(S3D_E_INVAL, "without path, query or user, (value not shown: it has user information) "
	      "invalid", NULL, BASE "    regionendpoint: http://user:" SECRET "@h\n");
	T_BAD(S3D_E_INVAL, "regionendpoint: must be [http[s]://]host[:port], ftp://h invalid", NULL,
	      BASE "    regionendpoint: ftp://h\n");
	/* durations */
	T_BAD(S3D_E_INVAL, "sessionttl: must be a duration (\"10s\", \"2m\") or a number of seconds, "
	      "1d invalid", NULL, BASE "    sessionttl: 1d\n");
	T_BAD(S3D_E_INVAL, "presignexpiry: 168h0m1s should be between 1s and 168h0m0s", NULL,
	      BASE "    presignexpiry: 604801\n");
	T_BAD(S3D_E_INVAL, "connecttimeout: 500" "\xc2\xb5" "s should be between 1ms and 10m0s", NULL,
	      BASE "    connecttimeout: 500us\n");
	T_BAD(S3D_E_INVAL, "sessionttl: -1s should be between", NULL, BASE "    sessionttl: -1s\n");
	T_BAD(S3D_E_INVAL, "sessionttl: must be a duration", NULL, BASE "    sessionttl: -5\n");
	T_BAD(S3D_E_INVAL, "presignpartsize: 1 should be", NULL, BASE "    presignpartsize: 1\n");
	T_BAD(S3D_E_INVAL, "presign: should be a boolean", NULL, BASE "    presign: 2\n");
}

/* yaml.v2's plain scalars: bases, separators, floats, YAML 1.1 booleans,
 * and fmt.Sprint of non-strings for string parameters. */
static void test_yaml_typing(void)
{
	T_REQUIRE(parsef(NULL, BASE "    chunksize: 0x1000000\n    partsinflight: 010\n"
			 "    maxretries: 0b101\n    maxblobsize: 1_000_000\n"
			 "    repoquota: 5.24288e6\n    presignpartsize: \" 6291456 \"\n"
			 "    secure: on\n    forcepathstyle: Y\n    skipverify: NO\n") == S3D_OK);
	T_EQ_INT(16 << 20, cfg.driver.part_size);
	T_EQ_INT(8, cfg.driver.parts_in_flight);
	T_EQ_INT(5, cfg.driver.client.max_retries);
	T_EQ_INT(1000000, cfg.service.max_blob_size);
	T_EQ_INT(5242880, cfg.service.repo_quota);
	T_EQ_INT(6291456, cfg.service.part_size);
	T_EQ_INT(0, cfg.driver.client.virtual_hosted);
	/* 08 is no octal number: yaml.v2 reads the float 8 */
	T_REQUIRE(parsef(NULL, BASE "    partsinflight: 08\n") == S3D_OK);
	T_EQ_INT(8, cfg.driver.parts_in_flight);
	/* a quoted number is a string: a string parameter keeps its text,
	 * others format as Go's fmt.Sprint does */
	T_REQUIRE(parsef(NULL, BASE "    bucket: '0x10'\n    rootdirectory: 1e6\n    useragent: 0x10\n") ==
		  S3D_OK);
	T_EQ_STR("0x10", cfg.driver.bucket);
	T_EQ_STR("1e+06", cfg.driver.root);
	T_EQ_STR("s3direct/" S3D_VERSION " 16", cfg.driver.client.user_agent);
	T_REQUIRE(parsef(NULL, BASE "    rootdirectory: 123456789.0\n    useragent: 0.0001\n") == S3D_OK);
	T_EQ_STR("1.23456789e+08", cfg.driver.root);
	T_EQ_STR("s3direct/" S3D_VERSION " 0.0001", cfg.driver.client.user_agent);
	T_REQUIRE(parsef(NULL, BASE "    rootdirectory: yes\n    useragent: 1e400\n") == S3D_OK);
	T_EQ_STR("true", cfg.driver.root);
	T_EQ_STR("s3direct/" S3D_VERSION " 1e400", cfg.driver.client.user_agent);
	/* !!str keeps text; block scalars are strings */
	T_REQUIRE(parsef(NULL, BASE "    rootdirectory: !!str 010\n    useragent: |-\n      two\n") ==
		  S3D_OK);
	T_EQ_STR("010", cfg.driver.root);
	T_EQ_STR("s3direct/" S3D_VERSION " two", cfg.driver.client.user_agent);
	/* a ~ key is "" (an unknown parameter) */
	T_BAD(S3D_E_INVAL, "unknown parameter  (docs", NULL, BASE "    ~: 1\n");
}

/* Anchors, aliases and merge keys as yaml.v2 applies them (a merge sets
 * its keys where it stands: later explicit keys win, earlier ones lose). */
static void test_anchors_and_merges(void)
{
	T_REQUIRE(parsef(NULL, "version: 0.1\n"
			 "common: &common\n  regionendpoint: http://10.0.0.1:9000\n"
			 "  accesskey: AK\n  secretkey: SK\n  bucket: shared\n"
			 "extra: &extra {chunksize: 6291456, bucket: fromextra}\n"
			 "storage:\n  s3direct:\n    <<: [*common, *extra]\n    partsinflight: 3\n") == S3D_OK);
	T_EQ_STR("shared", cfg.driver.bucket); /* the first of a list wins */
	T_EQ_INT(6291456, cfg.driver.part_size);
	T_EQ_INT(3, cfg.driver.parts_in_flight);
	T_EQ_STR("http://10.0.0.1:9000", cfg.driver.client.endpoint);
	T_REQUIRE(parsef(NULL, "version: 0.1\nc: &c {regionendpoint: h, accesskey: a, secretkey: s, "
			 "bucket: merged}\nstorage:\n  s3direct:\n    bucket: own\n    <<: *c\n") == S3D_OK);
	T_EQ_STR("merged", cfg.driver.bucket);
	T_REQUIRE(parsef(NULL, "version: 0.1\nc: &c {regionendpoint: h, accesskey: a, secretkey: s, "
			 "bucket: merged}\nstorage:\n  s3direct:\n    <<: *c\n    bucket: own\n") == S3D_OK);
	T_EQ_STR("own", cfg.driver.bucket);
	/* an aliased whole section, and the last of duplicate keys */
	T_REQUIRE(parsef(NULL, "version: 0.1\nx: &s\n  s3direct:\n    regionendpoint: h\n"
			 "    accesskey: a\n    secretkey: s\n    bucket: first\n    bucket: last\n"
			 "storage: *s\n") == S3D_OK);
	T_EQ_STR("last", cfg.driver.bucket);
	T_EQ_STR("https://h", cfg.driver.client.endpoint);
	/* a quoted '<<' is a plain key */
	T_BAD(S3D_E_INVAL, "unknown parameter <<", NULL, BASE "    '<<': {bucket: x}\n");
}

static void test_endpoints(void)
{
	static const struct {
		const char *extra, *endpoint;
		int virt;
	} cases[] = {
		{ "region: us-east-1", "https://s3.amazonaws.com", 1 },
		{ "region: eu-central-1", "https://s3.eu-central-1.amazonaws.com", 1 },
		{ "region: eu-central-1\n    secure: false", "http://s3.eu-central-1.amazonaws.com", 1 },
		{ "region: us-west-2\n    usedualstack: true", "https://s3.dualstack.us-west-2.amazonaws.com", 1 },
		{ "region: us-west-2\n    usefipsendpoint: true", "https://s3-fips.us-west-2.amazonaws.com", 1 },
		{ "region: us-west-2\n    usefipsendpoint: true\n    usedualstack: true",
		  "https://s3-fips.dualstack.us-west-2.amazonaws.com", 1 },
		{ "region: cn-north-1", "https://s3.cn-north-1.amazonaws.com.cn", 1 },
		{ "region: us-iso-east-1", "https://s3.us-iso-east-1.c2s.ic.gov", 1 },
		{ "region: us-east-1\n    accelerate: true", "https://s3-accelerate.amazonaws.com", 1 },
		{ "region: eu-west-1\n    accelerate: true\n    forcepathstyle: true",
		  "https://s3-accelerate.amazonaws.com", 1 },
		{ "region: eu-west-1\n    accelerate: true\n    usedualstack: true",
		  "https://s3-accelerate.dualstack.amazonaws.com", 1 },
		{ "region: us-east-1\n    forcepathstyle: true", "https://s3.amazonaws.com", 0 },
		{ "region: us-east-1\n    bucket: my.dotted.bucket", "https://s3.amazonaws.com", 0 },
		{ "region: us-east-1\n    bucket: my.dotted.bucket\n    secure: false",
		  "http://s3.amazonaws.com", 1 },
		{ "region: us-east-1\n    bucket: 10.0.0.1\n    secure: false", "http://s3.amazonaws.com", 0 },
		{ "region: us-east-1\n    bucket: Upper", "https://s3.amazonaws.com", 0 },
		{ "regionendpoint: minio:9000", "https://minio:9000", 1 },
		{ "regionendpoint: minio:9000\n    secure: false", "http://minio:9000", 1 },
		{ "regionendpoint: HTTP://Minio:9000/", "http://Minio:9000", 1 },
		{ "regionendpoint: http://[::1]:9000", "http://[::1]:9000", 1 },
		{ "regionendpoint: https://s3.us-west-2.amazonaws.com:8443\n    region: us-west-2\n"
		  "    accelerate: true", "https://s3-accelerate.amazonaws.com:8443", 1 },
		{ "regionendpoint: https://s3-eu.example.com\n    accelerate: true",
		  "https://s3-accelerate.example.com", 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parsef(NULL, "version: 0.1\nstorage:\n  s3direct:\n    bucket: bkt\n"
				      "    accesskey: a\n    secretkey: s\n    %s\n", cases[i].extra);

		if (rc != S3D_OK) {
			T_FAIL_("case %zu (%s): %s", i, cases[i].extra, err.message);
			continue;
		}
		T_EQ_STR(cases[i].endpoint, cfg.driver.client.endpoint);
		if (cfg.driver.client.virtual_hosted != cases[i].virt)
			T_FAIL_("case %zu (%s): virtual_hosted %d", i, cases[i].extra,
				cfg.driver.client.virtual_hosted);
	}
	/* the region of an endpoint is only the signature's */
	T_REQUIRE(parsef(NULL, BASE "    region: anything-goes\n") == S3D_OK);
	T_EQ_STR("anything-goes", cfg.driver.client.region);
	T_BAD(S3D_E_INVAL, "the AWS SDK has no S3 endpoint for region eu-isoe-west-1", NULL,
	      "version: 0.1\nstorage:\n  s3direct:\n    bucket: b\n    accesskey: a\n"
	      "    secretkey: s\n    region: eu-isoe-west-1\n");
	T_BAD(S3D_E_INVAL, "usedualstack=true", NULL,
	      "version: 0.1\nstorage:\n  s3direct:\n    bucket: b\n    accesskey: a\n"
	      "    secretkey: s\n    region: us-iso-east-1\n    usedualstack: true\n");
	T_BAD(S3D_E_INVAL, "accelerate: needs a bucket name usable as a host name label", NULL,
	      "version: 0.1\nstorage:\n  s3direct:\n    bucket: a.b\n    accesskey: a\n"
	      "    secretkey: s\n    region: us-east-1\n    accelerate: true\n");
	T_BAD(S3D_E_INVAL, "accelerate: cannot rewrite the endpoint host minio", NULL,
	      BASE "    regionendpoint: http://minio:9000\n    accelerate: true\n");
}

/* --------------------------------------------------------- environment */

static void test_env_overrides(void)
{
	char *env1[] = { "REGISTRY_STORAGE_S3DIRECT_BUCKET=fromenv",
			 "REGISTRY_STORAGE_S3DIRECT_CHUNKSIZE=6291456",
			 "REGISTRY_STORAGE_S3DIRECT_SECURE=false",
			 "REGISTRY_STORAGE_S3DIRECT_REGIONENDPOINT=minio:9000",
			 "REGISTRY_STORAGE_S3DIRECT_SESSIONINDEX=/srv/idx",
			 "REGISTRY_STORAGE_DELETE_ENABLED=true",
			 "REGISTRY_HTTP_ADDR=:5000", "UNRELATED=1", NULL };
	char *env2[] = { "REGISTRY_STORAGE_S3DIRECT_REGION=us-west-1",
			 "REGISTRY_STORAGE_S3DIRECT_BUCKET=b",
			 "REGISTRY_STORAGE=s3direct",
			 "AWS_ACCESS_KEY_ID=AKENV", "AWS_SECRET_ACCESS_KEY=" SECRET,
			 "AWS_SESSION_TOKEN=tok", NULL };
	char *env3[] = { "REGISTRY_STORAGE_S3DIRECT_BUCKET=x", NULL };
	char *env4[] = { "REGISTRY_STORAGE_S3DIRECT_PRESIGNEXPIRY=forever", NULL };
	char *env5[] = { "REGISTRY_STORAGE_S3DIRECT_CHUNKSIZE_X=1",
			 "REGISTRY_STORAGE_S3DIRECT_NEWPARAM_X=1", NULL };
	char *env6[] = { "REGISTRY_STORAGE_s3direct_bucket=lower", NULL };
	char *env7[] = { "REGISTRY_STORAGE_S3DIRECT={regionendpoint: h, bucket: whole, "
			 "accesskey: a, secretkey: s}", NULL };
	char *env8[] = { "REGISTRY_STORAGE_S3DIRECT_BUCKET=[unclosed", NULL };
	char *env9[] = { "REGISTRY_STORAGE_S3DIRECT=plain", NULL };

	T_REQUIRE(parsef(env1, BASE) == S3D_OK);
	T_EQ_STR("fromenv", cfg.driver.bucket);
	T_EQ_INT(6291456, cfg.driver.part_size);
	T_EQ_STR("http://minio:9000", cfg.driver.client.endpoint);
	T_EQ_STR("/srv/idx", cfg.service.index.path);

	/* the whole storage section from the environment, then its
	 * parameters (applied in name order), keys from AWS_* */
	T_REQUIRE(parsef(env2, "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /x\n") ==
		  S3D_OK);
	T_EQ_STR("https://s3.us-west-1.amazonaws.com", cfg.driver.client.endpoint);
	T_EQ_STR("b", cfg.driver.bucket);
	T_EQ_STR("environment", cfg.cred_source);
	T_EQ_STR("AKENV", cfg.driver.client.access_key);
	T_EQ_STR(SECRET, cfg.driver.client.secret_key);
	T_EQ_STR("tok", cfg.driver.client.session_token);

	/* an override of another driver makes two (the registry panics) */
	T_BAD(S3D_E_INVAL, "multiple storage drivers specified in configuration or environment: "
	      "filesystem, s3direct", env3, "version: 0.1\nstorage:\n  filesystem: {}\n");
	/* an override's bad value names the variable */
	T_BAD(S3D_E_INVAL, FILE_NAME ": storage.s3direct.presignexpiry (from "
	      "REGISTRY_STORAGE_S3DIRECT_PRESIGNEXPIRY): must be a duration", env4, BASE);
	/* deeper names: a plain value swallows them, a new name is a map */
	T_BAD(S3D_E_INVAL, "REGISTRY_STORAGE_S3DIRECT_NEWPARAM_X: unknown parameter newparam", env5,
	      BASE "    chunksize: 6291456\n");
	/* a lower-case driver part matches no key: the entry is recreated
	 * with that one parameter, as distribution does */
	T_BAD(S3D_E_INVAL, "region: no region parameter provided", env6, BASE);
	T_REQUIRE(parsef(env7, BASE) == S3D_OK);
	T_EQ_STR("whole", cfg.driver.bucket);
	T_BAD(S3D_E_INVAL, "REGISTRY_STORAGE_S3DIRECT_BUCKET: YAML: ", env8, BASE);
	T_BAD(S3D_E_INVAL, "REGISTRY_STORAGE_S3DIRECT: must be a mapping of parameters", env9, BASE);
	{
		char *e[] = { "AWS_ACCESS_KEY=old", "AWS_SECRET_KEY=oldsecret", NULL };

		T_REQUIRE(parsef(e, "version: 0.1\nstorage:\n  s3direct:\n    regionendpoint: h\n"
				    "    bucket: b\n") == S3D_OK);
		T_EQ_STR("old", cfg.driver.client.access_key);
		T_TRUE(cfg.driver.client.session_token == NULL);
	}
	{
		char *e[] = { "AWS_ACCESS_KEY_ID=onlyid", NULL };

		T_BAD(S3D_E_INVAL, "no credentials", e,
		      "version: 0.1\nstorage:\n  s3direct:\n    regionendpoint: h\n    bucket: b\n");
	}
}

/* ------------------------------------------------------------- files */

static void test_load_files(void)
{
	char dir[] = "/tmp/s3d-regconfig-XXXXXX", path[256], big[256];
	const char *text = BASE "    rootdirectory: from-file\n";
	FILE *f;
	size_t i;
	int rc;

	T_REQUIRE(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/config.yml", dir);
	snprintf(big, sizeof(big), "%s/big.yml", dir);

	s3d_regconfig_cleanup(&cfg);
	s3d_error_clear(&err);
	rc = s3d_regconfig_load(path, noenv, &cfg, &err);
	T_EQ_INT(S3D_E_IO, rc);
	T_EQ_INT(ENOENT, err.sys_errno);
	T_MSG_HAS(path);
	T_MSG_HAS("No such file or directory");
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_IO, s3d_regconfig_load(dir, noenv, &cfg, &err));
	T_MSG_HAS("is a directory");

	f = fopen(path, "w");
	T_REQUIRE(f);
	fputs(text, f);
	fclose(f);
	s3d_regconfig_cleanup(&cfg);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_regconfig_load(path, noenv, &cfg, &err));
	T_EQ_STR("from-file", cfg.driver.root);

	f = fopen(big, "w");
	T_REQUIRE(f);
	fputs(BASE, f);
	for (i = 0; ftell(f) <= (long)S3D_REGCONFIG_MAX_FILE; i++)
		fputs("# padding padding padding padding padding padding padding pad\n", f);
	fclose(f);
	s3d_regconfig_cleanup(&cfg);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_TOOBIG, s3d_regconfig_load(big, noenv, &cfg, &err));
	T_MSG_HAS(big);
	/* a long path is shortened to its name rather than cut */
	T_EQ_INT(S3D_OK, parsef(NULL, BASE));
	s3d_regconfig_cleanup(&cfg);
	s3d_error_clear(&err);
	{
		char longname[400];

		memset(longname, 'd', sizeof(longname));
		memcpy(longname, "/x/", 3);
		memcpy(longname + sizeof(longname) - 12, "/config.yml", 12);
		T_EQ_INT(S3D_E_INVAL, s3d_regconfig_parse(longname, BASE "    chunksize: x\n",
							  strlen(BASE "    chunksize: x\n"), noenv,
							  &cfg, &err));
		T_MSG_HAS("config.yml:10: storage.s3direct.chunksize: must be an integer, x invalid");
	}
	unlink(path);
	unlink(big);
	rmdir(dir);
}

/* ------------------------------------------------------------- live */

/* A loaded configuration opens the driver and the service: the driver's
 * root and the index come from the file. */
static void test_live(void)
{
	char bucket[64], dir[] = "/tmp/s3d-regconfig-live-XXXXXX";
	s3d_client *c = t_s3_plain_client();
	s3d_driver *d = NULL;
	s3d_service *svc = NULL;
	s3d_sweep_stats st;
	s3d_obj_info info;
	struct stat sb;
	char idx[128];
	int rc;

	T_REQUIRE(c);
	T_REQUIRE(mkdtemp(dir) != NULL);
	if (t_s3_new_bucket("regconfig", c, "regcfg", bucket, sizeof(bucket)) != 0)
		exit(1);
	snprintf(idx, sizeof(idx), "%s/sessions", dir);
	rc = parsef(NULL,
		    "version: 0.1\nstorage:\n  s3direct:\n    regionendpoint: %s\n    region: %s\n"
		    "    bucket: %s\n    accesskey: %s\n    secretkey: %s\n    forcepathstyle: true\n"
		    "    rootdirectory: /live/root/\n    sessionindex: %s\n    sessionttl: 3s\n"
		    "    maxretries: 2\n",
		    t_env("S3D_TEST_ENDPOINT"), t_env("S3D_TEST_REGION"), bucket,
		    t_env("S3D_TEST_ACCESS_KEY"), t_env("S3D_TEST_SECRET_KEY"), idx);
	T_REQUIRE(rc == S3D_OK);
	s3d_error_clear(&err);
	rc = s3d_driver_new(&cfg.driver, &d, &err);
	T_REQUIRE(rc == S3D_OK);
	T_EQ_INT(S3D_OK, s3d_driver_put_content(d, "/probe", "x", 1, &err));
	T_EQ_INT(S3D_OK, s3d_head_object(c, bucket, "live/root/probe", 0, &info, &err));
	T_EQ_INT(1, info.size);
	rc = s3d_service_new(d, &cfg.service, &svc, &err);
	T_EQ_INT(S3D_OK, rc);
	if (rc == S3D_OK) {
		T_TRUE(stat(idx, &sb) == 0 && S_ISDIR(sb.st_mode));
		memset(&st, 0xff, sizeof(st));
		T_EQ_INT(S3D_OK, s3d_service_sweep(svc, 0, &st, &err));
		T_EQ_INT(0, st.expired);
		T_EQ_INT(0, st.aborted_uploads);
		T_EQ_INT(0, st.deleted_objects);
		T_EQ_INT(0, st.errors);
		s3d_service_free(svc);
	}
	/* a wrong secret from the file: the driver refuses to start */
	s3d_driver_free(d);
	d = NULL;
	T_REQUIRE(parsef(NULL, "version: 0.1\nstorage:\n  s3direct:\n    regionendpoint: %s\n"
			 "    bucket: %s\n    accesskey: %s\n    secretkey: wrong\n"
			 "    forcepathstyle: true\n    maxretries: 0\n",
			 t_env("S3D_TEST_ENDPOINT"), bucket, t_env("S3D_TEST_ACCESS_KEY")) == S3D_OK);
	s3d_error_clear(&err);
	T_TRUE(s3d_driver_new(&cfg.driver, &d, &err) != S3D_OK);
	T_TRUE(err.code[0] != 0 || err.http_status == 403);
	s3d_driver_free(d);
	{
		const char *keys[] = { "live/root/probe" };

		t_s3_drop_bucket(c, bucket, keys, 1);
	}
	s3d_client_free(c);
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		T_EQ_INT(0, system(cmd));
	}
}

int main(void)
{
	s3d_regconfig_init(&cfg);
	T_RUN(test_too_big);
	T_RUN(test_deep_nesting);
	T_RUN(test_alias_bomb);
	T_RUN(test_merge_bomb);
	T_RUN(test_syntax);
	T_RUN(test_secrets_never_shown);
	T_RUN(test_not_s3direct);
	T_RUN(test_unknown_params);
	T_RUN(test_defaults);
	T_RUN(test_every_parameter);
	T_RUN(test_bad_values);
	T_RUN(test_yaml_typing);
	T_RUN(test_anchors_and_merges);
	T_RUN(test_endpoints);
	T_RUN(test_env_overrides);
	T_RUN(test_load_files);
	T_RUN(test_live);
	s3d_regconfig_cleanup(&cfg);
	return t_done("regconfig");
}
