#!/usr/bin/env bash
# Set up the environment if needed, then run the main job on the bundled demo pool.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
VENV="${MMSSR_VENV:-.venv}"
exec "$VENV/bin/mmssr-cli" select \
  --pool data_info/mmssr_demo/pool.json \
  --scores data_info/mmssr_demo/scores \
  --budget 0.3 \
  --capabilities all \
  --output outputs/demo/selected.json "$@"
