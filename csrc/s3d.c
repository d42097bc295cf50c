/*
 * s3d: the command-line tool on top of libs3direct.
 *
 * Exit codes: 0 success, 1 S3 or runtime error (code, message and request id
 * printed), 2 usage error, 130 (143) when push-blob or push was stopped by
 * SIGINT (SIGTERM).
 */
#include "s3direct.h"

#include "cli/cmd.h"
#include "cli/common.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_HEADERS 16

struct opts {
	const char *method, *endpoint, *bucket, *key, *region, *date, *file, *ca_file;
	long long expires;
	int virtual_hosted, skip_verify, have_expires;
	long long part_size;
	int concurrency;
	s3d_kv headers[MAX_HEADERS];
	char *header_bufs[MAX_HEADERS];
	size_t nheaders;
};

static const char *usage_text =
	"usage: s3d presign --method GET|PUT|HEAD --endpoint URL --bucket B --key K\n"
	"                   --region R --expires SECONDS [--date YYYYMMDDTHHMMSSZ]\n"
	"                   [--virtual-hosted] [--header 'Name: value']...\n"
	"       s3d mb --endpoint URL --bucket B [--region R]\n"
	"       s3d put --endpoint URL --bucket B --key K FILE [--part-size BYTES] [--concurrency N]\n"
	"       s3d sha256 --endpoint URL --bucket B --key K [--concurrency N]\n"
	"       " S3D_CLI_PUSH_BLOB_SYNOPSIS
	"       " S3D_CLI_PUSH_SYNOPSIS
	"       " S3D_CLI_GC_SYNOPSIS
	"       " S3D_CLI_SESSIONS_SYNOPSIS
	"       s3d version\n"
	"https endpoints: the peer is verified against the system CAs, or --ca-file FILE;\n"
	"                 --skip-verify turns verification off\n"
	"credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN]\n";

static int usage(const char *why)
{
	if (why)
		fprintf(stderr, "s3d: %s\n", why);
	fputs(usage_text, stderr);
	return 2;
}

static void free_opts(struct opts *o)
{
	size_t i;

	for (i = 0; i < o->nheaders; i++)
		free(o->header_bufs[i]);
}

/* "Name: value" -> {Name, value}; the value may be empty. */
static int add_header(struct opts *o, const char *arg)
{
	char *copy, *colon, *v;

	if (o->nheaders >= MAX_HEADERS)
		return usage("too many --header options");
	copy = strdup(arg);
	if (!copy)
		return 1;
	colon = strchr(copy, ':');
	if (!colon || colon == copy) {
		free(copy);
		return usage("--header wants 'Name: value'");
	}
	*colon = 0;
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	o->header_bufs[o->nheaders] = copy;
	o->headers[o->nheaders].name = copy;
	o->headers[o->nheaders++].value = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "method", required_argument, NULL, 'm' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "bucket", required_argument, NULL, 'b' },
		{ "key", required_argument, NULL, 'k' },
		{ "region", required_argument, NULL, 'r' },
		{ "expires", required_argument, NULL, 'x' },
		{ "date", required_argument, NULL, 'd' },
		{ "virtual-hosted", no_argument, NULL, 'v' },
		{ "skip-verify", no_argument, NULL, 's' },
		{ "ca-file", required_argument, NULL, 'C' },
		{ "header", required_argument, NULL, 'H' },
		{ "part-size", required_argument, NULL, 'p' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	long long v;
	int ch, rc;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm': o->method = optarg; break;
		case 'e': o->endpoint = optarg; break;
		case 'b': o->bucket = optarg; break;
		case 'k': o->key = optarg; break;
		case 'r': o->region = optarg; break;
		case 'd': o->date = optarg; break;
		case 'v': o->virtual_hosted = 1; break;
		case 's': o->skip_verify = 1; break;
		case 'C': o->ca_file = optarg; break;
		case 'x':
			if (!s3d_cli_parse_ll(optarg, &o->expires))
				return usage("--expires wants a number of seconds");
			o->have_expires = 1;
			break;
		case 'H':
			rc = add_header(o, optarg);
			if (rc)
				return rc;
			break;
		case 'p':
			if (!s3d_cli_parse_ll(optarg, &o->part_size) || o->part_size <= 0)
				return usage("--part-size wants a positive number of bytes");
			break;
		case 'c':
			if (!s3d_cli_parse_ll(optarg, &v) || v < 1 || v > 64)
				return usage("--concurrency wants 1..64");
			o->concurrency = (int)v;
			break;
		default:
			return usage(optopt ? "unknown or incomplete option" : "unknown option");
		}
	}
	if (optind < argc)
		o->file = argv[optind++];
	if (optind < argc)
		return usage("too many arguments");
	return 0;
}

static int make_client(const struct opts *o, s3d_client **c)
{
	s3d_client_config cfg;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = o->endpoint;
	cfg.region = o->region;
	cfg.access_key = getenv("AWS_ACCESS_KEY_ID");
	cfg.secret_key = getenv("AWS_SECRET_ACCESS_KEY");
	cfg.session_token = getenv("AWS_SESSION_TOKEN");
	cfg.virtual_hosted = o->virtual_hosted;
	cfg.skip_verify = o->skip_verify;
	cfg.ca_file = o->ca_file;
	if (!cfg.access_key || !*cfg.access_key || !cfg.secret_key || !*cfg.secret_key) {
		fprintf(stderr, "s3d: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set\n");
		return 2;
	}
	rc = s3d_client_new(&cfg, c);
	if (rc != S3D_OK) {
		fprintf(stderr, "s3d: cannot create client for %s: %s\n", o->endpoint,
			s3d_strerror(rc));
		return rc == S3D_E_INVAL ? 2 : 1;
	}
	return 0;
}

/* Peak resident set of this process, KiB (benchmarks report it). */
static long max_rss_kib(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static int parse_date(const char *s, time_t *out)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y%m%dT%H%M%SZ", &tm);
	if (!end || *end || strlen(s) != 16)
		return 0;
	*out = timegm(&tm);
	return *out != (time_t)-1;
}

static int cmd_presign(struct opts *o)
{
	s3d_client *c = NULL;
	s3d_buf url;
	time_t when = 0;
	int rc;

	if (!o->method || !o->endpoint || !o->bucket || !o->key || !o->region || !o->have_expires)
		return usage("presign needs --method, --endpoint, --bucket, --key, --region and --expires");
	if (strcmp(o->method, "GET") && strcmp(o->method, "PUT") && strcmp(o->method, "HEAD"))
		return usage("--method must be GET, PUT or HEAD");
	if (o->expires < S3D_PRESIGN_MIN_EXPIRES || o->expires > S3D_PRESIGN_MAX_EXPIRES)
		return usage("--expires must be 1..604800 seconds");
	if (o->date && !parse_date(o->date, &when))
		return usage("--date wants YYYYMMDDTHHMMSSZ");
	if (o->file)
		return usage("presign takes no file argument");
	rc = make_client(o, &c);
	if (rc)
		return rc;
	s3d_buf_init(&url, 64 * 1024);
	rc = s3d_client_presign(c, o->method, o->bucket, o->key, o->headers, o->nheaders,
				when, o->expires, &url);
	if (rc == S3D_OK)
		printf("%s\n", s3d_buf_str(&url));
	else
		fprintf(stderr, "s3d: presign failed: %s\n", s3d_strerror(rc));
	s3d_buf_cleanup(&url);
	s3d_client_free(c);
	return rc == S3D_OK ? 0 : (rc == S3D_E_INVAL ? 2 : 1);
}

static int cmd_mb(struct opts *o)
{
	s3d_client *c = NULL;
	s3d_error err;
	int rc;

	if (!o->endpoint || !o->bucket || o->file)
		return usage("mb needs --endpoint and --bucket");
	rc = make_client(o, &c);
	if (rc)
		return rc;
	s3d_error_clear(&err);
	rc = s3d_create_bucket(c, o->bucket, &err);
	s3d_client_free(c);
	return rc == S3D_OK ? 0 : s3d_cli_fail(NULL, NULL, rc, &err);
}

static int cmd_put(struct opts *o)
{
	s3d_mpu_config mc;
	s3d_client *c = NULL;
	s3d_obj_info info;
	s3d_error err;
	size_t peak = 0;
	int rc;

	if (!o->endpoint || !o->bucket || !o->key || !o->file)
		return usage("put needs --endpoint, --bucket, --key and a FILE");
	rc = make_client(o, &c);
	if (rc)
		return rc;
	memset(&mc, 0, sizeof(mc));
	mc.part_size = (size_t)o->part_size;
	mc.max_in_flight = o->concurrency;
	s3d_error_clear(&err);
	rc = s3d_upload_file(c, o->bucket, o->key, o->file, &mc, &info, &peak, &err);
	s3d_client_free(c);
	if (rc != S3D_OK)
		return s3d_cli_fail(NULL, NULL, rc, &err);
	printf("etag %s\npeak_part_memory %zu\nmax_rss_kib %ld\n", info.etag, peak,
	       max_rss_kib());
	return 0;
}

static int cmd_sha256(struct opts *o)
{
	s3d_verify_config vc;
	s3d_client *c = NULL;
	s3d_error err;
	uint8_t md[32];
	int64_t size = 0;
	int rc, i;

	if (!o->endpoint || !o->bucket || !o->key || o->file)
		return usage("sha256 needs --endpoint, --bucket and --key");
	rc = make_client(o, &c);
	if (rc)
		return rc;
	memset(&vc, 0, sizeof(vc));
	vc.max_in_flight = o->concurrency;
	if (o->part_size > 0)
		vc.range_size = (size_t)o->part_size;
	s3d_error_clear(&err);
	rc = s3d_verify_sha256(c, o->bucket, o->key, &vc, md, &size, &err);
	s3d_client_free(c);
	if (rc != S3D_OK)
		return s3d_cli_fail(NULL, NULL, rc, &err);
	printf("sha256:");
	for (i = 0; i < 32; i++)
		printf("%02x", md[i]);
	printf("  %lld\nmax_rss_kib %ld\n", (long long)size, max_rss_kib());
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	int rc;

	if (argc < 2)
		return usage(NULL);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("s3d %s\n", S3D_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "push-blob") == 0)
		return s3d_cmd_push_blob(argc - 1, argv + 1);
	if (strcmp(argv[1], "push") == 0)
		return s3d_cmd_push(argc - 1, argv + 1);
	if (strcmp(argv[1], "gc") == 0)
		return s3d_cmd_gc(argc - 1, argv + 1);
	if (strcmp(argv[1], "sessions") == 0)
		return s3d_cmd_sessions(argc - 1, argv + 1);
	memset(&o, 0, sizeof(o));
	rc = parse_args(argc - 1, argv + 1, &o);
	if (rc == 0) {
		if (strcmp(argv[1], "presign") == 0)
			rc = cmd_presign(&o);
		else if (strcmp(argv[1], "mb") == 0)
			rc = cmd_mb(&o);
		else if (strcmp(argv[1], "put") == 0)
			rc = cmd_put(&o);
		else if (strcmp(argv[1], "sha256") == 0)
			rc = cmd_sha256(&o);
		else
			rc = usage("unknown command");
	}
	free_opts(&o);
	return rc;
}
