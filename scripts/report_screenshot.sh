#!/usr/bin/env bash
# Render a selection report to a PNG with headless Chromium, offline (as docs/quickstart_report.png
# was made after `bash scripts/demo.sh`):
#   bash scripts/report_screenshot.sh outputs/quickstart/data/mmssr_subsets/report_*/report.html docs/quickstart_report.png
set -euo pipefail
REPORT="$(realpath "$1")"
OUT="$(realpath -m "$2")"
PROFILE="$(mktemp -d)"
trap 'rm -rf "$PROFILE"' EXIT
/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  "--host-resolver-rules=MAP * ~NOTFOUND" --virtual-time-budget=5000 --hide-scrollbars \
  --user-data-dir="$PROFILE" --window-size="${WINDOW:-1280,2420}" --screenshot="$OUT" \
  "file://$REPORT" 2>/dev/null
echo "$OUT"
