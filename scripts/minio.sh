#!/usr/bin/env bash
# MinIO as a second S3 server for the tests (`make test-minio`).
#
#   scripts/minio.sh install   build the pinned MinIO into .tools/bin/minio
#                              (once: 5-10 min; then a stamp check)
#   . scripts/minio.sh         (sourced, as tests/with-minio.sh does) defines
#                              minio_install, minio_start, minio_stop,
#                              minio_port_busy; needs bash and curl.
#
# Not part of `make deps`: only `make test-minio` builds it.
#
# Version: the project pins release RELEASE.2025-10-15T17-29-55Z (commit
# 9e49d5e7a648f00e26f2246f4dc28e6b07f8c84a, pseudo-version
# v0.0.0-20251015172955-9e49d5e7a648). The module proxy reachable here does not
# serve it: its .info answers 403 "This module version is not available" and
# the checksum database (proxy.golang.org/sumdb) has no record of it (404), so
# `go install` cannot resolve it without turning checksum verification off.
# The only version the proxy fully serves is the newest commit of the
# (archived) repository, 2026-02-12, four months after that release, with the
# same go.mod (same go.mod hash h1:yCWDkwWO9IWpGsT4mreDDN/B/QVmK2zC666uInRAcqE=).
# That is what we pin. Its code differs from the release (whose zip the proxy
# does serve, h1:6TdolSCLSs2nwm8i0PpWDqf9iX2Ty9WQK8wmr7dCnUM=) in four
# places only: no second error response after headers were written
# (minio#21633), conditional writes no longer pass on a read-quorum error,
# `$tagging` allowed in POST policies, metric help texts. Set MINIO_VERSION to
# build another one.
#
# Credentials come from the caller's MINIO_ROOT_USER / MINIO_ROOT_PASSWORD
# (environment, not argv: keeps them out of ps).

MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
MINIO_ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MINIO_BIN=$MINIO_ROOT_DIR/.tools/bin/minio
MINIO_PID=""
MINIO_PORT=""
MINIO_EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

minio_log() { printf 'minio: %s\n' "$*" >&2; }

# minio_install: scripts/deps.sh's pinned-tool install (stamp
# .tools/stamps/minio@VERSION newer than the binary = nothing to do).
minio_install() {
	local start=$SECONDS
	"$MINIO_ROOT_DIR/scripts/deps.sh" tool minio "$MINIO_MODULE" "$MINIO_VERSION" >&2 || {
		minio_log "installing $MINIO_MODULE@$MINIO_VERSION failed"
		return 1
	}
	minio_log "$MINIO_VERSION: ready ($((SECONDS - start)) s)"
}

# minio_port_busy PORT: true when something accepts connections on it.
minio_port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# minio_wait LOG TIMEOUT_S: until an authenticated ListBuckets answers 200.
# Returns 1 if the server died, 2 on timeout.
minio_wait() {
	local log=$1 timeout=$2 i
	for ((i = 0; i < timeout * 10; i++)); do
		if ! kill -0 "$MINIO_PID" 2>/dev/null; then
			wait "$MINIO_PID" 2>/dev/null || true
			MINIO_PID=""
			return 1
		fi
		if curl -sf -o /dev/null --max-time 2 \
			--aws-sigv4 "aws:amz:us-east-1:s3" \
			-H "x-amz-content-sha256: $MINIO_EMPTY_SHA256" \
			--user "$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD" \
			"http://127.0.0.1:$MINIO_PORT/"; then
			return 0
		fi
		sleep 0.1
	done
	return 2
}

# minio_start DATA PORT CONSOLE_PORT LOG TIMEOUT_S
# Starts `minio server` (single drive in DATA) and waits until it serves.
# Returns 0 when up, 1 died, 2 timeout, 3 port taken (see LOG).
minio_start() {
	local data=$1 port=$2 cport=$3 log=$4 timeout=$5 rc
	[[ -x $MINIO_BIN ]] || { minio_log "not found at $MINIO_BIN: run 'scripts/minio.sh install'"; return 1; }
	mkdir -p "$data"
	# MINIO_CI_CD: no update checks, no console banner prompts;
	# MINIO_BROWSER=off: no web console (the console port is still pinned to
	# loopback in case a version ignores it).
	MINIO_CI_CD=1 MINIO_UPDATE=off MINIO_BROWSER=off MINIO_REGION=us-east-1 \
		"$MINIO_BIN" server --quiet --anonymous \
		--address "127.0.0.1:$port" --console-address "127.0.0.1:$cport" \
		"$data" >>"$log" 2>&1 </dev/null &
	MINIO_PID=$!
	MINIO_PORT=$port
	rc=0
	minio_wait "$log" "$timeout" || rc=$?
	if ((rc == 1)) && grep -qi 'already in use' "$log"; then
		rc=3
	fi
	return $rc
}

# minio_stop: TERM, up to 10 s grace, then KILL. Only our own pid.
minio_stop() {
	[[ -n $MINIO_PID ]] || return 0
	local i
	kill -TERM "$MINIO_PID" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$MINIO_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$MINIO_PID" 2>/dev/null || true
	wait "$MINIO_PID" 2>/dev/null || true
	MINIO_PID=""
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
	case ${1:-} in
	install) minio_install ;;
	version) echo "$MINIO_MODULE@$MINIO_VERSION" ;;
	*)
		echo "usage: scripts/minio.sh install|version   (or source it: see tests/with-minio.sh)" >&2
		exit 2
		;;
	esac
fi
