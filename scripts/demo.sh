#!/usr/bin/env bash
# The main job on the bundled demo, on CPU and offline: build the tiny trainee and the demo
# scorer (the tiny model fine-tuned on the demo pool's labels; both cached), then
#   llamafactory-cli train recipes/quickstart/tiny_qwen2vl_lora_mmssr.yaml
# whose data_selection block scores the demo pool, selects 30%, registers the subset and
# LoRA-trains a few steps on it. A second run reuses the scores and the subset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
VENV="${MMSSR_VENV:-.venv}"
OUT=outputs/quickstart
mkdir -p "$OUT"

# Both models live in versioned, content-hashed cache folders; the recipe names them by these links.
"$VENV/bin/python" -m mmssr_plugin.testing.tiny_vlm --link outputs/tiny-qwen2vl
# First run only: mmssr-cli build-scorer-data + llamafactory-cli train on the demo labels.
scorer="$("$VENV/bin/python" -m mmssr_plugin.testing.demo_scorer)"
ln -sfn "$scorer" outputs/tiny-qwen2vl-demo-scorer
# Work on a copy of data_info/ so the repository's registry stays untouched.
if [ ! -f "$OUT/data/dataset_info.json" ]; then
  mkdir -p "$OUT/data" && cp -r data_info/. "$OUT/data/"
fi

export TOKENIZERS_PARALLELISM=false
"$VENV/bin/llamafactory-cli" train recipes/quickstart/tiny_qwen2vl_lora_mmssr.yaml \
  dataset_dir="$OUT/data" "$@" 2>&1 | tee "$OUT/train.log"

echo
echo "================ mmssr-plugin quickstart summary ================"
grep -F "[mmssr]" "$OUT/train.log" || true
grep -E "Num examples|train_loss" "$OUT/train.log" | sed 's/^.*>> *//' || true
echo "full log: $OUT/train.log"
