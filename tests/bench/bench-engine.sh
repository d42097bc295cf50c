#!/usr/bin/env bash
# make bench-engine: the C engine against named baselines, in one run.
#
#  1. presigned URLs per second on one core: ours (through cgo, as the registry
#     calls it) vs aws-sdk-go-v2's v4 presigner            target >= 3x
#  2. streaming SHA-256 of a 1 GiB object from the local S3 server (s3d sha256)
#     vs `openssl speed -evp sha256` and vs a plain curl GET  target >= 0.8x the slower
#  3. 1 GiB parallel multipart upload (s3d put) vs `curl -T`  target >= 1.0x,
#     peak memory reported
#
# Results go to stdout and into docs/benchmarks.md between the bench-engine
# markers. Sizes can be lowered for a quick look: BENCH_SIZE_MIB=256.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
bench_with_s3 "$0" "$@"

SIZE_MIB=${BENCH_SIZE_MIB:-1024}
RUNS=${BENCH_RUNS:-3}
GO=${GO:-go}
S3D=$ROOT/build/s3d
OUT=$(mktemp -d "$ROOT/.data/bench-XXXXXX")
trap 'rm -rf "$OUT"' EXIT
export AWS_ACCESS_KEY_ID=$S3D_TEST_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3D_TEST_SECRET_KEY
BUCKET=bench-engine
EP=$S3D_TEST_ENDPOINT

now() { date +%s.%N; }
median() { bench_median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
mibs() { awk -v s="$1" -v t="$2" 'BEGIN {printf "%.1f", s / t}'; }

echo "== bench-engine: $(nproc) cores, ${SIZE_MIB} MiB objects, median of $RUNS runs"

# ---- 1. presign rate, one core ----------------------------------------------
echo "-- presign rate (GOMAXPROCS=1, pinned to one core)"
taskset -c 0 env GOMAXPROCS=1 CGO_ENABLED=1 "$GO" test -run '^$' \
	-bench '^BenchmarkPresign(Ours|AWS)$' -benchtime 2s -count "$RUNS" \
	./bridge/internal/engine/ | tee "$OUT/presign.txt"
ours_ns=$(awk '/^BenchmarkPresignOurs/ {print $3}' "$OUT/presign.txt" | median)
aws_ns=$(awk '/^BenchmarkPresignAWS/ {print $3}' "$OUT/presign.txt" | median)
ours_ps=$(awk -v n="$ours_ns" 'BEGIN {printf "%.0f", 1e9 / n}')
aws_ps=$(awk -v n="$aws_ns" 'BEGIN {printf "%.0f", 1e9 / n}')
presign_ratio=$(ratio "$aws_ns" "$ours_ns")

# ---- data ---------------------------------------------------------------------
"$S3D" mb --endpoint "$EP" --bucket "$BUCKET" >/dev/null
FILE=$OUT/blob
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$FILE"
want=sha256:$(sha256sum "$FILE" | cut -d' ' -f1)

curl_put() { # the baseline: one plain PUT of the file, SigV4 by curl
	curl -sS -f -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "Expect:" \
		-T "$FILE" "$EP/$BUCKET/$1"
}
curl_get() {
	curl -sS -f -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
		"$EP/$BUCKET/$1"
}

# ---- 3. upload: s3d put (parallel parts) vs curl -T -----------------------------
echo "-- upload ${SIZE_MIB} MiB"
: >"$OUT/up_ours"
: >"$OUT/up_curl"
: >"$OUT/rss"
for ((i = 0; i < RUNS; i++)); do
	t0=$(now)
	curl_put "curl-$i"
	t1=$(now)
	"$S3D" put --endpoint "$EP" --bucket "$BUCKET" --key "ours-$i" "$FILE" >"$OUT/put.txt"
	t2=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >>"$OUT/up_curl"
	awk -v a="$t1" -v b="$t2" 'BEGIN {print b - a}' >>"$OUT/up_ours"
	awk '/^max_rss_kib/ {print $2}' "$OUT/put.txt" >>"$OUT/rss"
	peak_parts=$(awk '/^peak_part_memory/ {print $2}' "$OUT/put.txt")
done
up_ours=$(median <"$OUT/up_ours")
up_curl=$(median <"$OUT/up_curl")
up_rss=$(sort -g "$OUT/rss" | tail -1)
up_ratio=$(ratio "$up_curl" "$up_ours")
got=$("$S3D" sha256 --endpoint "$EP" --bucket "$BUCKET" --key "ours-0" | awk 'NR==1 {print $1}')
[[ $got == "$want" ]] || { echo "bench-engine: uploaded object digest $got != $want" >&2; exit 1; }

# ---- 2. streaming SHA-256 vs openssl speed and a plain curl GET --------------------
echo "-- sha256 of ${SIZE_MIB} MiB from S3"
: >"$OUT/v_ours"
: >"$OUT/v_curl"
for ((i = 0; i < RUNS; i++)); do
	t0=$(now)
	curl_get "ours-0"
	t1=$(now)
	got=$("$S3D" sha256 --endpoint "$EP" --bucket "$BUCKET" --key "ours-0" | awk 'NR==1 {print $1}')
	t2=$(now)
	[[ $got == "$want" ]] || { echo "bench-engine: verify digest $got != $want" >&2; exit 1; }
	awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >>"$OUT/v_curl"
	awk -v a="$t1" -v b="$t2" 'BEGIN {print b - a}' >>"$OUT/v_ours"
done
v_ours=$(median <"$OUT/v_ours")
v_curl=$(median <"$OUT/v_curl")
openssl speed -evp sha256 -bytes 16384 -seconds 3 2>/dev/null | tee "$OUT/openssl.txt" | tail -2
# last column is thousands of bytes per second ("123456.78k")
ossl_mibs=$(awk '/^sha256/ {v=$NF; sub(/k$/, "", v); printf "%.1f", v * 1000 / 1048576}' "$OUT/openssl.txt")
ours_mibs=$(mibs "$SIZE_MIB" "$v_ours")
curl_mibs=$(mibs "$SIZE_MIB" "$v_curl")
slower=$(awk -v a="$ossl_mibs" -v b="$curl_mibs" 'BEGIN {print (a < b) ? a : b}')
v_ratio=$(ratio "$ours_mibs" "$slower")

verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r >= t) ? "met" : "NOT met"}'; }
cpu=$(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')
table=$(
	cat <<EOF
Run of \`make bench-engine\` on $(date -u +%Y-%m-%d) ($(nproc) cores, ${cpu}; versitygw v1.7.0 on loopback, same machine; ${SIZE_MIB} MiB object; median of ${RUNS}).

| measure | ours | baseline | ratio | target |
|---|---|---|---|---|
| presigned URLs per second, one core | ${ours_ps}/s (cgo) | aws-sdk-go-v2 presigner ${aws_ps}/s | ${presign_ratio}x | >= 3x: $(verdict "$presign_ratio" 3) |
| SHA-256 of the object streamed from S3 | ${ours_mibs} MiB/s | slower of openssl speed (${ossl_mibs} MiB/s) and curl GET (${curl_mibs} MiB/s) | ${v_ratio}x | >= 0.8x: $(verdict "$v_ratio" 0.8) |
| upload of the object | ${up_ours} s (parallel multipart) | curl -T single PUT ${up_curl} s | ${up_ratio}x | >= 1.0x: $(verdict "$up_ratio" 1.0) |
| upload peak memory | part buffers ${peak_parts} B, max RSS $((up_rss / 1024)) MiB | | | bounded |
EOF
)
echo
echo "$table"

doc=docs/benchmarks.md
if [[ -f $doc ]] && grep -q '<!-- bench-engine:begin -->' "$doc"; then
	awk -v t="$table" '
		/<!-- bench-engine:begin -->/ {print; print t; skip=1; next}
		/<!-- bench-engine:end -->/ {skip=0}
		!skip {print}' "$doc" >"$OUT/doc" && cp "$OUT/doc" "$doc"
	echo "bench-engine: results written to $doc"
fi
