#!/usr/bin/env bash
# tests/run-tests.sh [c:BIN]... [fuzz:BIN]...   (called by `make test`, inside
# tests/with-s3.sh)
#
# Runs every C test binary (c:), every fuzz replay binary (fuzz:, over
# tests/fuzz/corpus/<target without fuzz_>/), then `go test ./...` when go.mod
# exists. Every one runs even when an earlier one fails. Ends with one line
#   N passed, N failed
# summing the C suites' "<suite>: N passed, N failed" lines, one count per
# fuzz replay, and the Go packages ok/FAIL. Exits non-zero if anything failed
# or if there is no C test at all.
#
# A binary counts one extra failure when it exits non-zero although its own
# lines report no failure (a leak or sanitizer report at exit, a crash), or
# when it prints no summary line at all.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
TEST_TIMEOUT=${S3D_TEST_TIMEOUT:-600}
GO=${GO:-go}
GOTEST_FLAGS=${GOTEST_FLAGS:--count=1}

LOGDIR=$ROOT/build/test/logs
mkdir -p "$LOGDIR"

passed=0
failed=0
c_tests=()
fuzz_tests=()
sh_tests=()
problems=()

for a in "$@"; do
	case $a in
	c:*) c_tests+=("${a#c:}") ;;
	fuzz:*) fuzz_tests+=("${a#fuzz:}") ;;
	sh:*) sh_tests+=("${a#sh:}") ;;
	*)
		echo "run-tests: unknown argument '$a'" >&2
		exit 2
		;;
	esac
done

SUITE_RE='^[A-Za-z0-9_.-]+: ([0-9]+) passed, ([0-9]+) failed$'

# run_bin NAME LOG KIND CMD...: runs with a timeout, stdout to terminal and LOG.
# KIND is c or fuzz. Adds what LOG reports to the totals.
run_bin() {
	local name=$1 log=$2 kind=$3
	shift 3
	local rc p=0 f=0 lines=0 line
	echo "=== $name"
	timeout --kill-after=10 "$TEST_TIMEOUT" "$@" | tee "$log"
	rc=${PIPESTATUS[0]}
	while IFS= read -r line; do
		if [[ $line =~ $SUITE_RE ]]; then
			p=$((p + BASH_REMATCH[1]))
			f=$((f + BASH_REMATCH[2]))
			lines=$((lines + 1))
		fi
	done <"$log"
	if ((lines == 0)); then
		if [[ $kind == fuzz ]]; then
			# A replay binary reports by exit status: one case.
			if ((rc == 0)); then p=1; else
				f=1
				problems+=("$name: exit $rc")
			fi
			echo "$name: $p passed, $f failed"
		else
			f=1
			if ((rc > 128)); then
				# abort_on_error: a report at exit (leak) kills the process
				# before stdio flushes the suite line.
				problems+=("$name: killed by signal $((rc - 128)) (sanitizer report above?) before its summary line")
			else
				problems+=("$name: printed no '<suite>: N passed, N failed' line (exit $rc)")
			fi
		fi
	elif ((rc != 0 && f == 0)); then
		f=1
		problems+=("$name: reported no failure but exited $rc (sanitizer report at exit? crash?)")
	fi
	((rc == 124 || rc == 137)) && problems+=("$name: timed out after ${TEST_TIMEOUT}s")
	passed=$((passed + p))
	failed=$((failed + f))
}

# --- C unit and live tests --------------------------------------------------
if ((${#c_tests[@]} == 0)); then
	problems+=("no C tests: tests/c/test_*.c matched nothing")
	failed=$((failed + 1))
fi
for bin in "${c_tests[@]}"; do
	name=$(basename "$bin")
	if [[ ! -x $bin ]]; then
		problems+=("$name: binary $bin missing")
		failed=$((failed + 1))
		continue
	fi
	run_bin "$name" "$LOGDIR/$name.log" c "$bin"
done

# --- fuzz corpus replays ----------------------------------------------------
# Shell tests of the command-line tools: same summary-line contract as C tests.
for script in "${sh_tests[@]}"; do
	run_bin "$(basename "$script")" "$LOGDIR/$(basename "$script").log" c bash "$script"
done

for bin in "${fuzz_tests[@]}"; do
	name=$(basename "$bin")
	corpus=tests/fuzz/corpus/${name#fuzz_}
	if [[ ! -x $bin ]]; then
		problems+=("$name: binary $bin missing")
		failed=$((failed + 1))
		continue
	fi
	if [[ ! -d $corpus ]] || [[ -z $(ls -A "$corpus") ]]; then
		echo "=== $name"
		echo "$name: corpus $corpus is missing or empty"
		problems+=("$name: corpus $corpus is missing or empty")
		failed=$((failed + 1))
		continue
	fi
	run_bin "$name" "$LOGDIR/$name.log" fuzz "$bin" "$corpus"
done

# --- Go ---------------------------------------------------------------------
if [[ -f go.mod ]] && [[ -z $(CGO_ENABLED=1 "$GO" list ./... 2>/dev/null) ]] &&
	CGO_ENABLED=1 "$GO" list ./... 2>&1 | grep -q 'matched no packages'; then
	echo "=== go test ./..."
	echo "go: go.mod has no Go packages yet: nothing to test"
elif [[ -f go.mod ]]; then
	echo "=== go test ./..."
	golog=$LOGDIR/go-test.log
	# cmd/go does not notice a changed build/libs3direct.a (named in #cgo
	# LDFLAGS): its digest in -ldflags makes the test binaries link again
	libdigest=$(sha256sum build/libs3direct.a 2>/dev/null | cut -c1-16)
	CGO_ENABLED=1 timeout --kill-after=10 "$((TEST_TIMEOUT * 3))" \
		"$GO" test $GOTEST_FLAGS \
		-ldflags "-X github.com/s3direct/s3direct/bridge/driver.LibraryDigest=${libdigest:-none}" \
		./... 2>&1 | tee "$golog"
	rc=${PIPESTATUS[0]}
	gp=$(grep -cE '^ok[[:space:]]' "$golog")
	gf=$(grep -cE '^FAIL[[:space:]]+[^[:space:]]' "$golog")
	if ((rc != 0 && gf == 0)); then
		gf=1
		problems+=("go test: exit $rc without a FAIL package line")
	fi
	((gp + gf == 0)) && echo "go: no Go package has test files yet"
	echo "go: $gp passed, $gf failed"
	passed=$((passed + gp))
	failed=$((failed + gf))
fi

echo
for p in "${problems[@]}"; do
	echo "PROBLEM: $p"
done
echo "$passed passed, $failed failed"
((failed == 0))
