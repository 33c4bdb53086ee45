#!/usr/bin/env bash
# Installs what Warden needs on a Debian machine, only what is missing.
# Idempotent; run by `make run`, `make test` and `make bench`.
#   scripts/deps.sh [base|torch]
set -euo pipefail
what=${1:-base}

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if ! have_cmd go; then
	echo "deps: Go is required (go.mod asks for $(awk '/^go /{print $2}' go.mod)); install it from https://go.dev/dl and re-run" >&2
	exit 1
fi
have_cmd redis-server || need+=(redis-server)
have_cmd redis-sentinel || need+=(redis-sentinel)
have_cmd psql || need+=(postgresql postgresql-client)
have_pkg postgresql || have_cmd pg_ctlcluster || need+=(postgresql)
have_cmd npm || need+=(npm)
have_cmd curl || need+=(curl)
have_cmd chromium || need+=(chromium) # the results UI's browser test (chromedp)
if [ "$what" = torch ]; then
	have_pkg libtorch-dev || need+=(libtorch-dev)
	have_pkg python3-torch || need+=(python3-torch)
	have_pkg wordnet-base || need+=(wordnet-base)
fi

if [ ${#need[@]} -gt 0 ]; then
	echo "deps: installing ${need[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
