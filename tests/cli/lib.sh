# Shared by the tests/cli/test_*.sh scripts (sourced, not run).
# check NAME CMD...: counts CMD's success or failure; summary SUITE prints the
# closing line CI reads and returns non-zero when anything failed.
pass=0
fail=0

check() {
	local name=$1
	shift
	if "$@"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "  FAIL $name" >&2
	fi
}

summary() {
	echo "$1: $pass passed, $fail failed"
	((fail == 0))
}
