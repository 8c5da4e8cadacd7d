#!/usr/bin/env bash
# The GPU path's checks and figures on a machine with a GPU, in one go (README: "GPUs").
#
#   bash scripts/gpu-check.sh [OUT_DIR]        from the repository root, after npm install
#
# Needs Node.js with this checkout's node_modules (the webgpu package: Dawn), a GPU driver with Vulkan (Linux),
# Metal (macOS) or D3D12 (Windows), and, for the PyTorch side (optional), a Python with torch and transformers
# in $COURSE_PYTHON (default python3): on CUDA it runs there, else on the CPU. Each step is under a time limit
# and writes its output to OUT_DIR (default gpu-check/): the WebGPU tests on the real GPU, the matmul's tiles
# on GPT-2's shapes, gpt2-small and gpt2-medium benches (with a GPU profile of one step) against PyTorch on the
# same GPU, the book's whole 2-epoch schedule for gpt2-medium, and `finetune` of a random gpt2-medium
# checkpoint in Hugging Face layout made by transformers (no weights are downloaded).
set -u
out=${1:-${OUT:-gpu-check}}
mkdir -p "$out"
start=$SECONDS
log() { echo "=== $* ($((SECONDS - start)) s)"; }
py=${COURSE_PYTHON:-python3}
export COURSE_PYTHON=$py COURSE_HF_PYTHON=${COURSE_HF_PYTHON:-$py} PYTHONUNBUFFERED=1
device=$($py -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')" 2>/dev/null || echo cpu)
vs=(--vs-torch --torch-device "$device")
node="node --import tsx"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | tee "$out/gpu.txt"

log "WebGPU tests on this GPU"
timeout 300 $node --test test/webgpu*.test.ts > "$out/tests.txt" 2>&1
echo "exit $?"; grep -E "^# (pass|fail)|^not ok|^# \\\\#" "$out/tests.txt"

log "gpt2-small: 10 steps, generation, a GPU profile, against PyTorch on $device"
timeout 240 $node lib/cli/bench.ts --config gpt2-small --backend webgpu --steps 10 --gen 4 --gen-batch 8 --max-new-tokens 64 --profile "${vs[@]}" > "$out/gpt2-small.json" 2> "$out/gpt2-small.txt"
echo "exit $?"; grep -E "dispatches|GPU time|ratio" "$out/gpt2-small.txt" | tail -4; head -c 2000 "$out/gpt2-small.json"; echo

log "the matmul's tiles on GPT-2's shapes"
timeout 120 $node lib/cli/bench.ts --kernels --backend webgpu > "$out/kernels.json" 2> "$out/kernels.txt"
echo "exit $?"; grep matmul "$out/kernels.txt"

log "gpt2-medium: 10 steps, generation, a GPU profile, against PyTorch on $device"
timeout 300 $node lib/cli/bench.ts --config gpt2-medium --backend webgpu --steps 10 --gen 4 --gen-batch 8 --max-new-tokens 64 --profile "${vs[@]}" > "$out/gpt2-medium.json" 2> "$out/gpt2-medium.txt"
echo "exit $?"; head -c 2000 "$out/gpt2-medium.json"; echo

log "gpt2-medium: the book's whole 2-epoch schedule (232 steps, 47 evaluations), against PyTorch on $device"
timeout 600 $node lib/cli/bench.ts --config gpt2-medium --backend webgpu --schedule 2 --gen 0 "${vs[@]}" > "$out/gpt2-medium-schedule.json" 2> "$out/gpt2-medium-schedule.txt"
echo "exit $?"; head -c 1500 "$out/gpt2-medium-schedule.json"; echo

log "finetune of a random gpt2-medium checkpoint, the book's settings"
ckpt=$(mktemp -d)
timer=""; [ -x /usr/bin/time ] && timer="/usr/bin/time -v" # peak memory, where GNU time is installed
$py - "$ckpt" <<'PY' && timeout 600 $timer $node lib/cli/finetune.ts --weights "$ckpt" --backend webgpu --out "$out/finetune-run" --force > "$out/finetune.txt" 2>&1
import sys
from transformers import GPT2Config, GPT2LMHeadModel
GPT2LMHeadModel(GPT2Config(n_embd=1024, n_layer=24, n_head=16)).save_pretrained(sys.argv[1])
PY
echo "exit $?"; grep -E "engine|Training completed|Ep 2|Elapsed|Maximum resident" "$out/finetune.txt" | tail -6
rm -rf "$ckpt" "$out/finetune-run/model" "$out/finetune-run/checkpoint"
log done
