#!/usr/bin/env bash
# build/s3d used the way a user would, against the server of tests/with-s3.sh.
# Prints "s3d-cli: N passed, N failed".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
S3D=$ROOT/build/s3d
. "$ROOT/tests/cli/lib.sh"
WORK=$(mktemp -d "$ROOT/.data/cli-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# exit status and output of one s3d run: sets rc, out, err
run() {
	out=$("$S3D" "$@" 2>"$WORK/err")
	rc=$?
	err=$(cat "$WORK/err")
}

# ---- hostile: usage errors exit 2 with the usage line ----
DOC=(--endpoint https://s3.amazonaws.com --bucket examplebucket --key test.txt --region us-east-1)
export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

run
check "no command: exit 2" test "$rc" = 2
check "no command: usage line" grep -q '^usage: s3d presign' <<<"$err"
run frobnicate
check "unknown command: exit 2" test "$rc" = 2
run presign --method GET "${DOC[@]}"
check "missing --expires: exit 2" test "$rc" = 2
run presign --method POST "${DOC[@]}" --expires 60
check "bad method: exit 2" test "$rc" = 2
run presign --method GET "${DOC[@]}" --expires 0
check "expires 0: exit 2" test "$rc" = 2
run presign --method GET "${DOC[@]}" --expires 604801
check "expires > 7 days: exit 2" test "$rc" = 2
run presign --method GET "${DOC[@]}" --expires 60 --date 2013-05-24
check "bad --date: exit 2" test "$rc" = 2
run presign --method GET "${DOC[@]}" --expires 60 --header 'no colon'
check "bad --header: exit 2" test "$rc" = 2
run presign --method GET "${DOC[@]}" --expires 60 --bogus
check "unknown option: exit 2" test "$rc" = 2
(unset AWS_SECRET_ACCESS_KEY; "$S3D" presign --method GET "${DOC[@]}" --expires 60 >/dev/null 2>&1)
check "no credentials: exit 2" test $? = 2

# ---- the S3 documentation's presigned GET example, byte for byte ----
run presign --method GET "${DOC[@]}" --expires 86400 --date 20130524T000000Z --virtual-hosted
check "doc example: exit 0" test "$rc" = 0
check "doc example: URL" test "$out" = "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
run presign --method GET "${DOC[@]}" --expires 86400 --date 20130524T000000Z
check "path-style: bucket in the path" grep -q '^https://s3.amazonaws.com/examplebucket/test.txt?' <<<"$out"
run presign --method PUT "${DOC[@]}" --expires 3600 --date 20130524T000000Z --header 'x-amz-checksum-sha256: abc=' --header 'Content-Type: application/octet-stream'
check "signed headers listed" grep -q 'X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-checksum-sha256&' <<<"$out"
run version
check "version" grep -q '^s3d [0-9]' <<<"$out"

# ---- against the live server ----
export AWS_ACCESS_KEY_ID=$S3D_TEST_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3D_TEST_SECRET_KEY
EP=(--endpoint "$S3D_TEST_ENDPOINT")
B=cli-$$-$RANDOM
run mb "${EP[@]}" --bucket "$B"
check "mb: exit 0" test "$rc" = 0
run mb "${EP[@]}" --bucket "$B"
check "mb again: idempotent" test "$rc" = 0

head -c 1000 /dev/urandom >"$WORK/small"
head -c $((12 * 1024 * 1024 + 5)) /dev/urandom >"$WORK/big"
for f in small big; do
	run put "${EP[@]}" --bucket "$B" --key "dir/$f" "$WORK/$f" --part-size $((5 * 1024 * 1024)) --concurrency 2
	check "put $f: exit 0" test "$rc" = 0
	run sha256 "${EP[@]}" --bucket "$B" --key "dir/$f" --concurrency 3
	want="sha256:$(sha256sum "$WORK/$f" | cut -d' ' -f1)  $(stat -c %s "$WORK/$f")"
	check "sha256 $f matches" test "$(head -1 <<<"$out")" = "$want"
done
run put "${EP[@]}" --bucket "$B" --key k "$WORK/big" --part-size 1000
check "part size under 5 MiB refused" test "$rc" != 0

# a presigned GET URL from s3d works with plain curl; the same URL expired does not
run presign --method GET "${EP[@]}" --bucket "$B" --key dir/small --region us-east-1 --expires 60
check "presigned GET downloads" cmp -s "$WORK/small" <(curl -sf "$out")
run presign --method GET "${EP[@]}" --bucket "$B" --key dir/small --region us-east-1 --expires 1 --date "$(date -u -d '-1 hour' +%Y%m%dT%H%M%SZ)"
check "expired presigned GET refused" test "$(curl -s -o /dev/null -w '%{http_code}' "$out")" = 403

# S3 errors: exit 1 with code, message and request id
run sha256 "${EP[@]}" --bucket "$B" --key no/such/key
check "missing key: exit 1" test "$rc" = 1
check "missing key: code and request id" grep -Eq 'NotFound|NoSuchKey.*request id [A-Z0-9]+' <<<"$err"
AWS_SECRET_ACCESS_KEY=wrong "$S3D" mb "${EP[@]}" --bucket "$B" 2>"$WORK/err"
rc=$?
check "wrong secret: exit 1" test "$rc" = 1
check "wrong secret: SignatureDoesNotMatch with request id" \
	grep -Eq '^s3d: SignatureDoesNotMatch: .*\(HTTP 403, request id [A-Z0-9]+' "$WORK/err"
check "secret never printed" bash -c "! grep -q '$S3D_TEST_SECRET_KEY' '$WORK/err'"

summary s3d-cli
