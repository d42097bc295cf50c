#!/usr/bin/env bash
# tests/with-s3.sh CMD [ARGS...]
#
# Runs CMD with a private S3 server: versitygw (.tools/bin, see `make deps`) on
# a free loopback port, data in a fresh .data/test-XXXXXX (removed at exit),
# random credentials. CMD sees
#   S3D_TEST_ENDPOINT=http://127.0.0.1:PORT  S3D_TEST_REGION=us-east-1
#   S3D_TEST_ACCESS_KEY  S3D_TEST_SECRET_KEY
# The server is stopped when CMD ends; the exit status is CMD's.
set -euo pipefail

if (($# == 0)); then
	echo "usage: tests/with-s3.sh CMD [ARGS...]" >&2
	exit 2
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/versitygw.sh
. "$ROOT/scripts/versitygw.sh"

START_TIMEOUT=${S3D_TEST_START_TIMEOUT:-20}

# S3D_DATA_ROOT moves the server's data (benchmarks put it on tmpfs so that
# disk writeback does not dominate what they measure).
DATA_ROOT=${S3D_DATA_ROOT:-$ROOT/.data}
mkdir -p "$DATA_ROOT"
DATA=$(mktemp -d "$DATA_ROOT/test-XXXXXX")
LOG=$DATA/versitygw.log

cleanup() {
	local rc=$?
	vgw_stop
	[[ ${S3D_KEEP_DATA:-} == 1 ]] && echo "with-s3: kept $DATA" >&2 || rm -rf "$DATA"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
ROOT_ACCESS_KEY=S3DTEST$(hex 7 | tr 'a-f' 'A-F')
ROOT_SECRET_KEY=$(hex 20)
export ROOT_ACCESS_KEY ROOT_SECRET_KEY

started=""
for ((attempt = 0; attempt < 20; attempt++)); do
	port=$((20000 + RANDOM % 40000))
	vgw_port_busy "$port" && continue
	rc=0
	vgw_start "$DATA" "$port" "$LOG" "$START_TIMEOUT" --quiet || rc=$?
	if ((rc == 0)); then
		started=1
		break
	fi
	vgw_stop
	((rc == 3)) && { : >"$LOG"; continue; } # lost a race for the port: next one
	break
done
if [[ -z $started ]]; then
	echo "with-s3: versitygw did not come up on 127.0.0.1:${port:-?} within ${START_TIMEOUT}s; its log:" >&2
	sed 's/^/  | /' "$LOG" >&2 || true
	exit 1
fi

export S3D_TEST_ENDPOINT=http://127.0.0.1:$VGW_PORT
export S3D_TEST_ACCESS_KEY=$ROOT_ACCESS_KEY
export S3D_TEST_SECRET_KEY=$ROOT_SECRET_KEY
export S3D_TEST_REGION=us-east-1
# The command under test gets only the S3D_TEST_* names.
unset ROOT_ACCESS_KEY ROOT_SECRET_KEY

echo "with-s3: versitygw at $S3D_TEST_ENDPOINT (data ${DATA#"$ROOT"/})" >&2

set +e
"$@"
rc=$?
set -e
exit "$rc"
