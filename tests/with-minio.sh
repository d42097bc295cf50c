#!/usr/bin/env bash
# tests/with-minio.sh CMD [ARGS...]
#
# tests/with-s3.sh with MinIO instead of versitygw: runs CMD with a private
# MinIO (.tools/bin/minio, see `scripts/minio.sh install`) on a free loopback
# port, data in a fresh .data/minio-XXXXXX (removed at exit), random
# credentials. CMD sees
#   S3D_TEST_ENDPOINT=http://127.0.0.1:PORT  S3D_TEST_REGION=us-east-1
#   S3D_TEST_ACCESS_KEY  S3D_TEST_SECRET_KEY
# The server is stopped when CMD ends; the exit status is CMD's.
# S3D_KEEP_DATA=1 keeps the data dir (as in tests/with-s3.sh);
# S3D_MINIO_KEEP_LOG=FILE copies MinIO's log there at exit.
set -euo pipefail

if (($# == 0)); then
	echo "usage: tests/with-minio.sh CMD [ARGS...]" >&2
	exit 2
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/minio.sh
. "$ROOT/scripts/minio.sh"

START_TIMEOUT=${S3D_TEST_START_TIMEOUT:-60}

DATA_ROOT=${S3D_DATA_ROOT:-$ROOT/.data}
mkdir -p "$DATA_ROOT"
DATA=$(mktemp -d "$DATA_ROOT/minio-XXXXXX")
LOG=$DATA/minio.log

cleanup() {
	local rc=$?
	minio_stop
	if [[ -n ${S3D_MINIO_KEEP_LOG:-} && -f $LOG ]]; then
		cp "$LOG" "$S3D_MINIO_KEEP_LOG" || true
	fi
	if [[ ${S3D_KEEP_DATA:-} == 1 ]]; then
		echo "with-minio: kept $DATA" >&2
	else
		rm -rf "$DATA"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
# MinIO: user >= 3 characters, password >= 8.
MINIO_ROOT_USER=S3DTEST$(hex 7 | tr 'a-f' 'A-F')
MINIO_ROOT_PASSWORD=$(hex 20)
export MINIO_ROOT_USER MINIO_ROOT_PASSWORD

# The server's data lives in DATA/drive; the log beside it.
started=""
for ((attempt = 0; attempt < 20; attempt++)); do
	port=$((20000 + RANDOM % 40000))
	cport=$((20000 + RANDOM % 40000))
	((port != cport)) || continue
	minio_port_busy "$port" && continue
	minio_port_busy "$cport" && continue
	rc=0
	minio_start "$DATA/drive" "$port" "$cport" "$LOG" "$START_TIMEOUT" || rc=$?
	if ((rc == 0)); then
		started=1
		break
	fi
	minio_stop
	if ((rc == 3)); then # lost a race for a port: next ones, fresh drive
		rm -rf "$DATA/drive"
		: >"$LOG"
		continue
	fi
	break
done
if [[ -z $started ]]; then
	echo "with-minio: MinIO did not come up on 127.0.0.1:${port:-?} within ${START_TIMEOUT}s; its log:" >&2
	sed 's/^/  | /' "$LOG" >&2 || true
	exit 1
fi

export S3D_TEST_ENDPOINT=http://127.0.0.1:$MINIO_PORT
export S3D_TEST_ACCESS_KEY=$MINIO_ROOT_USER
export S3D_TEST_SECRET_KEY=$MINIO_ROOT_PASSWORD
export S3D_TEST_REGION=us-east-1
# The command under test gets only the S3D_TEST_* names.
unset MINIO_ROOT_USER MINIO_ROOT_PASSWORD

echo "with-minio: MinIO $MINIO_VERSION at $S3D_TEST_ENDPOINT (data ${DATA#"$ROOT"/})" >&2

set +e
"$@"
rc=$?
set -e
exit "$rc"
