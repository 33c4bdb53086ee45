#!/usr/bin/env bash
# Prediction benchmark (issue 16): POST /v1/models/{id}/predict on the demo
# digits CNN through a real `warden dev` (API + worker in one process, the
# confined runner on), its own Redis (a redis-server on a free port, so the
# command counts are Warden's alone) and its own PostgreSQL database.
# Called by `make bench`; see bench/RESULTS.md ("Prediction benchmark").
#   1. sequential: 300 predictions after 50 warm-up on one keep-alive
#      connection, beside the in-process forward of the same model file
#      (bench/inproc) measured in the same run;
#   2. idle: CPU of the warden process and its children, and Redis commands,
#      over IDLE_S seconds with nothing happening;
#   3. open loop (bench/loadgen), batching on (defaults) and then off
#      (WARDEN_PREDICT_BATCH_MAX=1): STEP_S-second steps at the RATES from
#      1000/s up until one misses (p99 > 50 ms or any error), then a
#      CONFIRM_S-second run at the highest passing rate (one step lower again
#      if that run misses). The 1000/s step is the "1,000/s" figure.
#   TORCH_THREADS=1 CONNS=32 STEP_S=10 CONFIRM_S=30 IDLE_S=30 bash bench/predict.sh
#   RATES="500 1000 1500 2000 3000 4000 5000 6000 8000" bash bench/predict.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODFILE=.build/go.torch.mod
[ -f "$MODFILE" ] || { echo "bench/predict.sh: $MODFILE missing; run make -f mk/torch.mk torch-setup" >&2; exit 1; }
TORCH_THREADS="${TORCH_THREADS:-1}" CONNS="${CONNS:-32}" STEP_S="${STEP_S:-10}" CONFIRM_S="${CONFIRM_S:-30}" IDLE_S="${IDLE_S:-30}"
RATES="${RATES:-250 500 1000 1500 2000 2500 3000 4000 5000 6000 8000}"
P99_MAX_MS=50
PGURL="${PGURL:-postgres://postgres@127.0.0.1:5432}"

work=$(mktemp -d /tmp/warden-predbench.XXXXXX)
db="warden_bench_$$"
wpid="" rpid=""
cleanup() {
	[ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
	[ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
	psql "$PGURL/postgres?sslmode=disable" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "building bin/warden (libtorch), bench/loadgen, bench/inproc …" >&2
go build -modfile="$MODFILE" -tags torch -p=1 -o "$work/warden" ./cmd/warden
go build -modfile="$MODFILE" -tags torch -p=1 -o "$work/inproc" ./bench/inproc
CGO_ENABLED=0 go build -o "$work/loadgen" ./bench/loadgen

# free_port prints a TCP port nothing on 127.0.0.1 listens on.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
	echo "bench/predict.sh: no free port" >&2
	return 1
}
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --logfile "$work/redis.log" &
rpid=$!
psql "$PGURL/postgres?sslmode=disable" -qc "CREATE DATABASE $db" >/dev/null
port=$(free_port)
base="http://127.0.0.1:$port"
rcli() { redis-cli -p "$rport" "$@"; }
for _ in $(seq 50); do [ "$(rcli PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done

export WARDEN_ADDR="127.0.0.1:$port" WARDEN_DATA_DIR="$work/data" WARDEN_REDIS_URL="redis://127.0.0.1:$rport/0" \
	WARDEN_DATABASE_URL="$PGURL/$db?sslmode=disable" WARDEN_RATE_GENERAL=1000000 WARDEN_RATE_CREDENTIAL=1000000 \
	WARDEN_ORG_MAX_ACTIVE_JOBS=0 WARDEN_TORCH_THREADS="$TORCH_THREADS"
# Logging stays at info (one JSON access-log line per request, to a file), as
# in production.

# start_warden runs `warden dev` with the extra environment given and waits
# until the demo digits model is active; sets wpid and model.
start_warden() {
	model=""
	env "$@" "$work/warden" dev >>"$work/warden.out" 2>>"$work/warden.log" &
	wpid=$!
	local creds="$WARDEN_DATA_DIR/demo-credentials.json"
	for _ in $(seq 600); do
		kill -0 "$wpid" 2>/dev/null || { tail -20 "$work/warden.log" >&2; echo "bench/predict.sh: warden dev exited" >&2; return 1; }
		if [ -f "$creds" ]; then
			model=$(curl -sf -H "x-api-key: $(jq -r .api_key "$creds")" -H "Org-Id: $(jq -r .org_id "$creds")" "$base/v1/models" |
				jq -r '.data[] | select(.name == "demo-digits-cnn" and .status == "active") | .id' 2>/dev/null || true)
			[ -n "$model" ] && break
		fi
		sleep 0.5
	done
	[ -n "$model" ] || { echo "bench/predict.sh: the demo digits model did not become active" >&2; return 1; }
	# A restarted worker serves predictions once its heartbeat is in Redis.
	local zeros
	zeros=$(printf '0,%.0s' $(seq 63))0
	for _ in $(seq 120); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Content-Type: application/json" -H "x-api-key: $(jq -r .api_key "$creds")" \
			-H "Org-Id: $(jq -r .org_id "$creds")" -d "{\"input_data\":[$zeros]}" "$base/v1/models/$model/predict")" = 200 ] && return 0
		sleep 0.5
	done
	echo "bench/predict.sh: no prediction answered" >&2
	return 1
}
stop_warden() { kill "$wpid"; wait "$wpid" 2>/dev/null || true; wpid=""; }

loadgen() { "$work/loadgen" -url "$base" -model "$model" -creds "$WARDEN_DATA_DIR/demo-credentials.json" "$@"; }
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

# open_run RATE SECONDS: one open-loop run; prints its lines, sets last.
open_run() {
	local before after out t0 batch
	t0=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
	before=$(snap)
	out=$(loadgen -mode open -rate "$1" -duration "$2s" -conns "$CONNS")
	after=$(snap)
	sleep 1 # audit records are written in batches
	batch=$(psql "$WARDEN_DATABASE_URL" -Atc "SELECT round(avg(batch), 2) FROM predictions WHERE created_at >= '$t0' AND status = 'ok'")
	last="$(echo "$out" | grep '^LOADGEN') $(echo "$out" | grep '^STAGES' | cut -d' ' -f2-) $(cpu_delta "$before" "$after" "$2") batch_mean=$batch"
	echo "$last"
}
passes() {
	local l="$1"
	[ "$(val "$l" errors)" = 0 ] && [ "$(val "$l" non200)" = 0 ] &&
		awk -v p="$(val "$l" p99_ms)" -v m="$P99_MAX_MS" 'BEGIN { exit !(p <= m) }'
}
# search LABEL: the step search and confirmation; appends table rows.
rows=""
row() {
	local l="$2"
	rows+="| $1 | $(val "$l" rate) | $(val "$l" duration_s) | $(val "$l" achieved_per_s) | $(val "$l" ok) | $(($(val "$l" errors) + $(val "$l" non200))) | $(val "$l" p50_ms) | $(val "$l" p99_ms) | $(val "$l" max_ms) | $(val "$l" batch_mean) | $(val "$l" queue_mean_ms) / $(val "$l" runner_mean_ms) / $(val "$l" forward_mean_ms) | $(val "$l" warden_cpu) / $(val "$l" runner_cpu) / $(val "$l" redis_cpu) / $(val "$l" postgres_cpu) / $(awk -v c="$(val "$l" loadgen_cpu_s)" -v s="$(val "$l" duration_s)" 'BEGIN { printf "%.3f", c / s }') | $(val "$l" machine_busy_cores) |"$'\n'
}
search() {
	local label="$1" rates=($RATES) start=0 i best=-1 r
	for i in "${!rates[@]}"; do [ "${rates[$i]}" = 1000 ] && start=$i; done
	loadgen -mode seq -warmup 100 -n 1 -metrics=false >/dev/null # warm runner and batcher
	i=$start
	while [ "$i" -ge 0 ] && [ "$i" -lt "${#rates[@]}" ]; do
		open_run "${rates[$i]}" "$STEP_S"
		if passes "$last"; then
			row "$label step" "$last"
			best=$i
			[ "$i" -lt "$start" ] && break
			i=$((i + 1))
		else
			row "$label step (missed)" "$last"
			[ "$i" -gt "$start" ] && break
			i=$((i - 1))
		fi
		sleep 2
	done
	for i in $best $((best - 1)); do
		[ "$i" -ge 0 ] || break
		open_run "${rates[$i]}" "$CONFIRM_S"
		if passes "$last"; then
			row "**$label held ${CONFIRM_S} s**" "$last"
			return
		fi
		row "$label confirm (missed)" "$last"
		sleep 2
	done
}

echo "starting warden dev (training the demo models) …" >&2
start_warden
echo "warden dev up: $base, redis :$rport, database $db, digits model $model" >&2

# 1. Sequential, beside the in-process forward.
seq=$(loadgen -mode seq -warmup 50 -n 300)
echo "$seq"
inproc=$("$work/inproc" -data-dir "$WARDEN_DATA_DIR" -threads "$TORCH_THREADS")
echo "$inproc"

# 2. Idle.
sleep 3
rcli CONFIG RESETSTAT >/dev/null
c0=$(rcli INFO stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p')
before=$(snap)
sleep "$IDLE_S"
after=$(snap)
c1=$(rcli INFO stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p')
idle="IDLE seconds=$IDLE_S $(cpu_delta "$before" "$after" "$IDLE_S") redis_cmds_per_s=$(awk -v a="$c0" -v b="$c1" -v s="$IDLE_S" 'BEGIN { printf "%.1f", (b - a - 1) / s }')"
echo "$idle"
echo "IDLE_COMMANDS $(rcli INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\).*/\1=\2/p' | grep -v '^info=\|^config=' | sort -t= -k2 -nr | tr '\n' ' ')"

# 3. Open loop, batching on, then off.
search "batching on (max 32, window 1 ms)"
stop_warden
start_warden WARDEN_PREDICT_BATCH_MAX=1
search "batching off (max 1)"
stop_warden

echo
echo "| date | threads | seq p50 / p99 ms | in-process forward p50 / p99 ms | idle CPU s/s (warden / runner) | idle Redis cmds/s | machine busy when idle (cores) |"
echo "|---|---|---|---|---|---|---|"
echo "| $(date -u +%Y-%m-%d) | $TORCH_THREADS | $(val "$seq" p50_ms) / $(val "$seq" p99_ms) | $(val "$inproc" p50_ms) / $(val "$inproc" p99_ms) | $(val "$idle" warden_cpu) / $(val "$idle" runner_cpu) | $(val "$idle" redis_cmds_per_s) | $(val "$idle" machine_busy_cores) |"
echo
echo "| run | rate/s | s | achieved/s | ok | errors | p50 ms | p99 ms | max ms | mean batch | server mean queue / runner / forward ms | CPU s/s warden / runner / redis / postgres / loadgen | machine busy (cores of $(nproc)) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s' "$rows"
