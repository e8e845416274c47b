#!/usr/bin/env bash
# One GPU session, in one command: train the Model I checkpoint at DeepLense scale
# (recipes/configs/shipped_model_i_gpu.yaml), then measure model throughput on the GPU.
#
#   OUT=/path/to/results bash benchmarks/gpu_session.sh [extra lens-hf train flags]
#
# Writes $OUT/gpu_model.tar.gz (the model folder without its Trainer checkpoints), $OUT/train.log,
# $OUT/throughput_gpu/throughput.{json,md} and $OUT/nvidia-smi.txt. The throughput step is skipped when less
# than THROUGHPUT_AFTER_S seconds are left of BUDGET_S (default 540 s from the start of this script).
set -uo pipefail
OUT=${OUT:-benchmarks/work/gpu}
BUDGET_S=${BUDGET_S:-540}
mkdir -p "$OUT"
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; python3 --version) \
  >"$OUT/nvidia-smi.txt" 2>&1 || true
model_dir=${MODEL_DIR:-/tmp/lens_hf_gpu_model}
python3 -m lens_hf.cli train --recipe vit_spt_lsa --config recipes/configs/shipped_model_i_gpu.yaml \
  --output_dir "$model_dir" --disable_tqdm true "$@" 2>&1 | tee "$OUT/train.log" | grep -v "^{'loss'" | tail -n 40
train_rc=${PIPESTATUS[0]}
echo "train exit $train_rc after $(elapsed) s"
if [ "$train_rc" -eq 0 ]; then
  tar -C "$(dirname "$model_dir")" --exclude='checkpoint-*' -czf "$OUT/gpu_model.tar.gz" "$(basename "$model_dir")"
fi
if [ $(( BUDGET_S - $(elapsed) )) -gt "${THROUGHPUT_AFTER_S:-100}" ]; then
  device=cpu; python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" && device=cuda
  timeout $(( BUDGET_S - $(elapsed) - 15 )) python3 benchmarks/bench_throughput.py --device "$device" --quick \
    --out "$OUT/throughput_gpu" 2>&1 | tail -n 20
fi
echo "done after $(elapsed) s"
exit "$train_rc"
