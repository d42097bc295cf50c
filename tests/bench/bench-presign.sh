#!/usr/bin/env bash
# make bench-presign: presigned direct uploads (docs/api.md) against the
# proxy path through the registry and against the S3 server alone, in one run.
#
# One private versitygw (data on tmpfs), one bucket, one build/registry
# binary (storage s3direct, presigned uploads on, durable LMDB session index
# on disk), one client (tests/bench/presignbench; blobs from
# tests/bench/proxyload gen). Three parts:
#
#  1. push: PUSH_N concurrent blobs of PUSH_MIB MiB (default 8 x 512 MiB =
#     4 GiB), one cell per flow, a fresh registry process per cell:
#       presigned     POST, GET ?presigned=true&digest=&size= (one PUT URL;
#                     S3 enforces the SHA-256), PUT to S3, PUT ?digest=
#       presigned-mp  POST, GET ?presigned=true&parts=N&size=, the parts PUT
#                     to S3 (PART_CONC per blob), PUT ?digest= (the registry
#                     hashes the object by a streaming read)
#       proxy         POST, PUT ?digest= with the body, through the registry
#       proxy-patch   (not by default) POST, CHUNK_MIB PATCHes, PUT ?digest=
#       ceiling       one plain SigV4 PUT per blob to S3, no registry
#       ceiling-ck    the same with x-amz-checksum-sha256 (what the presigned
#                     PUT makes S3 do), not a target
#       ceiling-mp    SigV4 multipart upload, PART_MIB parts, PART_CONC per
#                     blob: the ceiling of presigned-mp
#     Per cell: end-to-end time; the bytes the registry received from the
#     client (a counting TCP proxy in the client, in front of the registry,
#     HTTP headers included) and its read() bytes (rchar of /proc/PID/io,
#     S3 answers included); registry CPU-seconds (utime+stime of
#     /proc/PID/stat around the upload phase) per GiB. Every blob checked:
#     through the registry (HEAD: size and digest; one read back and
#     hashed), straight to S3 for the ceilings (HEAD: size); bucket emptied.
#     Targets: presigned registry CPU per GiB <= 2% of proxy;
#              presigned end-to-end <= 1.1x the ceiling.
#  2. finalize: latency of the finalizing PUT ?digest= vs blob size (FIN_MIB,
#     default 1 64 1024), one registry, one untimed warm-up round, median
#     of FIN_RUNS (5):
#       declared  digest+size declared at presign: direct, S3 checksum
#       stream    no digest at presign: finalize reads and hashes
#       stock     stock session: the bytes PUT straight to S3 at the upload's
#                 data key, finalize with a _state minted with http.secret
#                 (offset = size) so that the stock commit runs (it reads
#                 the blob back to hash it: no hash state was stored)
#       stock-patch  (not a target) stock session, the bytes PATCHed through
#                 the registry (CHUNK_MIB), finalize with the last _state:
#                 the stock commit after a normal stock upload (hash state
#                 stored by the PATCHes: no read-back)
#     Target: declared finalize of the largest size <= 2x the smallest.
#  3. rate: presign calls per second from RATE_CLIENTS (64) concurrent
#     clients for RATE_SECS (10) s or RATE_MAX calls, without auth and with
#     token auth (auth.token, key and certificate generated here, RS256 JWTs
#     minted by the client), fresh sessions (POST + first presign) and
#     refreshes of open sessions; a fresh registry per cell; durable LMDB
#     commits. Target >= 5,000/s. Baseline in the same run (not a target):
#     the stock POST alone ("post"), which a fresh session starts with:
#     both are bound by the S3 server's writes, not by the presign.
#
# Results: build/bench/presign-results.md (markdown), build/bench/presign.svg
# (plot), build/bench/presign-data.txt (plot data); with the markers
# <!-- bench-presign:begin/end --> in docs/benchmarks.md, also there (full
# runs only). Timings are reported, never asserted: the exit status is 0
# whether targets are met or not, non-zero when an upload or a check fails.
#
#   BENCH_QUICK=1         smoke run: 4 x 8 MiB, finalize 1 and 8 MiB, 5 MiB
#                         parts, rate 2 s / 300 calls, 1 run, docs not written
#   BENCH_RUNS=N          runs per cell (default 3; medians reported)
#   BENCH_FIN_RUNS=N      runs per finalize cell (default 5, or BENCH_RUNS)
#   BENCH_PUSH_N, BENCH_PUSH_MIB, BENCH_FIN_MIB='1 64 1024', BENCH_PART_MIB,
#   BENCH_PART_CONC, BENCH_CHUNK_MIB, BENCH_RATE_CLIENTS, BENCH_RATE_SECS,
#   BENCH_RATE_MAX        the sizes above (any of them set: docs not written)
#   BENCH_RATE_AUTHS='none token', BENCH_RATE_PATHS='post fresh refresh'
#                         which rate cells run
#   BENCH_FLOWS='...'     push flows (default: presigned presigned-mp proxy
#                         ceiling ceiling-ck ceiling-mp)
#   BENCH_FIN_MODES='...' finalize modes (default: declared stream stock
#                         stock-patch)
#   BENCH_PARTS='push finalize rate'   which parts run
#   BENCH_WRITE_DOC=0     do not touch docs/benchmarks.md
#   BENCH_KEEP=1          keep the work directory (registry logs, outputs);
#                         a failed run keeps it too and prints its path
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BENCH_NAME=bench-presign
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
bench_with_s3 "$0" "$@"

GO=${GO:-go}
REG_BIN=$ROOT/build/registry
QUICK=${BENCH_QUICK:-0}
WRITE_DOC=${BENCH_WRITE_DOC:-1}
custom=0
for v in BENCH_PUSH_N BENCH_PUSH_MIB BENCH_FIN_MIB BENCH_PART_MIB BENCH_PART_CONC BENCH_CHUNK_MIB \
	BENCH_RATE_CLIENTS BENCH_RATE_SECS BENCH_RATE_MAX BENCH_RATE_AUTHS BENCH_RATE_PATHS BENCH_FLOWS \
	BENCH_FIN_MODES BENCH_PARTS; do
	[[ -n ${!v:-} ]] && custom=1
done
if [[ $QUICK == 1 ]]; then
	d_push_n=4 d_push_mib=8 d_fin="1 8" d_part=5 d_rate_secs=2 d_rate_max=300 d_runs=1 d_fin_runs=1
	WRITE_DOC=0
else
	d_push_n=8 d_push_mib=512 d_fin="1 64 1024" d_part=64 d_rate_secs=10 d_rate_max=1000000 d_runs=3 d_fin_runs=5
fi
[[ $custom == 1 ]] && WRITE_DOC=0
RUNS=${BENCH_RUNS:-$d_runs}
FIN_RUNS=${BENCH_FIN_RUNS:-${BENCH_RUNS:-$d_fin_runs}}
PUSH_N=${BENCH_PUSH_N:-$d_push_n}
PUSH_MIB=${BENCH_PUSH_MIB:-$d_push_mib}
FIN_MIB=${BENCH_FIN_MIB:-$d_fin}
PART_MIB=${BENCH_PART_MIB:-$d_part}
PART_CONC=${BENCH_PART_CONC:-2}
CHUNK_MIB=${BENCH_CHUNK_MIB:-8}
RATE_CLIENTS=${BENCH_RATE_CLIENTS:-64}
RATE_SECS=${BENCH_RATE_SECS:-$d_rate_secs}
RATE_MAX=${BENCH_RATE_MAX:-$d_rate_max}
RATE_AUTHS=${BENCH_RATE_AUTHS:-none token}
RATE_PATHS=${BENCH_RATE_PATHS:-post fresh refresh}
FLOWS=${BENCH_FLOWS:-presigned presigned-mp proxy ceiling ceiling-ck ceiling-mp}
FIN_MODES=${BENCH_FIN_MODES:-declared stream stock stock-patch}
PARTS=${BENCH_PARTS:-push finalize rate}
BUCKET=bench-presign
REGROOT=/bench-presign
SECRET=bench-presign-secret
TOKEN_ISSUER=s3direct-bench
TOKEN_SERVICE=s3direct-bench
EP=$S3D_TEST_ENDPOINT
SEED=20241124

has_part() { [[ " $PARTS " == *" $1 "* ]]; }

mkdir -p "$ROOT/build/bench"
# Work directory on disk: the session indexes live here (durable LMDB
# commits on a real file system, as in production). Kept when the run fails.
bench_workdirs # OUT, BLOBS
RES_MD=$ROOT/build/bench/presign-results.md
RES_DATA=$ROOT/build/bench/presign-data.txt
RES_SVG=$ROOT/build/bench/presign.svg

reproduce=$(bench_reproduce "make bench-presign" BENCH_RUNS BENCH_FIN_RUNS BENCH_PUSH_N BENCH_PUSH_MIB BENCH_FIN_MIB \
	BENCH_PART_MIB BENCH_PART_CONC BENCH_CHUNK_MIB BENCH_RATE_CLIENTS BENCH_RATE_SECS BENCH_RATE_MAX BENCH_RATE_AUTHS BENCH_RATE_PATHS BENCH_FLOWS \
	BENCH_FIN_MODES BENCH_PARTS)
echo "== bench-presign: $(nproc) cores; push ${PUSH_N} x ${PUSH_MIB} MiB (${PART_MIB} MiB parts, ${PART_CONC} per blob); finalize ${FIN_MIB// /, } MiB (median of $FIN_RUNS); rate ${RATE_CLIENTS} clients, ${RATE_SECS} s or ${RATE_MAX} calls; median of $RUNS runs"
echo "   reproduce: $reproduce"

# ---- tools and data ---------------------------------------------------------------
LOAD=$OUT/proxyload
PB=$OUT/presignbench
CGO_ENABLED=0 "$GO" build -o "$LOAD" ./tests/bench/proxyload
CGO_ENABLED=0 "$GO" build -o "$PB" ./tests/bench/presignbench
if has_part push; then
	"$LOAD" gen -dir "$BLOBS" -name push -count "$PUSH_N" -size "$((PUSH_MIB << 20))" -seed "$SEED"
fi
if has_part finalize; then
	for mib in $FIN_MIB; do
		"$LOAD" gen -dir "$BLOBS" -name "fin$mib" -count 1 -size "$((mib << 20))" -seed "$((SEED + mib))"
	done
fi
"$PB" keygen -dir "$OUT"

bench_make_bucket "$BUCKET"
bench_s3_pid # S3_PID

# write_config CELL AUTH ADDR FILE: registry-config/config.yml pointed at the
# test server, presigned uploads on, the cell's own session index; AUTH=token
# adds auth.token with the key generated above.
write_config() {
	local cell=$1 auth=$2 addr=$3 file=$4
	{
		cat <<EOF
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  s3direct:
    regionendpoint: $EP
    region: ${S3D_TEST_REGION:-us-east-1}
    bucket: $BUCKET
    accesskey: $S3D_TEST_ACCESS_KEY
    secretkey: $S3D_TEST_SECRET_KEY
    forcepathstyle: true
    secure: false
    rootdirectory: $REGROOT
    presign: true
    sessionindex: $OUT/sessions-$cell
    presignexpiry: 1h
    sessionttl: 24h
    sweepinterval: 10m
    presignpartsize: $((PART_MIB << 20))
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
  secret: $SECRET
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
		if [[ $auth == token ]]; then
			cat <<EOF
auth:
  token:
    realm: http://127.0.0.1:1/token
    service: $TOKEN_SERVICE
    issuer: $TOKEN_ISSUER
    rootcertbundle: $OUT/token.crt
EOF
		fi
	} >"$file"
	chmod 600 "$file"
}

start_registry() { # CELL AUTH -> REG_PID, REG_URL, REG_LOG
	local cell=$1 auth=$2 ready=200
	[[ $auth == token ]] && ready="200 401"
	rm -rf "$OUT/sessions-$cell"
	start_registry_with "$cell" "$ready" write_config "$cell" "$auth"
}

clean_bucket() { "$PB" clean -s3 "$EP" -bucket "$BUCKET" >>"$OUT/clean.log"; }

PUSH=$OUT/push.txt FIN=$OUT/finalize.txt RATE=$OUT/rate.txt
: >"$PUSH"
: >"$FIN"
: >"$RATE"
is_registry_flow() { [[ $1 == presigned || $1 == presigned-mp || $1 == proxy || $1 == proxy-patch ]]; }

# ---- 1. push -------------------------------------------------------------------------
run_push() { # FLOW RUN
	local flow=$1 run=$2 out args=()
	out=$OUT/push-$flow-$run.txt
	args=(-flow "$flow" -files "$BLOBS/push" -count "$PUSH_N" -s3 "$EP" -bucket "$BUCKET"
		-prefix "ceiling/$flow" -repo "bench/push" -partsize "$((PART_MIB << 20))"
		-partconc "$PART_CONC" -chunk "$((CHUNK_MIB << 20))")
	if is_registry_flow "$flow"; then
		start_registry "push-$flow" none
		args+=(-url "$REG_URL" -pid "$REG_PID")
	fi
	[[ -n $S3_PID ]] && args+=(-s3pid "$S3_PID")
	if ! "$PB" push "${args[@]}" >"$out" 2>&1 || ! grep -q "^verified $PUSH_N blobs" "$out"; then
		fail_cell "push $flow run $run" "$out"
	fi
	stop_registry
	clean_bucket
	# flow run seconds mibs cpu/GiB rx rchar s3cpu/GiB client/GiB other-cores requests complete
	awk -v f="$flow" -v r="$run" '
		{v[$1] = $2}
		END {
			gib = v["bytes"] / 1073741824
			reg = ("cpu_s" in v); s3 = ("s3_cpu_s" in v)
			other = v["machine_busy_s"] - (reg ? v["cpu_s"] : 0) - (s3 ? v["s3_cpu_s"] : 0) - v["client_cpu_s"]
			if (other < 0) other = 0
			printf "%s %s %.3f %.1f %s %s %s %s %.2f %.2f %s %s\n", f, r, v["seconds"], v["mibs"],
				reg ? sprintf("%.4f", v["cpu_s"] / gib) : "-",
				("reg_rx_bytes" in v) ? v["reg_rx_bytes"] : "-",
				("reg_rchar" in v) ? v["reg_rchar"] : "-",
				s3 ? sprintf("%.2f", v["s3_cpu_s"] / gib) : "-",
				v["client_cpu_s"] / gib, other / v["seconds"],
				("reg_requests" in v) ? v["reg_requests"] : "-",
				("reg_count_complete" in v) ? v["reg_count_complete"] : "-"
		}' "$out" >>"$PUSH"
	printf '   push %-12s run %d: %s\n' "$flow" "$run" \
		"$(tail -1 "$PUSH" | awk '{printf "%7.3f s %7.1f MiB/s; registry: %s CPU-s/GiB, received %s bytes in %s requests, read() %s bytes; S3 server %s CPU-s/GiB", $3, $4, $5, $6, $11, $7, $8}')"
}

# Warm-up, untimed: the S3 server's first writes into its fresh data
# directory cost it about twice the CPU of later ones, which would tax
# whichever push cell runs first. One round of the ceiling flow.
warm_push() {
	echo "   warm-up: one untimed round of plain PUTs"
	if ! "$PB" push -flow ceiling -files "$BLOBS/push" -count "$PUSH_N" -s3 "$EP" -bucket "$BUCKET" \
		-prefix warm-up >"$OUT/push-warm-up.txt" 2>&1; then
		fail_cell "push warm-up" "$OUT/push-warm-up.txt"
	fi
	clean_bucket
}

# ---- 2. finalize -----------------------------------------------------------------------
run_finalize() { # MODE MIB RUN [warm]
	local mode=$1 mib=$2 run=$3 out dest=$FIN
	[[ ${4:-} == warm ]] && dest=$OUT/finalize-warm-up.txt
	out=$OUT/fin-$mode-$mib-$run.txt
	if ! "$PB" finalize -mode "$mode" -file "$BLOBS/fin$mib-0" -url "$REG_URL" -s3 "$EP" \
		-bucket "$BUCKET" -root "$REGROOT" -secret "$SECRET" -repo "bench/fin-$mode" \
		-chunk "$((CHUNK_MIB << 20))" >"$out" 2>&1 ||
		! grep -q '^verified 1 blob' "$out"; then
		fail_cell "finalize $mode $mib MiB run $run" "$out"
	fi
	clean_bucket
	awk -v m="$mode" -v mib="$mib" -v r="$run" '$1 == "finalize_s" {print m, mib, r, $2}' "$out" >>"$dest"
	printf '   finalize %-11s %5d MiB run %d: %s s%s\n' "$mode" "$mib" "$run" "$(tail -1 "$dest" | awk '{print $4}')" \
		"$([[ $dest != "$FIN" ]] && echo ' (warm-up, not counted)')"
}

# ---- 3. rate ----------------------------------------------------------------------------
run_rate() { # AUTH PATH RUN
	local auth=$1 path=$2 run=$3 out args=()
	out=$OUT/rate-$auth-$path-$run.txt
	start_registry "rate-$auth-$path" "$auth"
	args=(-path "$path" -url "$REG_URL" -pid "$REG_PID" -clients "$RATE_CLIENTS"
		-duration "${RATE_SECS}s" -max "$RATE_MAX" -repo bench/rate)
	[[ $auth == token ]] && args+=(-token-key "$OUT/token.key" -issuer "$TOKEN_ISSUER" -service "$TOKEN_SERVICE")
	if ! "$PB" rate "${args[@]}" >"$out" 2>&1; then
		fail_cell "rate $auth $path run $run" "$out"
	fi
	stop_registry
	clean_bucket
	awk -v a="$auth" -v p="$path" -v r="$run" '{v[$1] = $2}
		END {printf "%s %s %s %s %s %s %s %s %s\n", a, p, r, v["rate"], v["requests_per_s"], v["p50_ms"], v["p99_ms"],
			("cpu_ms_per_presign" in v) ? v["cpu_ms_per_presign"] : "-", v["presigns"]}' "$out" >>"$RATE"
	printf '   rate %-5s %-7s run %d: %s\n' "$auth" "$path" "$run" \
		"$(tail -1 "$RATE" | awk '{printf "%s presigns/s (%s requests/s), p50 %s ms, p99 %s ms, registry %s CPU-ms per presign, %s presigns", $4, $5, $6, $7, $8, $9}')"
}

for ((run = 1; run <= RUNS; run++)); do
	if has_part push; then
		((run == 1)) && warm_push
		for flow in $FLOWS; do
			run_push "$flow" "$run"
		done
	fi
done
if has_part finalize; then
	start_registry fin none
	# one untimed round on the smallest blob first: the registry's first
	# requests (connections to S3, the index) would count against it
	for mode in $FIN_MODES; do
		run_finalize "$mode" "${FIN_MIB%% *}" 0 warm
	done
	for ((run = 1; run <= FIN_RUNS; run++)); do
		for mib in $FIN_MIB; do
			for mode in $FIN_MODES; do
				run_finalize "$mode" "$mib" "$run"
			done
		done
	done
	# how the registry verified each presigned finalize (its log)
	VERIFIED_BY=$(grep -o 'verified_by=[a-z]*' "$REG_LOG" | sort | uniq -c | awk '{printf "%s%s x %s", (NR > 1 ? ", " : ""), $1, substr($2, 13)}')
	stop_registry
fi
if has_part rate; then
	for ((run = 1; run <= RUNS; run++)); do
		for auth in $RATE_AUTHS; do
			for path in $RATE_PATHS; do
				run_rate "$auth" "$path" "$run"
			done
		done
	done
fi

# ---- report --------------------------------------------------------------------------------
# medf FILE COLUMN KEYCOL=VALUE...: median of COLUMN over the matching rows
medf() {
	local file=$1 col=$2
	shift 2
	awk -v c="$col" -v conds="$*" '
		BEGIN {n = split(conds, cs, " "); for (i = 1; i <= n; i++) {split(cs[i], kv, "="); k[i] = kv[1]; want[i] = kv[2]}}
		{for (i = 1; i <= n; i++) if ($k[i] != want[i]) next; if ($c != "-") print $c}' "$file" |
		bench_median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.4f", a / b}'; }
verdict() { # VALUE LIMIT le|ge
	awk -v r="$1" -v t="$2" -v op="$3" 'BEGIN {if (r == "-" || t == "-") {print "-"; exit}
		ok = (op == "ge") ? (r + 0 >= t + 0) : (r + 0 <= t + 0); print ok ? "**PASS**" : "**MISS**"}'
}
pct() { awk -v r="$1" 'BEGIN {if (r == "-") print "-"; else printf "%.2f%%", r * 100}'; }
fx() { awk -v r="$1" 'BEGIN {if (r == "-") print "-"; else printf "%.2fx", r}'; }
human() { awk -v b="$1" 'BEGIN {if (b == "-") {print "-"; exit}
	if (b >= 1073741824) printf "%.2f GiB", b / 1073741824; else if (b >= 1048576) printf "%.1f MiB", b / 1048576;
	else if (b >= 1024) printf "%.1f KiB", b / 1024; else printf "%d B", b}'; }
flowname() {
	case $1 in
	presigned) echo "presigned, one PUT per blob (digest+size declared)" ;;
	presigned-mp) echo "presigned multipart (${PART_MIB} MiB parts, ${PART_CONC} per blob)" ;;
	proxy) echo "through the registry (s3direct), monolithic PUT" ;;
	proxy-patch) echo "through the registry (s3direct), ${CHUNK_MIB} MiB PATCHes" ;;
	ceiling) echo "plain PUT to S3 (ceiling)" ;;
	ceiling-ck) echo "plain PUT to S3 with x-amz-checksum-sha256" ;;
	ceiling-mp) echo "multipart to S3 (${PART_MIB} MiB parts, ${PART_CONC} per blob; ceiling of presigned multipart)" ;;
	esac
}
modename() {
	case $1 in
	declared) echo "declared digest (direct, S3 checksum)" ;;
	stream) echo "no digest (streaming verification)" ;;
	stock) echo "stock finalize (bytes put in S3, read back)" ;;
	stock-patch) echo "stock finalize after ${CHUNK_MIB} MiB PATCHes (not a target)" ;;
	esac
}

: >"$RES_DATA"
echo "target rate 5000" >>"$RES_DATA"
report=""
if has_part push; then
	t="| flow | end-to-end (s) | MiB/s | registry CPU-s per GiB | bytes the registry received (TCP proxy count) | registry read() bytes (/proc/PID/io rchar) | requests to the registry | S3 server CPU-s per GiB | client CPU-s per GiB | other processes (cores) |
|---|---|---|---|---|---|---|---|---|---|"
	for flow in $FLOWS; do
		m() { medf "$PUSH" "$1" 1="$flow"; }
		t+="
| $(flowname "$flow") | $(m 3) | $(m 4) | $(m 5) | $(human "$(m 6)") | $(human "$(m 7)") | $(m 11) | $(m 8) | $(m 9) | $(m 10) |"
		echo "push $flow $(m 5) $(m 3)" >>"$RES_DATA"
	done
	incomplete=$(awk '$12 == 0' "$PUSH" | wc -l)
	((incomplete > 0)) && t+="

Warning: in $incomplete cells the counting proxy did not see every connection close: those byte counts are lower bounds."
	cpu_of() { medf "$PUSH" 5 1="$1"; }
	sec_of() { medf "$PUSH" 3 1="$1"; }
	r_cpu=$(ratio "$(cpu_of presigned)" "$(cpu_of proxy)")
	r_e2e=$(ratio "$(sec_of presigned)" "$(sec_of ceiling)")
	r_cpu_mp=$(ratio "$(cpu_of presigned-mp)" "$(cpu_of proxy)")
	r_e2e_mp=$(ratio "$(sec_of presigned-mp)" "$(sec_of ceiling-mp)")
	r_e2e_ck=$(ratio "$(sec_of presigned)" "$(sec_of ceiling-ck)")
	t+="

| target | measured | result |
|---|---|---|
| presigned (one PUT): registry CPU per GiB <= 2% of the proxy path | $(pct "$r_cpu") | $(verdict "$r_cpu" 0.02 le) |
| presigned (one PUT): end-to-end <= 1.1x the ceiling (plain PUTs) | $(fx "$r_e2e") | $(verdict "$r_e2e" 1.1 le) |
| presigned multipart: registry CPU per GiB <= 2% of the proxy path | $(pct "$r_cpu_mp") | $(verdict "$r_cpu_mp" 0.02 le) |
| presigned multipart: end-to-end <= 1.1x multipart straight to S3 | $(fx "$r_e2e_mp") | $(verdict "$r_e2e_mp" 1.1 le) |
| presigned (one PUT) vs plain PUTs with x-amz-checksum-sha256 (not a target) | $(fx "$r_e2e_ck") | |"
	report+="#### Push: ${PUSH_N} concurrent blobs of ${PUSH_MIB} MiB

$t
"
fi
if has_part finalize; then
	t="| blob size |"
	sep="|---|"
	for mode in $FIN_MODES; do
		t+=" $(modename "$mode") |"
		sep+="---|"
	done
	t+="
$sep"
	for mib in $FIN_MIB; do
		row="| $mib MiB"
		for mode in $FIN_MODES; do
			v=$(medf "$FIN" 4 1="$mode" 2="$mib")
			row+=" | $(awk -v s="$v" 'BEGIN {if (s == "-") print "-"; else printf "%.1f ms", s * 1000}')"
			[[ $v != - ]] && echo "fin $mode $((mib << 20)) $v" >>"$RES_DATA"
		done
		t+="
$row |"
	done
	small=${FIN_MIB%% *} large=${FIN_MIB##* }
	r_fin=$(ratio "$(medf "$FIN" 4 1=declared 2="$large")" "$(medf "$FIN" 4 1=declared 2="$small")")
	t+="

| target | measured | result |
|---|---|---|
| declared-digest finalize of $large MiB <= 2x that of $small MiB | $(fx "$r_fin") | $(verdict "$r_fin" 2 le) |

Presigned finalizes as the registry logged them: ${VERIFIED_BY:-none logged} (checksum: S3's stored SHA-256; stream: read and hashed)."
	report+="
#### Finalize latency (PUT ?digest=, median of $FIN_RUNS)

$t
"
fi
if has_part rate; then
	t="| auth | sessions | presign calls/s | all requests/s | p50 (ms) | p99 (ms) | registry CPU-ms per presign | target >= 5,000/s |
|---|---|---|---|---|---|---|---|"
	for auth in $RATE_AUTHS; do
		for path in $RATE_PATHS; do
			r=$(medf "$RATE" 4 1="$auth" 2="$path")
			case $path in
			post) pname="stock POST alone (baseline: calls are POSTs)" ;;
			fresh) pname="fresh (POST + first presign)" ;;
			refresh) pname="open (presign again)" ;;
			esac
			verd=$(verdict "$r" 5000 ge)
			[[ $path == post ]] && verd="not a target"
			aname=$auth
			[[ $auth == token ]] && aname="token (RS256 JWT)"
			t+="
| $aname | $pname | $r | $(medf "$RATE" 5 1="$auth" 2="$path") | $(medf "$RATE" 6 1="$auth" 2="$path") | $(medf "$RATE" 7 1="$auth" 2="$path") | $(medf "$RATE" 8 1="$auth" 2="$path") | $verd |"
			[[ $r != - && $path != post ]] && echo "rate $auth $path $r" >>"$RES_DATA"
		done
	done
	report+="
#### Presign rate: ${RATE_CLIENTS} concurrent clients, ${RATE_SECS} s or ${RATE_MAX} calls (median of $RUNS)

$t
"
fi

bench_host # cpu mem rev vgw
table="Run of \`$reproduce\` on $(date -u '+%Y-%m-%d %H:%M UTC') ($(nproc) cores, ${cpu}, ${mem}; shared machine; build/registry of ${rev}; versitygw ${vgw:-?} on loopback with data on tmpfs; session index (LMDB, durable commits) on $(df -T "$OUT" | awk 'NR == 2 {print $2}'); client, registry and S3 server on the same cores; medians of ${RUNS} runs).

$report"
printf '%s\n' "$table" >"$RES_MD"
"$PB" plot -data "$RES_DATA" -out "$RES_SVG" -title "bench-presign, $(date -u '+%Y-%m-%d %H:%M UTC'), ${rev}"
echo
echo "$table"

if bench_write_doc bench-presign "$table"; then
	cp "$RES_SVG" docs/bench-presign.svg
	echo "bench-presign: results written to docs/benchmarks.md, plot to docs/bench-presign.svg"
fi
echo "bench-presign: results: ${RES_MD#"$ROOT"/}"
echo "bench-presign: plot:    ${RES_SVG#"$ROOT"/}"
echo "bench-presign: data:    ${RES_DATA#"$ROOT"/}"
