# bench/lib.sh — shell pieces the process-level benchmarks share
# (bench/predict.sh, bench/api.sh): a private Redis and PostgreSQL database,
# a `warden` process with the demo models, CPU accounting from /proc.
# Source it after `cd` to the repository root; it sets an EXIT trap.
#   work  a temporary directory (removed on exit)
#   db    the benchmark's PostgreSQL database (dropped on exit)
#   rport the private redis-server's port; rcli talks to it
#   base  the Warden URL; WARDEN_* are exported for `warden` processes

PGURL="${PGURL:-postgres://postgres@127.0.0.1:5432}"
work=$(mktemp -d /tmp/warden-bench.XXXXXX)
db="warden_bench_$$"
wpid="" rpid=""
bench_cleanup() {
	[ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
	[ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
	psql "$PGURL/postgres?sslmode=disable" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap bench_cleanup EXIT

# free_port prints a TCP port nothing on 127.0.0.1 listens on.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
	echo "bench: no free port" >&2
	return 1
}

# bench_services starts the private redis-server (no persistence, so its
# memory and command counts are Warden's alone) and creates the database,
# then exports the environment a `warden` process needs.
bench_services() {
	rport=$(free_port)
	redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --logfile "$work/redis.log" &
	rpid=$!
	psql "$PGURL/postgres?sslmode=disable" -qc "CREATE DATABASE $db" >/dev/null
	port=$(free_port)
	base="http://127.0.0.1:$port"
	for _ in $(seq 50); do [ "$(rcli PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done
	# Logging stays at info (one JSON access-log line per request, to a
	# file), as in production.
	export WARDEN_ADDR="127.0.0.1:$port" WARDEN_DATA_DIR="$work/data" WARDEN_REDIS_URL="redis://127.0.0.1:$rport/0" \
		WARDEN_DATABASE_URL="$PGURL/$db?sslmode=disable" WARDEN_RATE_GENERAL=1000000 WARDEN_RATE_CREDENTIAL=1000000 \
		WARDEN_ORG_MAX_ACTIVE_JOBS=0
	creds="$WARDEN_DATA_DIR/demo-credentials.json"
}
rcli() { redis-cli -p "$rport" "$@"; }

# curl_auth: curl with the demo credentials.
curl_auth() { curl -s -H "x-api-key: $(jq -r .api_key "$creds")" -H "Org-Id: $(jq -r .org_id "$creds")" "$@"; }

# start_warden BIN CMD [VAR=value …]: runs `BIN CMD` (dev or api) with the
# extra environment and waits until the API answers and the demo digits
# model is active (training it the first time); sets wpid and model.
start_warden() {
	local bin="$1" cmd="$2"
	shift 2
	model=""
	env "$@" "$bin" "$cmd" >>"$work/warden.out" 2>>"$work/warden.log" &
	wpid=$!
	for _ in $(seq 600); do
		kill -0 "$wpid" 2>/dev/null || { tail -20 "$work/warden.log" >&2; echo "bench: warden $cmd exited" >&2; return 1; }
		if [ -f "$creds" ]; then
			model=$(curl_auth -f "$base/v1/models" |
				jq -r '.data[] | select(.name == "demo-digits-cnn" and .status == "active") | .id' 2>/dev/null || true)
			[ -n "$model" ] && return 0
		fi
		sleep 0.5
	done
	echo "bench: the demo digits model did not become active" >&2
	return 1
}
stop_warden() { kill "$wpid"; wait "$wpid" 2>/dev/null || true; wpid=""; }

# val LINE KEY: the value of KEY=… in a "k=v k=v" line.
val() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

# CPU accounting from /proc, in clock ticks.
hz=$(getconf CLK_TCK)
descendants() {
	ps -e -o pid=,ppid= | awk -v root="$1" '{ parent[$1] = $2 }
		END { keep[root] = 1; do { more = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; more = 1 } } while (more)
		      for (p in keep) if (p != root) print p }'
}
# ticks PID…: utime+stime (+ reaped children's) of the processes.
ticks() {
	local t=0 p v
	for p in "$@"; do
		v=$(awk '{ sub(/.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + v))
	done
	echo "$t"
}
machine_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }
# snap: warden-process runner-children redis postgres machine-busy machine-idle
snap() {
	echo "$(ticks "$wpid") $(ticks $(descendants "$wpid")) $(ticks "$rpid") $(ticks $(pgrep -x postgres)) $(machine_busy)"
}
# cpu_delta BEFORE AFTER SECONDS: CPU seconds per second of each.
cpu_delta() {
	awk -v hz="$hz" -v ncpu="$(nproc)" -v s="$3" -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ")
		busy = y[5] - x[5]; idle = y[6] - x[6]
		printf "warden_cpu=%.3f runner_cpu=%.3f redis_cpu=%.3f postgres_cpu=%.3f machine_busy_cores=%.2f\n",
			(y[1]-x[1])/hz/s, (y[2]-x[2])/hz/s, (y[3]-x[3])/hz/s, (y[4]-x[4])/hz/s, ncpu*busy/(busy+idle) }'
}
