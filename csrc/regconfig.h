/*
 * Registry configuration reader: what s3d needs of a distribution registry
 * configuration file, read the way the registry reads it.
 *
 *  - YAML through libyaml, typed the way gopkg.in/yaml.v2 (the registry's
 *    decoder) types plain scalars: YAML 1.1 booleans (yes/on/y...), integers
 *    with 0x/0o/0b/leading-0 bases and '_' separators, floats, ~/null; merge
 *    keys (<<) and anchors/aliases as yaml.v2 resolves them; quoted and
 *    !!str-tagged scalars stay strings. Only the first document is read.
 *  - version must be 0.1; storage: one driver (maintenance, cache, delete,
 *    redirect, tag aside) which must be s3direct.
 *  - the environment overrides of distribution's configuration parser:
 *    REGISTRY_STORAGE, REGISTRY_STORAGE_<TYPE>, REGISTRY_STORAGE_<TYPE>_<PARAM>
 *    (applied in lexical order of the variable names, values decoded as
 *    YAML, keys lower-cased), then AWS_ACCESS_KEY_ID (or AWS_ACCESS_KEY),
 *    AWS_SECRET_ACCESS_KEY (or AWS_SECRET_KEY) and AWS_SESSION_TOKEN when
 *    the accesskey/secretkey parameters are both empty.
 *  - the storage.s3direct parameters with exactly the names, types,
 *    defaults, ranges and checks of bridge/driver/params.go (s3-aws's
 *    parameters plus ours) and bridge/driver/presign_params.go (presign,
 *    sessionindex, presignexpiry, sessionttl, sweepinterval, maxblobsize,
 *    repoquota, presignpartsize); see docs/configuration.md. Without
 *    regionendpoint the S3 endpoint comes from a copy of the AWS SDK v1
 *    endpoint table (the version go.mod pins) for every region it knows.
 *
 * Bounded: a file over S3D_REGCONFIG_MAX_FILE bytes, nesting deeper than
 * S3D_REGCONFIG_MAX_DEPTH, more than S3D_REGCONFIG_MAX_NODES nodes or
 * S3D_REGCONFIG_MAX_ALIASES aliases is refused (S3D_E_TOOBIG). Aliases are
 * never expanded (a node is shared, not copied), so an alias bomb costs
 * nothing but its own events.
 *
 * Errors: err->message says "<file>[:<line>]: <where>: <why>", where <where>
 * is storage.s3direct.<param> or the environment variable the value came
 * from. Secret values (secretkey, accesskey, session token) never appear in
 * an error. Codes: S3D_E_IO (cannot read the file; errno in err->sys_errno),
 * S3D_E_TOOBIG (a bound above), S3D_E_UNSUPPORTED (the storage driver is not
 * s3direct), S3D_E_INVAL (anything else: YAML syntax, version, a parameter).
 */
#ifndef S3D_REGCONFIG_H
#define S3D_REGCONFIG_H

#include "s3direct.h"

#define S3D_REGCONFIG_MAX_FILE (1u << 20)
#define S3D_REGCONFIG_MAX_DEPTH 64
#define S3D_REGCONFIG_MAX_NODES 65536
#define S3D_REGCONFIG_MAX_ALIASES 4096

/* Strings a loaded configuration owns (private indices). */
enum { S3D_REGCONFIG_NSTR = 16 };

/*
 * A checked configuration, ready for s3d_driver_new(&c.driver, ...) and
 * s3d_service_new(d, &c.service, ...). Every string it points to is owned
 * by it (valid until s3d_regconfig_cleanup); the credentials are wiped on
 * cleanup.
 */
typedef struct s3d_regconfig {
	s3d_driver_config driver;
	s3d_service_config service;  /* index.path is sessionindex as written
					(relative: to the current directory) */
	int presign;                 /* the presign parameter */
	int64_t sweep_interval;      /* seconds; 0 = no sweeper in the registry */
	const char *cred_source;     /* "parameters" or "environment" (static) */
	const char *log_level;       /* loglevel as the driver reads it (static) */
	char *strings_[S3D_REGCONFIG_NSTR]; /* private */
} s3d_regconfig;

/* Zeroes c (cleanup of an initialized, never-loaded c is fine). */
void s3d_regconfig_init(s3d_regconfig *c);
/* Wipes the credentials, frees every string, re-initializes c. */
void s3d_regconfig_cleanup(s3d_regconfig *c);

/*
 * Reads the configuration file at path with the environment envp
 * ("NAME=value" strings, NULL-terminated; NULL = the process environment).
 * On success out holds the configuration; on failure out is left
 * initialized (nothing to clean up, though cleanup is harmless).
 */
int s3d_regconfig_load(const char *path, char *const *envp, s3d_regconfig *out,
		       s3d_error *err);

/* The same on bytes already read; name is used in error messages. */
int s3d_regconfig_parse(const char *name, const void *data, size_t len,
			char *const *envp, s3d_regconfig *out, s3d_error *err);

#endif
