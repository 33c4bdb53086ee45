#!/usr/bin/env bash
# Horizontal scaling: the same batch of CPU-bound verifications drained by
# one `warden worker` process and then by two (one job at a time each),
# against one API, PostgreSQL and Redis. Called by `make bench`; see
# bench/RESULTS.md ("Worker scaling").
#   N=120 bash bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export WARDEN_BENCH=1 WARDEN_BENCH_SCALE_N="${N:-120}"
out=$(go test ./internal/e2e/ -run '^TestBenchWorkerScale$' -count=1 -v -timeout 15m 2>&1) || { echo "$out" | tail -40 >&2; exit 1; }
echo "$out" | grep -E '^BENCH_SCALE |scale_bench_test.go'
