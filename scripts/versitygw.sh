# Sourced by tests/with-s3.sh and scripts/run.sh: start, probe and stop one
# versitygw (posix backend) on loopback. Needs bash and curl, nothing else.
#
# Layout of a data dir:  DATA/gw    bucket root (one directory per bucket)
#                        DATA/meta  sidecar metadata, only when the filesystem
#                                   has no user xattrs (see vgw_start)
#
# Credentials come from the caller's ROOT_ACCESS_KEY / ROOT_SECRET_KEY, passed
# to versitygw through the environment (not argv: keeps them out of ps).

VGW_BIN=${VGW_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools/bin/versitygw}
VGW_PID=""
VGW_PORT=""
# versitygw requires x-amz-content-sha256; curl 7.88 --aws-sigv4 does not add it.
VGW_EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

vgw_log() { printf '%s\n' "$*" >&2; }

# vgw_port_busy PORT: true when something accepts connections on it.
vgw_port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# vgw_spawn DATA PORT LOG [extra global flags...]: start in the background.
# --keep-alive: versitygw closes the connection after every response unless
# told otherwise; S3 keeps connections open, and so does the server here (or
# every S3 request of every client would pay a TCP connect).
vgw_spawn() {
	local data=$1 port=$2 log=$3
	shift 3
	local meta=()
	[[ -d $data/meta ]] && meta=(--sidecar "$data/meta")
	"$VGW_BIN" --port "127.0.0.1:$port" --region us-east-1 --keep-alive "$@" \
		posix "${meta[@]}" "$data/gw" >>"$log" 2>&1 </dev/null &
	VGW_PID=$!
	VGW_PORT=$port
}

# vgw_wait LOG TIMEOUT_S: until an authenticated ListBuckets answers 200.
# Returns 1 if the server died, 2 on timeout.
vgw_wait() {
	local log=$1 timeout=$2 i
	for ((i = 0; i < timeout * 10; i++)); do
		if ! kill -0 "$VGW_PID" 2>/dev/null; then
			wait "$VGW_PID" 2>/dev/null || true
			VGW_PID=""
			return 1
		fi
		if curl -sf -o /dev/null --max-time 2 \
			--aws-sigv4 "aws:amz:us-east-1:s3" \
			-H "x-amz-content-sha256: $VGW_EMPTY_SHA256" \
			--user "$ROOT_ACCESS_KEY:$ROOT_SECRET_KEY" \
			"http://127.0.0.1:$VGW_PORT/"; then
			return 0
		fi
		sleep 0.1
	done
	return 2
}

# vgw_start DATA PORT LOG TIMEOUT_S [extra global flags...]
# Starts versitygw and waits until it serves. The posix backend keeps object
# metadata (ETag, content type, checksums) in user xattrs and refuses to start
# ("xattr check failed") on a filesystem without them; then we restart it with
# a sidecar metadata directory. The choice sticks to the data dir (DATA/meta).
# Returns 0 when up, 1 died, 2 timeout, 3 port taken (see LOG).
vgw_start() {
	local data=$1 port=$2 log=$3 timeout=$4 rc
	shift 4
	[[ -x $VGW_BIN ]] || { vgw_log "versitygw not found at $VGW_BIN: run 'make deps'"; return 1; }
	mkdir -p "$data/gw"
	vgw_spawn "$data" "$port" "$log" "$@"
	rc=0; vgw_wait "$log" "$timeout" || rc=$?
	if ((rc == 1)) && [[ ! -d $data/meta ]] && grep -q 'xattr check failed' "$log"; then
		vgw_log "versitygw: no user xattrs on $(dirname "$data"); using sidecar metadata in $data/meta"
		mkdir -p "$data/meta"
		vgw_spawn "$data" "$port" "$log" "$@"
		rc=0; vgw_wait "$log" "$timeout" || rc=$?
	fi
	if ((rc == 1)) && grep -q 'address already in use' "$log"; then
		rc=3
	fi
	return $rc
}

# vgw_stop: TERM, up to 5 s grace, then KILL. Only our own pid.
vgw_stop() {
	[[ -n $VGW_PID ]] || return 0
	local i
	kill -TERM "$VGW_PID" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$VGW_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$VGW_PID" 2>/dev/null || true
	wait "$VGW_PID" 2>/dev/null || true
	VGW_PID=""
}
