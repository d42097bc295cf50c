#!/usr/bin/env bash
# The S3 client over https: the peer is verified by default (against the
# system CAs or --ca-file), host names are checked, and --skip-verify is the
# explicit way out. A versitygw with a self-signed certificate for 127.0.0.1
# is started here on a free loopback port. Prints "s3d-tls: N passed, N failed".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
S3D=$ROOT/build/s3d
VGW=$ROOT/.tools/bin/versitygw
. "$ROOT/tests/cli/lib.sh"
mkdir -p "$ROOT/.data"
WORK=$(mktemp -d "$ROOT/.data/tls-XXXXXX")
VPID=
cleanup() {
	[[ -n $VPID ]] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

die() {
	echo "FATAL: $*" >&2
	echo "s3d-tls: $pass passed, $((fail + 1)) failed"
	exit 1
}

[[ -x $S3D && -x $VGW ]] || die "build/s3d or versitygw missing (make build)"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
	-addext "subjectAltName=IP:127.0.0.1" -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
	>/dev/null 2>&1 || die "openssl could not make a certificate"
mkdir -p "$WORK/gw"
for ((try = 0; try < 20; try++)); do
	port=$((20000 + RANDOM % 40000))
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
	ROOT_ACCESS_KEY=tlskey ROOT_SECRET_KEY=tlssecret "$VGW" --port "127.0.0.1:$port" \
		--cert "$WORK/cert.pem" --key "$WORK/key.pem" --quiet posix "$WORK/gw" \
		>"$WORK/vgw.log" 2>&1 &
	VPID=$!
	for ((i = 0; i < 100; i++)); do
		curl -sk -o /dev/null "https://127.0.0.1:$port/" && break 2
		kill -0 "$VPID" 2>/dev/null || break
		sleep 0.1
	done
	kill "$VPID" 2>/dev/null
	wait "$VPID" 2>/dev/null
	VPID=
done
[[ -n $VPID ]] || die "versitygw with TLS did not start: $(tail -5 "$WORK/vgw.log")"

export AWS_ACCESS_KEY_ID=tlskey AWS_SECRET_ACCESS_KEY=tlssecret
EP=https://127.0.0.1:$port

# hostile first: an unknown issuer is refused, the error says why
"$S3D" mb --endpoint "$EP" --bucket tls-bucket 2>"$WORK/err"
check "self-signed refused by default: exit 1" test $? = 1
check "the error names the certificate problem" grep -qi "certificate" "$WORK/err"
sed 's/^/    /' "$WORK/err" >&2
# the right CA but another host name: refused
"$S3D" mb --endpoint "https://localhost:$port" --bucket tls-bucket --ca-file "$WORK/cert.pem" 2>"$WORK/err"
check "host name mismatch refused" test $? = 1
check "the error names the host problem" grep -Eqi "certificate|subject|host" "$WORK/err"
sed 's/^/    /' "$WORK/err" >&2

# trusted through --ca-file: the whole round trip over https
"$S3D" mb --endpoint "$EP" --bucket tls-bucket --ca-file "$WORK/cert.pem" 2>"$WORK/err"
check "mb with --ca-file" test $? = 0
head -c 6000000 /dev/urandom >"$WORK/blob"
"$S3D" put --endpoint "$EP" --bucket tls-bucket --key k "$WORK/blob" --part-size 5242880 \
	--ca-file "$WORK/cert.pem" >/dev/null 2>"$WORK/err"
check "multipart put over https" test $? = 0
got=$("$S3D" sha256 --endpoint "$EP" --bucket tls-bucket --key k --ca-file "$WORK/cert.pem" 2>"$WORK/err" | head -1)
check "sha256 over https matches" test "$got" = "sha256:$(sha256sum "$WORK/blob" | cut -d' ' -f1)  6000000"

# explicit skip-verify works without the CA
"$S3D" sha256 --endpoint "$EP" --bucket tls-bucket --key k --skip-verify >/dev/null 2>"$WORK/err"
check "--skip-verify" test $? = 0

# a presigned https URL from s3d downloads with curl trusting the CA
url=$("$S3D" presign --method GET --endpoint "$EP" --bucket tls-bucket --key k --region us-east-1 --expires 60)
check "presigned https GET" cmp -s "$WORK/blob" <(curl -sf --cacert "$WORK/cert.pem" "$url")

summary s3d-tls
