#!/usr/bin/env bash
# Attack benchmark: FGSM and PGD-10 (L-inf) on a batch of 64 held-out digits
# through the demo CNN, Warden's worker path (attacks.FGSM/PGD through the
# worker's torchClassifier on libtorch) against the same steps in
# python3-torch on the same libtorch, same intra-op thread count, one run
# (alternating rounds); then the model runner's cost over in-process runs
# (TestBenchRunnerHop: prediction p50/p99 through a warm confined runner,
# FGSM and PGD-10 as runner operations, cold start). See bench/RESULTS.md.
#   TORCH_THREADS=1 ROUNDS=6 REPS=10 PROFILE=/tmp/attack.pprof bash bench/torch.sh
# Needs the libtorch build (make -f mk/torch.mk torch-setup) and Debian's
# python3-torch (installed by scripts/torch/test-setup when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
MODFILE=.build/go.torch.mod
[ -f "$MODFILE" ] || { echo "bench/torch.sh: $MODFILE missing; run make -f mk/torch.mk torch-setup" >&2; exit 1; }
scripts/torch/test-setup
export WARDEN_BENCH_TORCH=1 TORCH_THREADS="${TORCH_THREADS:-1}" WARDEN_BENCH_ROUNDS="${ROUNDS:-6}" WARDEN_BENCH_REPS="${REPS:-10}"
[ -n "${PROFILE:-}" ] && export WARDEN_BENCH_PROFILE="$PROFILE"
out=$(go test -modfile="$MODFILE" -tags torch -p=1 -count=1 -v -run '^TestBenchTorchAttacks$' ./worker/runner/ 2>&1) || { echo "$out" | tail -40 >&2; exit 1; }
echo "$out" | grep -E 'bench_torch_test.go' | sed 's/^ *//'
line=$(echo "$out" | grep '^BENCH ' | tail -1)
echo "$line"
val() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
met() { awk -v r="$1" 'BEGIN{print (r <= 1.1) ? "yes" : "no"}'; }
# markdown row: date | threads | FGSM go/py ms | ratio | PGD-10 go/py ms | ratio | CPU ratios | ≤ 1.1
echo "| $(date -u +%Y-%m-%d) | $(val threads) | $(val fgsm_go_ms) / $(val fgsm_py_ms) | $(val fgsm_ratio) | $(val pgd_go_ms) / $(val pgd_py_ms) | $(val pgd_ratio) | $(val fgsm_cpu_ratio) / $(val pgd_cpu_ratio) | $(met "$(val fgsm_ratio)")/$(met "$(val pgd_ratio)") |"
runner=$(go test -modfile="$MODFILE" -tags torch -p=1 -count=1 -v -run '^TestBenchRunnerHop$' ./worker/runner/ 2>&1) || { echo "$runner" | tail -40 >&2; exit 1; }
echo "$runner" | grep '^BENCH_RUNNER '
