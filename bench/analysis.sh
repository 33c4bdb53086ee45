#!/usr/bin/env bash
# MEA benchmark: model extraction of the digits CNN (2,000 queries, six
# curve points) through Warden's worker/analysis against the same steps in
# python3-torch (bench/analysis/mea_digits.py) on the same libtorch and
# intra-op thread count, alternating rounds in one run; prints the ratio.
#   TORCH_THREADS=1 ROUNDS=2 bash bench/analysis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODFILE=.build/go.torch.mod
[ -f "$MODFILE" ] || { echo "bench/analysis.sh: $MODFILE missing; run make -f mk/torch.mk torch-setup" >&2; exit 1; }
export WARDEN_BENCH_MEA=1 TORCH_THREADS="${TORCH_THREADS:-1}" WARDEN_BENCH_ROUNDS="${ROUNDS:-2}"
out=$(go test -modfile="$MODFILE" -tags torch -p=1 -count=1 -v -run '^TestBenchMEA$' ./worker/analysis/ 2>&1) || { echo "$out" | tail -40 >&2; exit 1; }
echo "$out" | grep -E 'bench_torch_test.go' | sed 's/^ *//'
echo "$out" | grep '^BENCH_MEA '
