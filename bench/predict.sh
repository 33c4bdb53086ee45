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
#   3. 100/s for CONFIRM_S seconds: client p50/p99 and the handoff stage
#      (what the Redis hops add to a prediction);
#   4. open loop (bench/loadgen), batching on (defaults) and then off
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
. bench/lib.sh

echo "building bin/warden (libtorch), bench/loadgen, bench/inproc …" >&2
go build -modfile="$MODFILE" -tags torch -p=1 -o "$work/warden" ./cmd/warden
go build -modfile="$MODFILE" -tags torch -p=1 -o "$work/inproc" ./bench/inproc
CGO_ENABLED=0 go build -o "$work/loadgen" ./bench/loadgen
bench_services
export WARDEN_TORCH_THREADS="$TORCH_THREADS"

# start_predicting [VAR=value …]: `warden dev` with the extra environment,
# up until a prediction is answered (a restarted worker serves predictions
# once its heartbeat is in Redis).
start_predicting() {
	start_warden "$work/warden" dev "$@"
	local zeros
	zeros=$(printf '0,%.0s' $(seq 63))0
	for _ in $(seq 120); do
		[ "$(curl_auth -o /dev/null -w '%{http_code}' -H "Content-Type: application/json" \
			-d "{\"input_data\":[$zeros]}" "$base/v1/models/$model/predict")" = 200 ] && return 0
		sleep 0.5
	done
	echo "bench/predict.sh: no prediction answered" >&2
	return 1
}

loadgen() { "$work/loadgen" -url "$base" -model "$model" -creds "$creds" "$@"; }

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
start_predicting
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

# 3. 100/s for CONFIRM_S seconds (issue 14's fixed rate), with the handoff
# (request push → reply in the API, less the worker's handling: what
# carrying a prediction over Redis adds).
loadgen -mode seq -warmup 100 -n 1 -metrics=false >/dev/null
open_run 100 "$CONFIRM_S"
at100="$last"

# 4. Open loop, batching on, then off.
search "batching on (max 32, window 1 ms)"
stop_warden
start_predicting WARDEN_PREDICT_BATCH_MAX=1
search "batching off (max 1)"
stop_warden

echo
echo "| date | threads | seq p50 / p99 ms | in-process forward p50 / p99 ms | idle CPU s/s (warden / runner) | idle Redis cmds/s | machine busy when idle (cores) |"
echo "|---|---|---|---|---|---|---|"
echo "| $(date -u +%Y-%m-%d) | $TORCH_THREADS | $(val "$seq" p50_ms) / $(val "$seq" p99_ms) | $(val "$inproc" p50_ms) / $(val "$inproc" p99_ms) | $(val "$idle" warden_cpu) / $(val "$idle" runner_cpu) | $(val "$idle" redis_cmds_per_s) | $(val "$idle" machine_busy_cores) |"
echo
echo "| date | rate/s | s | ok | errors | p50 / p99 ms (client) | API total p50 / p99 ms | handoff p50 / p99 ms | handoff mean ms |"
echo "|---|---|---|---|---|---|---|---|---|"
echo "| $(date -u +%Y-%m-%d) | $(val "$at100" rate) | $(val "$at100" duration_s) | $(val "$at100" ok) | $(($(val "$at100" errors) + $(val "$at100" non200))) | $(val "$at100" p50_ms) / $(val "$at100" p99_ms) | $(val "$at100" total_p50_ms) / $(val "$at100" total_p99_ms) | $(val "$at100" handoff_p50_ms) / $(val "$at100" handoff_p99_ms) | $(val "$at100" handoff_mean_ms) |"
echo
echo "| run | rate/s | s | achieved/s | ok | errors | p50 ms | p99 ms | max ms | mean batch | server mean queue / runner / forward ms | CPU s/s warden / runner / redis / postgres / loadgen | machine busy (cores of $(nproc)) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s' "$rows"
