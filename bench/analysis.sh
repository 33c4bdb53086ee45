#!/usr/bin/env bash
# AISpectra analysis benchmarks, Warden's worker/analysis against the same
# steps in python3-torch on the same libtorch and intra-op thread count,
# alternating rounds in one run; each prints its ratio (target ≤ 1.2):
#   MEA: model extraction of the digits CNN, 2,000 queries, six curve
#        points (bench/analysis/mea_digits.py)
#   EVA: PGD robustness curve of the digits CNN, 200 digits × 8 ε × 10
#        steps (worker/analysis/testdata/eva_reference.py)
#   DPOIS: data poisoning (activation clustering, spectral signatures,
#        reclassification vote) of the BadNets digits CNN, 1,797 rows
#        (bench/analysis/dpois_digits.py)
#   MPois: model poisoning (Neural Cleanse) of the BadNets digits CNN,
#        10 classes × 100 trigger steps (bench/analysis/mpois_digits.py)
#   TORCH_THREADS=1 ROUNDS=2 REPS=3 bash bench/analysis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODFILE=.build/go.torch.mod
[ -f "$MODFILE" ] || { echo "bench/analysis.sh: $MODFILE missing; run make -f mk/torch.mk torch-setup" >&2; exit 1; }
scripts/torch/test-setup
export WARDEN_BENCH_MEA=1 WARDEN_BENCH_EVA=1 WARDEN_BENCH_DPOIS=1 WARDEN_BENCH_MPOIS=1 TORCH_THREADS="${TORCH_THREADS:-1}" WARDEN_BENCH_ROUNDS="${ROUNDS:-2}" WARDEN_BENCH_REPS="${REPS:-3}"
out=$(go test -modfile="$MODFILE" -tags torch -p=1 -count=1 -v -run '^TestBench(MEA|EVA|DPois|MPois)$' ./worker/analysis/ 2>&1) || { echo "$out" | tail -40 >&2; exit 1; }
echo "$out" | grep -E 'bench_torch_test.go|^EVA|^  ' | sed 's/^ *//'
echo "$out" | grep -E '^BENCH_(MEA|DPOIS|MPOIS) '
