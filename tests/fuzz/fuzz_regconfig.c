/*
 * libFuzzer target for regconfig: any bytes as a registry configuration,
 * with one of four environments (picked by the input's length) so that the
 * REGISTRY_STORAGE* overrides and the AWS_* credentials are exercised too.
 * Invariants regconfig.h promises are checked with abort(), so a violation
 * is a crash like any memory error:
 *   - a known return code; an error has a message, NUL-terminated, that
 *     never shows the environment's secret (unless the input holds it);
 *   - a success is a configuration inside every documented range.
 *
 *   clang -fsanitize=fuzzer,address,undefined ... fuzz_regconfig.c regconfig.c buf.c err.c
 *   gcc -fsanitize=address,undefined ... fuzz_regconfig.c replay_main.c regconfig.c buf.c err.c
 */
#include "regconfig.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SENTINEL "fuzz-secret-SENTINEL-5f1e"

static char *env_none[] = { NULL };
static char *env_aws[] = { "AWS_ACCESS_KEY_ID=AKIAFUZZ", "AWS_SECRET_ACCESS_KEY=" SENTINEL,
			   "AWS_SESSION_TOKEN=" SENTINEL "-token", NULL };
static char *env_registry[] = { "REGISTRY_STORAGE_S3DIRECT_SECRETKEY=" SENTINEL,
				"REGISTRY_STORAGE_S3DIRECT_ACCESSKEY=AKIAFUZZ",
				"REGISTRY_STORAGE_S3DIRECT_PARTSINFLIGHT=3",
				"REGISTRY_STORAGE_DELETE_ENABLED=true", NULL };
static char *env_whole[] = { "REGISTRY_STORAGE=s3direct",
			     "REGISTRY_STORAGE_S3DIRECT_BUCKET=fuzz-bucket",
			     "REGISTRY_STORAGE_S3DIRECT_REGION=eu-west-1",
			     "AWS_ACCESS_KEY=AKIAFUZZ", "AWS_SECRET_KEY=" SENTINEL, NULL };

static int within(int64_t v, int64_t lo, int64_t hi)
{
	return v >= lo && v <= hi;
}

static void check_ok(const s3d_regconfig *c)
{
	const s3d_driver_config *d = &c->driver;
	const s3d_service_config *s = &c->service;
	size_t rl;

	if (!d->client.endpoint || (strncmp(d->client.endpoint, "http://", 7) != 0 &&
				    strncmp(d->client.endpoint, "https://", 8) != 0))
		abort();
	if (!d->client.region || !d->client.region[0] || !d->bucket || !d->bucket[0] ||
	    !d->client.access_key || !d->client.access_key[0] || !d->client.secret_key ||
	    !d->client.secret_key[0] || !d->root || !d->client.user_agent ||
	    strncmp(d->client.user_agent, "s3direct/", 9) != 0)
		abort();
	rl = strlen(d->root);
	if (rl && (d->root[0] == '/' || d->root[rl - 1] == '/'))
		abort();
	if (!within((int64_t)d->part_size, 5 << 20, 5LL << 30) ||
	    !within(d->copy_part_size, 5 << 20, 5LL << 30) ||
	    !within(d->copy_threshold, 5 << 20, 5LL << 30) ||
	    !within(d->parts_in_flight, 1, 64) || !within(d->copy_concurrency, 1, 64) ||
	    !within(d->client.max_retries, 0, 100) ||
	    !within(d->client.connect_timeout_ms, 1, 600000) ||
	    !within(d->client.retry_deadline_ms, 1000, 86400000) || d->redirect_expires != 1200)
		abort();
	if (!s->index.path || !s->index.path[0] || !within(s->url_expires, 1, 604800) ||
	    !within(s->session_ttl, 1, 365LL * 86400) || !within(c->sweep_interval, 0, 7 * 86400) ||
	    s->max_blob_size < 0 || s->repo_quota < 0 || !within(s->part_size, 5 << 20, 5LL << 30))
		abort();
	if (!c->cred_source || !c->log_level || (c->presign != 0 && c->presign != 1))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char **envs[] = { env_none, env_aws, env_registry, env_whole };
	s3d_regconfig cfg;
	s3d_error err;
	int rc;

	s3d_error_clear(&err);
	rc = s3d_regconfig_parse("fuzz.yml", data, size, envs[size % 4], &cfg, &err);
	switch (rc) {
	case S3D_OK:
		check_ok(&cfg);
		break;
	case S3D_E_INVAL:
	case S3D_E_TOOBIG:
	case S3D_E_UNSUPPORTED:
	case S3D_E_NOMEM:
		if (!memchr(err.message, 0, sizeof(err.message)) || !err.message[0])
			abort();
		if (strstr(err.message, SENTINEL) &&
		    !memmem(data, size, SENTINEL, strlen(SENTINEL)))
			abort();
		break;
	default:
		abort();
	}
	s3d_regconfig_cleanup(&cfg);
	return 0;
}
