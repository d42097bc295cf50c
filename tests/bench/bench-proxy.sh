#!/usr/bin/env bash
# make bench-proxy: blob uploads through build/registry with s3direct vs the
# stock s3-aws driver vs plain PUTs straight to the S3 server, in one run.
#
# One private versitygw (data on tmpfs), one bucket, one client
# (tests/bench/proxyload, speaking the OCI upload API itself), one
# build/registry binary. Workloads: 8 concurrent 256 MiB blobs and one 1 GiB
# blob, each pushed monolithically (POST, PUT ?digest= with the body) and in
# chunks (POST, 8 MiB PATCHes with Content-Range, PUT ?digest=); the ceiling
# does one SigV4 PUT per blob. A fresh registry process per driver, workload
# and run, so its CPU time (utime+stime from /proc/PID/stat around the upload
# phase) and peak RSS (VmHWM) belong to that workload alone. Every blob is
# checked afterwards (HEAD: size and digest; the first one read back and
# hashed), and the bucket is emptied after each run.
#
# Targets (s3direct against s3-aws, medians of BENCH_RUNS runs):
#   throughput >= min(1.5x s3-aws, 0.85x the ceiling)
#   registry CPU-seconds per GiB <= 0.5x, registry peak RSS <= 0.5x
#
#   BENCH_QUICK=1          4 x 64 MiB and 256 MiB blobs, 1 run, docs not written
#   BENCH_RUNS=N           runs per cell (default 3; median reported)
#   BENCH_TUNED='k: v,...' also run s3direct with these extra parameters
#                          (e.g. 'chunksize: 33554432, partsinflight: 4'),
#                          reported as its own row next to the defaults
#   BENCH_CHUNK_MIB=8      PATCH chunk size
#   BENCH_WRITE_DOC=0      do not touch docs/benchmarks.md
#   BENCH_ONLY='s3direct/many/put ceiling/one/put ...'
#                          only these cells (DRIVER/WORKLOAD/MODE, glob
#                          patterns); docs not written
#   BENCH_KEEP=1           keep the work directory (registry logs, per-run
#                          outputs) and print its path; a failed run keeps
#                          it too
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BENCH_NAME=bench-proxy
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
bench_with_s3 "$0" "$@"

GO=${GO:-go}
REG_BIN=$ROOT/build/registry
QUICK=${BENCH_QUICK:-0}
RUNS=${BENCH_RUNS:-3}
CHUNK_MIB=${BENCH_CHUNK_MIB:-8}
TUNED=${BENCH_TUNED:-}
WRITE_DOC=${BENCH_WRITE_DOC:-1}
ONLY=${BENCH_ONLY:-}
[[ -n $ONLY ]] && WRITE_DOC=0
if [[ $QUICK == 1 ]]; then
	MANY_N=4 MANY_MIB=64 ONE_MIB=256
	RUNS=${BENCH_RUNS:-1}
	WRITE_DOC=0
else
	MANY_N=8 MANY_MIB=256 ONE_MIB=1024
fi
BUCKET=bench-proxy
EP=$S3D_TEST_ENDPOINT
SEED=20240601

bench_workdirs # OUT, BLOBS; OUT kept when the run fails

reproduce=$(bench_reproduce "make bench-proxy" BENCH_RUNS BENCH_TUNED BENCH_CHUNK_MIB BENCH_ONLY)
echo "== bench-proxy: $(nproc) cores; ${MANY_N} x ${MANY_MIB} MiB and 1 x ${ONE_MIB} MiB; ${CHUNK_MIB} MiB PATCHes; median of $RUNS runs"
echo "   reproduce: $reproduce"

# ---- client and data -----------------------------------------------------------
LOAD=$OUT/proxyload
CGO_ENABLED=0 "$GO" build -o "$LOAD" ./tests/bench/proxyload
"$LOAD" gen -dir "$BLOBS" -name many -count "$MANY_N" -size "$((MANY_MIB << 20))" -seed "$SEED"
"$LOAD" gen -dir "$BLOBS" -name one -count 1 -size "$((ONE_MIB << 20))" -seed "$((SEED + 1))"

bench_make_bucket "$BUCKET"
bench_s3_pid # S3_PID

# write_config DRIVER ADDR FILE: registry-config/config.yml (or
# config-s3aws.yml) pointed at the test server, one root directory per driver.
write_config() {
	local drv=$1 addr=$2 file=$3 name root extra=""
	case $drv in
	s3direct) name=s3direct root=/s3direct ;; # the s3 parameters only: a drop-in
	tuned) name=s3direct root=/s3direct-tuned extra="$TUNED" ;;
	s3aws) name=s3 root=/s3aws ;;
	esac
	{
		cat <<EOF
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  $name:
    regionendpoint: $EP
    region: ${S3D_TEST_REGION:-us-east-1}
    bucket: $BUCKET
    accesskey: $S3D_TEST_ACCESS_KEY
    secretkey: $S3D_TEST_SECRET_KEY
    forcepathstyle: true
    secure: false
    rootdirectory: $root
EOF
		if [[ -n $extra ]]; then
			tr ',' '\n' <<<"$extra" | sed 's/^ */    /'
		fi
		cat <<EOF
  delete:
    enabled: true
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: true
      age: 168h
      interval: 24h
      dryrun: false
http:
  addr: $addr
  secret: bench-proxy
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
	} >"$file"
	chmod 600 "$file"
}

start_registry() { # DRIVER -> REG_PID, REG_URL, REG_LOG
	start_registry_with "$1" 200 write_config "$1"
}

RESULTS=$OUT/results
: >"$RESULTS"

# run_one DRIVER WORKLOAD MODE RUN: one fresh registry (or none for the
# ceiling), one push of the workload, verification, bucket emptied.
run_one() {
	local drv=$1 wl=$2 mode=$3 run=$4 files count args=() out p
	if [[ -n $ONLY ]]; then
		for p in $ONLY; do
			# shellcheck disable=SC2053
			[[ $drv/$wl/$mode == $p ]] && break
			p=""
		done
		[[ -n $p ]] || return 0
	fi
	case $wl in
	many) files=$BLOBS/many count=$MANY_N ;;
	one) files=$BLOBS/one count=1 ;;
	esac
	out=$OUT/run-$drv-$wl-$mode-$run.txt
	if [[ $drv == ceiling ]]; then
		args=(-target s3 -url "$EP" -bucket "$BUCKET" -prefix "ceiling/$wl")
	else
		start_registry "$drv"
		args=(-target registry -url "$REG_URL" -repo "bench/$wl" -mode "$mode"
			-chunk "$((CHUNK_MIB << 20))" -pid "$REG_PID")
	fi
	[[ -n $S3_PID ]] && args+=(-s3pid "$S3_PID")
	if ! "$LOAD" run "${args[@]}" -files "$files" -count "$count" >"$out" 2>&1 ||
		! grep -q "^verified $count blobs by HEAD" "$out"; then
		fail_cell "$drv $wl $mode run $run" "$out"
	fi
	stop_registry
	"$LOAD" clean -url "$EP" -bucket "$BUCKET" >>"$OUT/clean.log"
	awk -v d="$drv" -v w="$wl" -v m="$mode" '
		{v[$1] = $2}
		END {
			gib = v["bytes"] / 1073741824
			hasreg = ("cpu_s" in v); hass3 = ("s3_cpu_s" in v)
			other = v["machine_busy_s"] - (hasreg ? v["cpu_s"] : 0) - (hass3 ? v["s3_cpu_s"] : 0) - v["client_cpu_s"]
			if (other < 0) other = 0
			printf "%s %s %s %s %s %s %s %s %.2f %.2f %.2f\n", d, w, m, v["mibs"],
				hasreg ? sprintf("%.2f", v["cpu_s"] / gib) : "-",
				hasreg ? sprintf("%.0f", v["hwm_kib"] / 1024) : "-",
				hass3 ? sprintf("%.2f", v["s3_cpu_s"] / gib) : "-",
				hasreg ? sprintf("%.0f", v["rss_start_kib"] / 1024) : "-",
				v["client_cpu_s"] / gib, other / v["seconds"], v["machine_steal_s"] / v["seconds"]
		}' "$out" >>"$RESULTS"
	printf '   %-8s %-4s %-5s run %d: %s\n' "$drv" "$wl" "$mode" "$run" \
		"$(tail -1 "$RESULTS" | awk '{printf "%7.1f MiB/s  CPU-s/GiB: registry %s, S3 server %s, client %s; registry peak RSS %s MiB (%s at start); other load %s cores, steal %s cores", $4, $5, $7, $9, $6, $8, $10, $11}')"
}

DRIVERS=(s3direct s3aws)
[[ -n $TUNED ]] && DRIVERS+=(tuned)
# Warm-up, untimed: the S3 server's first writes into its fresh data
# directory cost it about twice the CPU of later ones, which would tax
# whichever cell runs first. One round of plain PUTs of the 8 blobs.
echo "   warm-up: one untimed round of plain PUTs"
if ! "$LOAD" run -target s3 -url "$EP" -bucket "$BUCKET" -prefix warm-up -files "$BLOBS/many" \
	-count "$MANY_N" >"$OUT/warm-up.txt" 2>&1; then
	fail_cell "warm-up" "$OUT/warm-up.txt"
fi
"$LOAD" clean -url "$EP" -bucket "$BUCKET" >>"$OUT/clean.log"
for ((run = 1; run <= RUNS; run++)); do
	for wl in many one; do
		for mode in put patch; do
			for drv in "${DRIVERS[@]}"; do
				run_one "$drv" "$wl" "$mode" "$run"
			done
		done
		run_one ceiling "$wl" put "$run"
	done
done

# ---- report -----------------------------------------------------------------------
# med DRIVER WORKLOAD MODE COLUMN: median over the runs
med() {
	awk -v d="$1" -v w="$2" -v m="$3" -v c="$4" '$1 == d && $2 == w && $3 == m {print $c}' "$RESULTS" |
		bench_median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b}'; }
label() {
	case $1 in
	s3direct) echo "s3direct (defaults)" ;;
	tuned) echo "s3direct ($TUNED)" ;;
	s3aws) echo "s3-aws (stock)" ;;
	ceiling) echo "plain PUT to S3 (ceiling)" ;;
	esac
}
wlname() {
	local n=$MANY_N mib=$MANY_MIB
	[[ $1 == one ]] && n=1 mib=$ONE_MIB
	case $2 in
	put) echo "${n} x ${mib} MiB, monolithic PUT" ;;
	patch) echo "${n} x ${mib} MiB, ${CHUNK_MIB} MiB PATCHes" ;;
	esac
}

main_table="| workload | driver | MiB/s | registry CPU-s per GiB | registry peak RSS (MiB) | registry RSS before the uploads (MiB) | S3 server CPU-s per GiB | client CPU-s per GiB | other processes (cores) | stolen by the hypervisor (cores) |
|---|---|---|---|---|---|---|---|---|---|"
for wl in many one; do
	for mode in put patch; do
		for drv in "${DRIVERS[@]}" ceiling; do
			[[ $drv == ceiling && $mode == patch ]] && continue
			main_table+="
| $(wlname "$wl" "$mode") | $(label "$drv") | $(med "$drv" "$wl" "$mode" 4) | $(med "$drv" "$wl" "$mode" 5) | $(med "$drv" "$wl" "$mode" 6) | $(med "$drv" "$wl" "$mode" 8) | $(med "$drv" "$wl" "$mode" 7) | $(med "$drv" "$wl" "$mode" 9) | $(med "$drv" "$wl" "$mode" 10) | $(med "$drv" "$wl" "$mode" 11) |"
		done
	done
done

fx() { if [[ $1 == - ]]; then echo -; else echo "${1}x"; fi; }
# above DRIVER WORKLOAD MODE: median peak RSS minus median RSS at start
above() {
	awk -v a="$(med "$1" "$2" "$3" 6)" -v b="$(med "$1" "$2" "$3" 8)" \
		'BEGIN {if (a == "-" || b == "-") print "-"; else print a - b}'
}
verdict() { awk -v r="$1" -v t="$2" -v op="$3" 'BEGIN {if (r == "-" || t == "-") {print "-"; exit} ok = (op == "ge") ? (r >= t) : (r <= t); print ok ? "met" : "**NOT met**"}'; }
ratio_rows() { # DRIVER
	local drv=$1 wl mode ours aws ceil tgt thr cpu rss grow
	for wl in many one; do
		for mode in put patch; do
			ours=$(med "$drv" "$wl" "$mode" 4)
			aws=$(med s3aws "$wl" "$mode" 4)
			ceil=$(med ceiling "$wl" put 4)
			# the lower of 1.5x s3-aws and 0.85x the ceiling, as MiB/s
			tgt=$(awk -v a="$aws" -v c="$ceil" 'BEGIN {if (a == "-" || c == "-") {print "-"; exit} x = 1.5 * a; y = 0.85 * c; printf "%.1f", (x < y) ? x : y}')
			thr=$(ratio "$ours" "$aws")
			cpu=$(ratio "$(med "$drv" "$wl" "$mode" 5)" "$(med s3aws "$wl" "$mode" 5)")
			rss=$(ratio "$(med "$drv" "$wl" "$mode" 6)" "$(med s3aws "$wl" "$mode" 6)")
			grow=$(ratio "$(above "$drv" "$wl" "$mode")" "$(above s3aws "$wl" "$mode")")
			echo "| $(wlname "$wl" "$mode") | $(label "$drv") | $(fx "$thr") | $(fx "$(ratio "$ours" "$ceil")") | ${ours} vs ${tgt} MiB/s: $(verdict "$ours" "$tgt" ge) | $(fx "$cpu"): $(verdict "$cpu" 0.5 le) | $(fx "$rss"): $(verdict "$rss" 0.5 le) | $(fx "$grow") |"
		done
	done
}
ratio_table="| workload | s3direct | throughput vs s3-aws | vs ceiling | throughput target: >= min(1.5x s3-aws, 0.85x ceiling) | CPU per GiB vs s3-aws, target <= 0.5x | peak RSS vs s3-aws, target <= 0.5x | peak RSS above start vs s3-aws (not a target) |
|---|---|---|---|---|---|---|---|"
for drv in "${DRIVERS[@]}"; do
	[[ $drv == s3aws ]] && continue
	ratio_table+="
$(ratio_rows "$drv")"
done

bench_host # cpu mem rev vgw
table=$(
	cat <<EOF
Run of \`$reproduce\` on $(date -u '+%Y-%m-%d %H:%M UTC') ($(nproc) cores, ${cpu}, ${mem}; shared machine; build/registry of ${rev}; versitygw ${vgw:-?} on loopback with data on tmpfs; client, registry and S3 server on the same cores; medians of ${RUNS} runs; s3direct defaults: chunksize 10 MiB, partsinflight 2; s3-aws defaults: chunksize 10 MiB).

$main_table

$ratio_table
EOF
)
echo
echo "$table"

if bench_write_doc bench-proxy "$table"; then
	echo "bench-proxy: results written to docs/benchmarks.md"
fi
