#!/usr/bin/env bash
# The test suite under other CPU kernel paths, on this one machine (docs/testing.md, "The same numbers on
# other CPUs"): a test that holds a float to digits that only this CPU's vector kernels produce fails here
# rather than on the next machine CI happens to run on.
#
#   bash scripts/test_kernels.sh                          # every test, under avx2, then under baseline
#   bash scripts/test_kernels.sh avx2                     # one path
#   bash scripts/test_kernels.sh avx2 baseline -- tests/test_rundir.py -x   # pytest arguments after --
#
# Paths (each caps every library that picks its kernels by CPU; unknown to a library = no effect):
#   native    what this CPU picks (what scripts/test.sh runs)
#   avx2      what an AVX2-only CPU runs (e.g. AMD EPYC Zen 2/3): torch's ATen kernels, oneDNN's convolutions,
#             MKL's and OpenBLAS's (Haswell) BLAS, numpy's own SIMD loops, all at AVX2
#   baseline  no vector dispatch past SSE4: ATen's scalar "default" kernels, oneDNN SSE4.1, MKL SSE4.2,
#             OpenBLAS Nehalem, numpy's X86_V2 baseline
# Tests run in PREND_TEST_WORKERS processes (default 2) as in scripts/test.sh; the workers inherit the
# variables. Set-up is not repeated: run scripts/test.sh (or scripts/setup_env.sh) first.
set -euo pipefail
cd "$(dirname "$0")/.."

paths=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do paths+=("$1"); shift; done
[ $# -gt 0 ] && shift  # the --
[ ${#paths[@]} -gt 0 ] || paths=(avx2 baseline)

kernel_env() {  # the variables of one path, as NAME=VALUE words for env
  case "$1" in
    native) ;;
    avx2) echo ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
               OPENBLAS_CORETYPE=Haswell NPY_DISABLE_CPU_FEATURES=X86_V4,AVX512_ICL,AVX512_SPR ;;
    baseline) echo ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2 \
                   OPENBLAS_CORETYPE=Nehalem NPY_DISABLE_CPU_FEATURES=X86_V3,X86_V4,AVX512_ICL,AVX512_SPR ;;
    *) echo "test_kernels: unknown path '$1' (native, avx2 or baseline)" >&2; return 2 ;;
  esac
}

# What each library reports it runs, so a variable a library no longer reads shows up as an unchanged line.
REPORT='
import numpy as np, torch
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
np.ones((4, 4)) @ np.ones((4, 4))
x = torch.ones(2, 4, 84, 84).to(memory_format=torch.channels_last)
with torch.no_grad():
    torch.nn.Conv2d(4, 32, 8, 4).to(memory_format=torch.channels_last)(x)
print("torch ATen:", torch.backends.cpu.get_cpu_capability())
print("numpy dispatch:", " ".join(t for t in __cpu_dispatch__ if __cpu_features__.get(t)) or "baseline only")
'

failed=()
for path in "${paths[@]}"; do
  vars=$(kernel_env "$path")
  echo "test_kernels: $path: ${vars:-(no variables)}"
  # shellcheck disable=SC2086  # vars is a list of NAME=VALUE words
  env $vars OPENBLAS_VERBOSE=2 ONEDNN_VERBOSE=1 .venv/bin/python -c "$REPORT" 2>&1 \
    | sed -nE 's/^Core: (.*)/OpenBLAS: \1/p; s/.*,info,cpu,isa:(.*)/oneDNN: \1/p; /^(torch|numpy) /p' \
    | sort -u | sed 's/^/test_kernels:   /'
  start=$SECONDS
  # shellcheck disable=SC2086
  if env $vars .venv/bin/python -m pytest -n "${PREND_TEST_WORKERS:-2}" --dist loadfile "$@"; then status=passed; else status=FAILED; failed+=("$path"); fi
  echo "test_kernels: $path: $status in $((SECONDS - start)) s"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test_kernels: failed under: ${failed[*]}"
  exit 1
fi
echo "test_kernels: passed under: ${paths[*]}"
