#!/usr/bin/env bash
# `make run`: a local S3-compatible server for development, in the foreground.
# versitygw on 127.0.0.1:9000, data in .data/run (kept between runs), bucket
# `registry` created when missing (build/s3d mb). Ctrl-C stops the server.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=versitygw.sh
. "$ROOT/scripts/versitygw.sh"

PORT=9000
BUCKET=registry
ENDPOINT=http://127.0.0.1:$PORT
DATA=$ROOT/.data/run
LOG=$DATA/versitygw.log
export ROOT_ACCESS_KEY=${S3D_ACCESS_KEY:-s3direct}
export ROOT_SECRET_KEY=${S3D_SECRET_KEY:-s3direct-secret}

if vgw_port_busy "$PORT"; then
	echo "run: something already listens on 127.0.0.1:$PORT; stop it first" >&2
	exit 1
fi

mkdir -p "$DATA"
TAIL_PID=""
on_exit() {
	vgw_stop
	if [[ -n $TAIL_PID ]]; then
		kill "$TAIL_PID" 2>/dev/null || true
		wait "$TAIL_PID" 2>/dev/null || true
	fi
}
trap on_exit EXIT
trap 'echo; echo "run: stopping versitygw"; exit 0' INT TERM

: >"$LOG"
rc=0
vgw_start "$DATA" "$PORT" "$LOG" 20 || rc=$?
if ((rc != 0)); then
	echo "run: versitygw did not come up on $ENDPOINT; its log:" >&2
	sed 's/^/  | /' "$LOG" >&2 || true
	exit 1
fi

# Create the bucket with our own client (idempotent: an existing bucket we
# own is fine).
S3D=$ROOT/build/s3d
[[ -x $S3D ]] || { echo "run: $S3D missing (make build)" >&2; exit 1; }
if ! AWS_ACCESS_KEY_ID=$ROOT_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$ROOT_SECRET_KEY \
	"$S3D" mb --endpoint "$ENDPOINT" --bucket "$BUCKET"; then
	echo "run: creating bucket $BUCKET failed" >&2
	exit 1
fi

cat <<EOF

  S3 endpoint  $ENDPOINT   (versitygw, region us-east-1, path-style)
  bucket       $BUCKET
  access key   $ROOT_ACCESS_KEY
  secret key   $ROOT_SECRET_KEY
  data         ${DATA#"$ROOT"/}/gw$([[ -d $DATA/meta ]] && printf ' (metadata in %s/meta)' "${DATA#"$ROOT"/}")
  server log   ${LOG#"$ROOT"/}

  export AWS_ACCESS_KEY_ID=$ROOT_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$ROOT_SECRET_KEY AWS_REGION=us-east-1

Ctrl-C stops the server.
EOF

tail -n +1 -f "$LOG" --pid="$VGW_PID" &
TAIL_PID=$!
wait "$VGW_PID" || true
echo "run: versitygw exited; last lines of its log:" >&2
tail -n 20 "$LOG" >&2
exit 1
