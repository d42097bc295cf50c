#!/usr/bin/env bash
# `make run`: a local registry on S3 for development, in the foreground.
#   versitygw on 127.0.0.1:9000, data in .data/run (kept between runs), bucket
#   `registry` created when missing (build/s3d mb);
#   build/registry (stock distribution + the s3direct driver) on
#   127.0.0.1:5000 with registry-config/config.yml.
# Ctrl-C stops both.
#
# S3D_ACCESS_KEY / S3D_SECRET_KEY  other credentials than s3direct / s3direct-secret
#                                  (passed to the registry as REGISTRY_STORAGE_<DRIVER>_*)
# S3D_REGISTRY_CONFIG              another configuration, e.g.
#                                  registry-config/config-s3aws.yml (the stock s3 driver)
# S3D_RUN_DATA                     another data directory than .data/run
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=versitygw.sh
. "$ROOT/scripts/versitygw.sh"

PORT=9000
REG_ADDR=127.0.0.1:5000
BUCKET=registry
ENDPOINT=http://127.0.0.1:$PORT
DATA=${S3D_RUN_DATA:-$ROOT/.data/run}
LOG=$DATA/versitygw.log
REG_LOG=$DATA/registry.log
REG_BIN=$ROOT/build/registry
REG_CONFIG=${S3D_REGISTRY_CONFIG:-$ROOT/registry-config/config.yml}
CRANE=$ROOT/.tools/bin/crane
export ROOT_ACCESS_KEY=${S3D_ACCESS_KEY:-s3direct}
export ROOT_SECRET_KEY=${S3D_SECRET_KEY:-s3direct-secret}

rel() { printf '%s' "${1#"$ROOT"/}"; }

for port in "$PORT" "${REG_ADDR##*:}"; do
	if vgw_port_busy "$port"; then
		echo "run: something already listens on 127.0.0.1:$port; stop it first" >&2
		exit 1
	fi
done
[[ -x $REG_BIN ]] || { echo "run: $(rel "$REG_BIN") missing (make build)" >&2; exit 1; }
[[ -r $REG_CONFIG ]] || { echo "run: configuration $REG_CONFIG not found" >&2; exit 1; }

# The storage driver the configuration names: the first key under storage:
# that is not one of the registry's own storage options.
REG_DRIVER=$(awk '
	/^storage:/ { in_storage = 1; next }
	in_storage && /^[^ \t#]/ { exit }
	in_storage && match($0, /^  [a-z0-9_-]+:/) {
		k = substr($0, 3, RLENGTH - 3)
		if (k !~ /^(maintenance|cache|delete|redirect|tag)$/) { print k; exit }
	}' "$REG_CONFIG")
[[ -n $REG_DRIVER ]] || { echo "run: no storage driver in $REG_CONFIG" >&2; exit 1; }

mkdir -p "$DATA"
TAIL_PID=""
REG_PID=""

reg_stop() {
	[[ -n $REG_PID ]] || return 0
	local i
	kill -TERM "$REG_PID" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$REG_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$REG_PID" 2>/dev/null || true
	wait "$REG_PID" 2>/dev/null || true
	REG_PID=""
}
on_exit() {
	reg_stop
	vgw_stop
	if [[ -n $TAIL_PID ]]; then
		kill "$TAIL_PID" 2>/dev/null || true
		wait "$TAIL_PID" 2>/dev/null || true
	fi
}
trap on_exit EXIT
trap 'echo; echo "run: stopping the registry and versitygw"; exit 0' INT TERM

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
	echo "run: (BucketAlreadyExists: $(rel "$DATA") holds a bucket $BUCKET made with other credentials;" >&2
	echo "run:  use those through S3D_ACCESS_KEY / S3D_SECRET_KEY, or remove $(rel "$DATA"))" >&2
	exit 1
fi

# The registry. Credentials other than the configuration's travel in the
# environment (distribution's REGISTRY_* overrides), never on the command line.
: >"$REG_LOG"
(
	if [[ -n ${S3D_ACCESS_KEY:-}${S3D_SECRET_KEY:-} ]]; then
		drv=$(printf '%s' "$REG_DRIVER" | tr 'a-z-' 'A-Z_')
		export "REGISTRY_STORAGE_${drv}_ACCESSKEY=$ROOT_ACCESS_KEY"
		export "REGISTRY_STORAGE_${drv}_SECRETKEY=$ROOT_SECRET_KEY"
	fi
	unset ROOT_ACCESS_KEY ROOT_SECRET_KEY
	# the presigned uploads' session index lives with the rest of the data
	if [[ $REG_DRIVER == s3direct ]]; then
		export REGISTRY_STORAGE_S3DIRECT_SESSIONINDEX=$DATA/sessions
	fi
	# distribution v3 exports traces over OTLP to localhost:4318 unless told
	# otherwise; nothing listens there in development.
	export OTEL_TRACES_EXPORTER=${OTEL_TRACES_EXPORTER:-none}
	exec "$REG_BIN" serve "$REG_CONFIG"
) >>"$REG_LOG" 2>&1 </dev/null &
REG_PID=$!
up=""
for ((i = 0; i < 300; i++)); do
	if ! kill -0 "$REG_PID" 2>/dev/null; then
		wait "$REG_PID" 2>/dev/null || true
		REG_PID=""
		break
	fi
	if curl -sf -o /dev/null --max-time 2 "http://$REG_ADDR/v2/"; then
		up=1
		break
	fi
	sleep 0.1
done
if [[ -z $up ]]; then
	echo "run: the registry did not come up on $REG_ADDR; its log:" >&2
	sed 's/^/  | /' "$REG_LOG" >&2 || true
	exit 1
fi

# what the registry got through its environment, for the s3d sessions line
SESSIONS_ENV="REGISTRY_STORAGE_S3DIRECT_SESSIONINDEX=$(rel "$DATA")/sessions "
if [[ -n ${S3D_ACCESS_KEY:-}${S3D_SECRET_KEY:-} ]]; then
	SESSIONS_ENV+="REGISTRY_STORAGE_S3DIRECT_ACCESSKEY=$ROOT_ACCESS_KEY REGISTRY_STORAGE_S3DIRECT_SECRETKEY=$ROOT_SECRET_KEY "
fi

cat <<EOF

  S3 endpoint  $ENDPOINT   (versitygw, region us-east-1, path-style)
  bucket       $BUCKET
  access key   $ROOT_ACCESS_KEY
  secret key   $ROOT_SECRET_KEY
  data         $(rel "$DATA")/gw$([[ -d $DATA/meta ]] && printf ' (metadata in %s/meta)' "$(rel "$DATA")")
  S3 log       $(rel "$LOG")

  registry     http://$REG_ADDR   (storage driver $REG_DRIVER, $(rel "$REG_CONFIG"))
  registry log $(rel "$REG_LOG")

  export AWS_ACCESS_KEY_ID=$ROOT_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$ROOT_SECRET_KEY AWS_REGION=us-east-1

Push and pull an image with crane (plain HTTP is automatic for 127.0.0.1):

  mkdir -p /tmp/s3direct-demo && echo hello >/tmp/s3direct-demo/hello.txt
  tar cf /tmp/s3direct-demo.tar -C /tmp/s3direct-demo hello.txt
  $CRANE append -f /tmp/s3direct-demo.tar -t $REG_ADDR/demo/hello:1
  $CRANE ls $REG_ADDR/demo/hello
  $CRANE manifest $REG_ADDR/demo/hello:1
  $CRANE validate --remote $REG_ADDR/demo/hello:1
  $CRANE pull $REG_ADDR/demo/hello:1 /tmp/s3direct-demo-pulled.tar
  $CRANE export $REG_ADDR/demo/hello:1 - | tar tv
$(if [[ $REG_DRIVER == s3direct ]]; then cat <<EOS

Presigned direct uploads (docs/api.md): the bytes go straight to S3, the
registry only presigns, verifies and links:

  head -c 100000000 /dev/urandom >/tmp/s3direct-blob
  $(rel "$S3D") push-blob --registry http://$REG_ADDR demo/blobs /tmp/s3direct-blob
  $CRANE pull --format oci $REG_ADDR/demo/hello:1 /tmp/s3direct-layout
  $(rel "$S3D") push --registry http://$REG_ADDR /tmp/s3direct-layout demo/hello:presigned
  $CRANE validate --remote $REG_ADDR/demo/hello:presigned
  ${SESSIONS_ENV}$(rel "$S3D") sessions --config $(rel "$REG_CONFIG")
EOS
fi)

Ctrl-C stops the registry and the S3 server.
EOF

tail -n +1 -f "$LOG" "$REG_LOG" &
TAIL_PID=$!
rc=0
wait -n "$VGW_PID" "$REG_PID" || rc=$?
if ! kill -0 "$REG_PID" 2>/dev/null; then
	REG_PID=""
	echo "run: the registry exited ($rc); last lines of its log:" >&2
	tail -n 20 "$REG_LOG" >&2
else
	VGW_PID=""
	echo "run: versitygw exited ($rc); last lines of its log:" >&2
	tail -n 20 "$LOG" >&2
fi
exit 1
