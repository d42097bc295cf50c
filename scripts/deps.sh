#!/usr/bin/env bash
# Installs what the build and the tests need, and nothing that is already there.
# Called by `make deps` (so by every `make build` / `make test`); fast when all
# is present: a dpkg-query and one stamp check per Go tool.
#
# Debian packages: we pin the release (bookworm), not package versions: the
# archive drops old versions on every security update. The versions actually
# installed are recorded in build/deps-versions.txt.
# Go tools: pinned module versions, installed into .tools/bin (GOBIN), one
# stamp per tool in .tools/stamps/<tool>@<version>.
#
#   scripts/deps.sh                        everything above
#   scripts/deps.sh tool NAME PKG VERSION  one Go tool, same stamp logic (for
#                                          tools only some targets need, e.g.
#                                          MinIO for make test-minio)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DEBIAN_RELEASE=bookworm
DEB_PACKAGES=(
	build-essential pkg-config
	libcurl4-openssl-dev libssl-dev libxml2-dev liblmdb-dev libjansson-dev libyaml-dev
	curl ca-certificates
)
# name  module-path/cmd  version
GO_TOOLS=(
	"versitygw github.com/versity/versitygw/cmd/versitygw v1.7.0"
	"crane github.com/google/go-containerregistry/cmd/crane v0.21.9"
	"oras oras.land/oras/cmd/oras v1.3.3"
	"regctl github.com/regclient/regclient/cmd/regctl v0.11.5"
)

TOOLS_BIN=$ROOT/.tools/bin
STAMPS=$ROOT/.tools/stamps
VERSIONS_FILE=$ROOT/build/deps-versions.txt

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- Debian ----

deb_installed() {
	local st
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) || return 1
	[[ $st == ii* ]]
}

install_debs() {
	command -v dpkg-query >/dev/null 2>&1 ||
		die "dpkg-query not found: this script supports Debian $DEBIAN_RELEASE only; install by hand: ${DEB_PACKAGES[*]}"

	local codename=""
	if [[ -r /etc/os-release ]]; then
		codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
	fi
	if [[ $codename != "$DEBIAN_RELEASE" ]]; then
		say "WARNING: release is '${codename:-unknown}', the project pins Debian $DEBIAN_RELEASE"
	fi

	local missing=() p
	for p in "${DEB_PACKAGES[@]}"; do
		deb_installed "$p" || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		say "debian packages: all ${#DEB_PACKAGES[@]} present"
		return 0
	fi

	local sudo=()
	if ((EUID != 0)); then
		command -v sudo >/dev/null 2>&1 ||
			die "missing packages (${missing[*]}) and not root, no sudo"
		sudo=(sudo -n)
	fi
	say "installing debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -q </dev/null
	"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
	for p in "${missing[@]}"; do
		deb_installed "$p" || die "package $p still not installed"
	done
}

# -------------------------------------------------------------------- Go ----

find_go() {
	if [[ -n ${GO:-} ]] && command -v "$GO" >/dev/null 2>&1; then
		command -v "$GO"
	elif command -v go >/dev/null 2>&1; then
		command -v go
	elif [[ -x /usr/local/go/bin/go ]]; then
		printf '%s\n' /usr/local/go/bin/go
	else
		return 1
	fi
}

# Prints the module version recorded in a Go binary, if its main package is $2.
bin_version() {
	local bin=$1 pkg=$2
	"$GOCMD" version -m "$bin" 2>/dev/null | awk -v pkg="$pkg" '
		$1 == "path" { ok = ($2 == pkg) }
		$1 == "mod" && ok { print $3; exit }'
}

install_go_tool() {
	local name=$1 pkg=$2 version=$3
	local bin=$TOOLS_BIN/$name stamp=$STAMPS/$name@$version

	# Stamp newer than the binary: nothing to do (the common, fast path).
	if [[ -x $bin && -f $stamp && ! $bin -nt $stamp ]]; then
		say "$name $version: present"
		return 0
	fi
	# Binary without stamp (or replaced since): trust only its build info.
	if [[ -x $bin && $(bin_version "$bin" "$pkg") == "$version" ]]; then
		rm -f "$STAMPS/$name@"*
		touch "$stamp"
		say "$name $version: present (stamp written)"
		return 0
	fi

	say "$name $version: installing (go install $pkg@$version)"
	GOBIN=$TOOLS_BIN "$GOCMD" install "$pkg@$version" </dev/null
	local got
	got=$(bin_version "$bin" "$pkg")
	[[ $got == "$version" ]] || die "$name: installed binary reports version '${got:-none}', want $version"
	rm -f "$STAMPS/$name@"*
	touch "$stamp"
	say "$name $version: installed in ${bin#"$ROOT"/}"
}

install_go_tools() {
	GOCMD=$(find_go) || die "go not found (looked at \$GO, PATH, /usr/local/go/bin): install Go >= 1.25 from https://go.dev/dl/"
	mkdir -p "$TOOLS_BIN" "$STAMPS"
	local t
	for t in "${GO_TOOLS[@]}"; do
		# shellcheck disable=SC2086
		install_go_tool $t
	done
}

# --------------------------------------------------------------- record ----

write_versions() {
	local tmp
	mkdir -p "$(dirname "$VERSIONS_FILE")"
	tmp=$(mktemp "$VERSIONS_FILE.XXXXXX")
	{
		printf '# written by scripts/deps.sh\n'
		printf 'os %s\n' "$(. /etc/os-release 2>/dev/null && printf '%s' "${PRETTY_NAME:-unknown}")"
		dpkg-query -W -f='deb ${Package} ${Version}\n' "${DEB_PACKAGES[@]}"
		printf 'go %s\n' "$("$GOCMD" env GOVERSION)"
		local t name pkg version
		for t in "${GO_TOOLS[@]}"; do
			read -r name pkg version <<<"$t"
			printf 'gotool %s %s %s\n' "$name" "$pkg" "$(bin_version "$TOOLS_BIN/$name" "$pkg")"
		done
	} >"$tmp"
	chmod 644 "$tmp"
	if cmp -s "$tmp" "$VERSIONS_FILE"; then
		rm -f "$tmp"
	else
		mv "$tmp" "$VERSIONS_FILE"
		say "versions recorded in ${VERSIONS_FILE#"$ROOT"/}"
	fi
}

if [[ ${1:-} == tool ]]; then
	(($# == 4)) || die "usage: scripts/deps.sh tool NAME PKG VERSION"
	GOCMD=$(find_go) || die "go not found (looked at \$GO, PATH, /usr/local/go/bin)"
	mkdir -p "$TOOLS_BIN" "$STAMPS"
	install_go_tool "$2" "$3" "$4"
	exit 0
fi

install_debs
install_go_tools
write_versions
