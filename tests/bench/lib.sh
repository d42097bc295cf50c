# tests/bench/lib.sh: what the bench scripts share (bench-engine.sh only
# bench_with_s3 and bench_median).
# Sourced (after `set -euo pipefail`, with ROOT the repository and the
# current directory) by a script that sets BENCH_NAME (bench-proxy, ...),
# then calls bench_with_s3 "$0" "$@" and bench_workdirs. The registry
# helpers use REG_BIN, OUT and a function of the script that writes a
# registry configuration.

# bench_with_s3 "$0" "$@": without S3D_TEST_ENDPOINT, runs the script again
# inside tests/with-s3.sh with the server's data on tmpfs (disk writeback
# would otherwise dominate).
bench_with_s3() {
	if [[ -z ${S3D_TEST_ENDPOINT:-} ]]; then
		mkdir -p /dev/shm/s3direct-bench
		S3D_DATA_ROOT=/dev/shm/s3direct-bench exec tests/with-s3.sh "$@"
	fi
}

# bench_workdirs: OUT, the work directory on disk (registry configs and
# logs, session indexes, per-run outputs), and BLOBS on tmpfs (the clients
# mmap the blobs: no disk reads in the way); both go at exit, but for OUT
# with BENCH_KEEP=1 or a non-zero exit status (then its path is printed).
bench_workdirs() {
	mkdir -p "$ROOT/.data"
	OUT=$(mktemp -d "$ROOT/.data/$BENCH_NAME-XXXXXX")
	BLOBS=$(mktemp -d "/dev/shm/s3direct-$BENCH_NAME-blobs-XXXXXX")
	REG_PID=""
	trap bench_cleanup EXIT
}

stop_registry() {
	if [[ -n $REG_PID ]]; then
		kill "$REG_PID" 2>/dev/null || true
		wait "$REG_PID" 2>/dev/null || true
		REG_PID=""
	fi
}

bench_cleanup() {
	local status=$?
	stop_registry
	rm -rf "$BLOBS"
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then
		echo "$BENCH_NAME: work directory kept: $OUT" >&2
	elif ((status != 0)); then
		echo "$BENCH_NAME: failed (exit status $status); work directory kept (registry logs and configs, outputs): $OUT" >&2
	else
		rm -rf "$OUT"
	fi
}

# bench_median: the median of the numbers on stdin, one per line (the mean
# of the two middle ones for an even count), "-" when there is none.
bench_median() {
	sort -g | awk '{a[NR] = $1} END {if (!NR) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

# bench_reproduce BASE VAR...: the command line that repeats this run: BASE
# (e.g. "make bench-proxy") after BENCH_QUICK=1 and each VAR that is set.
bench_reproduce() {
	local line=$1 v
	shift
	[[ ${BENCH_QUICK:-0} == 1 ]] && line="BENCH_QUICK=1 $line"
	for v in "$@"; do
		[[ -n ${!v:-} ]] && line="$v='${!v}' $line"
	done
	echo "$line"
}

# bench_make_bucket BUCKET: creates it on the test server (build/s3d mb)
# and exports the AWS_* credentials of the test server.
bench_make_bucket() {
	export AWS_ACCESS_KEY_ID=$S3D_TEST_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3D_TEST_SECRET_KEY
	"$ROOT/build/s3d" mb --endpoint "$S3D_TEST_ENDPOINT" --bucket "$1" >/dev/null
}

# bench_s3_pid: S3_PID, the pid of the versitygw with-s3.sh started on the
# port of S3D_TEST_ENDPOINT (for its CPU time; read only), empty if none.
bench_s3_pid() {
	local port=${S3D_TEST_ENDPOINT##*:}
	S3_PID=$(pgrep -f -- "versitygw --port 127.0.0.1:$port " | head -1 || true)
}

# free_port: a port nothing listens on, below Linux's ephemeral range
# (32768-60999 by default), where outgoing connections (to the S3 server)
# take theirs.
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 12000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
	echo "$BENCH_NAME: no free port" >&2
	exit 1
}

# start_registry_with NAME READY WRITE_CONFIG [ARGS...]: starts $REG_BIN
# serve with the configuration `WRITE_CONFIG ARGS... ADDR FILE` writes to
# $OUT/config-NAME.yml, its log in $OUT/registry-NAME.log, and waits until
# GET /v2/ answers one of the statuses READY ("200", "200 401"). Sets
# REG_PID, REG_URL, REG_LOG. A port lost to someone else: another one (5
# tries).
start_registry_with() {
	local name=$1 ready=$2 port cfg i attempt code
	shift 2
	REG_LOG=$OUT/registry-$name.log
	cfg=$OUT/config-$name.yml
	for ((attempt = 0; attempt < 5; attempt++)); do
		port=$(free_port) || exit 1
		"$@" "127.0.0.1:$port" "$cfg"
		OTEL_TRACES_EXPORTER=none "$REG_BIN" serve "$cfg" >"$REG_LOG" 2>&1 </dev/null &
		REG_PID=$!
		REG_URL=http://127.0.0.1:$port
		for ((i = 0; i < 300; i++)); do
			if ! kill -0 "$REG_PID" 2>/dev/null; then
				wait "$REG_PID" 2>/dev/null || true
				REG_PID=""
				grep -q 'address already in use' "$REG_LOG" && continue 2 # lost a race for the port
				echo "$BENCH_NAME: registry ($name) exited at start-up; its log:" >&2
				tail -20 "$REG_LOG" >&2
				exit 1
			fi
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$REG_URL/v2/" || true)
			[[ " $ready " == *" $code "* ]] && return 0
			sleep 0.1
		done
		echo "$BENCH_NAME: registry ($name) did not answer on $REG_URL/v2/" >&2
		exit 1
	done
	echo "$BENCH_NAME: no free port for the registry ($name)" >&2
	exit 1
}

# fail_cell WHAT OUTFILE: the client's output and the registry's recent
# problems (when one runs), then exit 1.
fail_cell() {
	echo "$BENCH_NAME: $1 failed:" >&2
	cat "$2" >&2
	[[ -n $REG_PID && -f $REG_LOG ]] && grep -v 'level=info\|" 20[0-9] ' "$REG_LOG" | tail -20 >&2
	exit 1
}

# bench_host: cpu, mem, rev (commit, "+ uncommitted changes" when csrc,
# bridge or go.mod/go.sum differ from it) and vgw (versitygw version) for
# the report.
bench_host() {
	cpu=$(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')
	mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
	rev=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
	git diff --quiet HEAD -- csrc bridge go.mod go.sum 2>/dev/null || rev="$rev + uncommitted changes"
	vgw=$(awk '$1 == "gotool" && $2 == "versitygw" {print $4}' "$ROOT/build/deps-versions.txt" 2>/dev/null || true)
}

# bench_write_doc MARKER TEXT: replaces what is between <!-- MARKER:begin -->
# and <!-- MARKER:end --> in docs/benchmarks.md with TEXT; false (nothing
# written) when WRITE_DOC is not 1 or the markers are not there.
bench_write_doc() {
	local doc=docs/benchmarks.md
	[[ $WRITE_DOC == 1 && -f $doc ]] && grep -q "<!-- $1:begin -->" "$doc" || return 1
	awk -v t="$2" -v b="<!-- $1:begin -->" -v e="<!-- $1:end -->" '
		index($0, b) {print; print t; skip=1; next}
		index($0, e) {skip=0}
		!skip {print}' "$doc" >"$OUT/doc" && cp "$OUT/doc" "$doc"
}
