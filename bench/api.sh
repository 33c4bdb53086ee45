#!/usr/bin/env bash
# API read latency and a deep queue (issue 14): a real `warden api` process
# on loopback, its own Redis and PostgreSQL database, load from
# bench/apiload (vegeta, open loop). Called by `make bench`; see
# bench/RESULTS.md ("API load and queue depth").
#   1. `warden dev` trains the demo models and runs one FGSM attack, one
#      verification of a signed JPEG and one probe to completion; then only
#      `warden api` runs (no worker: whatever is submitted stays queued);
#   2. read: RATE/s for DURATION over attack status, attack results,
#      verification and job status (round robin), every answer a 200;
#   3. fill: QUEUED jobs pending in Redis, API_QUEUED of them submitted
#      through POST /v1/diagnostics/probe at RATE/s (row + task each; half
#      on the empty queue, half on the full one), the rest enqueued as the
#      API enqueues them; Redis memory per queued job;
#   4. read again, the same load with the queue full.
#   RATE=1000 DURATION=30s QUEUED=1000000 API_QUEUED=20000 bash bench/api.sh
#   PROFILE=/tmp/prof bash bench/api.sh   # CPU profiles of warden api during
#   each read run, and each request's start and latency (api-LABEL.csv):
#   go tool pprof -top /tmp/prof/api-empty.cpu.pprof
set -euo pipefail
cd "$(dirname "$0")/.."
MODFILE=.build/go.torch.mod
[ -f "$MODFILE" ] || { echo "bench/api.sh: $MODFILE missing; run make -f mk/torch.mk torch-setup" >&2; exit 1; }
RATE="${RATE:-1000}" DURATION="${DURATION:-30s}" QUEUED="${QUEUED:-1000000}" API_QUEUED="${API_QUEUED:-20000}"
. bench/lib.sh

echo "building bin/warden (libtorch) and bench/apiload …" >&2
go build -modfile="$MODFILE" -tags torch -p=1 -o "$work/warden" ./cmd/warden
CGO_ENABLED=0 go build -o "$work/apiload" ./bench/apiload
bench_services
if [ -n "${PROFILE:-}" ]; then
	mkdir -p "$PROFILE"
	export WARDEN_PPROF_ADDR="127.0.0.1:$(free_port)"
fi
apiload() { local mode="$1"; shift; "$work/apiload" "$mode" -url "$base" -creds "$creds" "$@"; }

echo "starting warden dev (training the demo models) …" >&2
start_warden "$work/warden" dev
apiload seed -model "$model" -image media/c2pa/testdata/C.jpg >"$work/ids.json"
echo "seeded: $(cat "$work/ids.json")" >&2
stop_warden
start_warden "$work/warden" api
echo "warden api up: $base, redis :$rport, database $db (no worker)" >&2

secs=$(awk -v d="$DURATION" 'BEGIN { sub(/s$/, "", d); print d }')
# pg_sessions: PostgreSQL sessions opened so far on the benchmark's database.
pg_sessions() { psql "$PGURL/postgres?sslmode=disable" -Atc "SELECT sessions FROM pg_stat_database WHERE datname = '$db'"; }
# read_run LABEL: one read run with the CPU it cost; sets last.
read_run() {
	local before after out prof="" s0 s1
	s0=$(pg_sessions)
	before=$(snap)
	if [ -n "${PROFILE:-}" ]; then
		curl -s -o "$PROFILE/api-$1.cpu.pprof" "http://$WARDEN_PPROF_ADDR/debug/pprof/profile?seconds=$((secs - 2))" &
		prof=$!
	fi
	out=$(apiload read -ids "$work/ids.json" -rate "$RATE" -duration "$DURATION" -label "$1" ${PROFILE:+-dump "$PROFILE/api-$1.csv"})
	after=$(snap)
	s1=$(pg_sessions)
	[ -z "$prof" ] || wait "$prof"
	echo "$out"
	last="$(echo "$out" | grep '^APILOAD ') $(cpu_delta "$before" "$after" "$secs") pg_sessions=$((s1 - s0))"
}

# Warm-up at the full rate (connection pools, caches, the first GCs).
apiload read -ids "$work/ids.json" -rate "$RATE" -duration 10s -label warmup >/dev/null
read_run empty
empty="$last"
echo "filling the queue: $QUEUED jobs ($API_QUEUED through the API) …" >&2
fill=$(apiload fill -redis "$WARDEN_REDIS_URL" -n "$QUEUED" -api "$API_QUEUED" -rate "$RATE")
echo "$fill"
sleep 5
read_run "queued"
queued="$last"

echo
echo "| date | queue | rate/s | s | requests | failed | achieved/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | CPU s/s warden / redis / postgres | machine busy (cores of $(nproc)) | PostgreSQL sessions opened |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for l in "$empty" "$queued"; do
	echo "| $(date -u +%Y-%m-%d) | $(val "$l" label) | $(val "$l" rate) | $(val "$l" duration_s) | $(val "$l" requests) | $(val "$l" failed) | $(val "$l" achieved_per_s) | $(val "$l" p50_ms) | $(val "$l" p90_ms) | $(val "$l" p99_ms) | $(val "$l" p999_ms) | $(val "$l" max_ms) | $(val "$l" warden_cpu) / $(val "$l" redis_cpu) / $(val "$l" postgres_cpu) | $(val "$l" machine_busy_cores) | $(val "$l" pg_sessions) |"
done
echo
echo "p99 queued / empty: $(awk -v a="$(val "$queued" p99_ms)" -v b="$(val "$empty" p99_ms)" 'BEGIN { printf "%.2f", a / b }'); p50 queued / empty: $(awk -v a="$(val "$queued" p50_ms)" -v b="$(val "$empty" p50_ms)" 'BEGIN { printf "%.2f", a / b }')"
echo
echo "| date | pending | through the API | direct | bytes/job (API part / direct part / all) | task hash bytes | pending list bytes/job | Redis used MB | submit p50 / p99 ms, empty queue | submit p50 / p99 ms, full queue |"
echo "|---|---|---|---|---|---|---|---|---|---|"
echo "| $(date -u +%Y-%m-%d) | $(val "$fill" pending) | $(val "$fill" api_jobs) | $(val "$fill" direct_jobs) | $(val "$fill" bytes_per_job_api) / $(val "$fill" bytes_per_job_direct) / $(val "$fill" bytes_per_job) | $(val "$fill" task_hash_bytes) | $(val "$fill" pending_list_bytes_per_job) | $(val "$fill" used_memory_mb) | $(val "$fill" submit_empty_p50_ms) / $(val "$fill" submit_empty_p99_ms) | $(val "$fill" submit_full_p50_ms) / $(val "$fill" submit_full_p99_ms) |"
