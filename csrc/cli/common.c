/* What s3d's commands share (see common.h). */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int s3d_cli_parse_ll(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno == 0 && end != s && *end == 0;
}

int s3d_cli_error(const char *cmd, const char *what, const char *text)
{
	fprintf(stderr, "s3d%s%s: %s%s%s\n", cmd ? " " : "", cmd ? cmd : "", what ? what : "",
		what ? ": " : "", text);
	return 1;
}

int s3d_cli_fail(const char *cmd, const char *what, int rc, const s3d_error *err)
{
	char text[1200];

	s3d_error_format(err, rc, text, sizeof(text));
	return s3d_cli_error(cmd, what, text);
}
