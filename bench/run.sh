#!/usr/bin/env bash
# Throughput benchmark: Warden (HTTP POST /v1/diagnostics/probe → completed
# job row in PostgreSQL) against raw asynq (enqueue + no-op handler) on the
# same Redis server, in one run. Called by `make bench`; see bench/RESULTS.md.
#   N=2000 CLIENTS=16 CONCURRENCY=8 PROFILE=/tmp/prof bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export WARDEN_BENCH=1
export WARDEN_BENCH_N="${N:-2000}" WARDEN_BENCH_CLIENTS="${CLIENTS:-16}" WARDEN_BENCH_CONCURRENCY="${CONCURRENCY:-8}"
[ -n "${PROFILE:-}" ] && mkdir -p "$PROFILE" && export WARDEN_BENCH_PROFILE="$PROFILE"
out=$(go test ./internal/e2e/ -run '^TestBenchThroughput$' -count=1 -v -timeout 10m 2>&1) || { echo "$out" | tail -40 >&2; exit 1; }
line=$(echo "$out" | grep '^BENCH ' | tail -1)
echo "$line"
# key=value pairs → markdown table row
val() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
ratio=$(val ratio)
met=$(awk -v r="$ratio" 'BEGIN{print (r >= 0.5) ? "yes" : "no"}')
echo "| $(date -u +%Y-%m-%d) | $(val n) | $(val clients) | $(val concurrency) | $(val warden_jobs_per_s) | $(val asynq_jobs_per_s) | $ratio | $met | |"
