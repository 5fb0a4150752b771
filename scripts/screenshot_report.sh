#!/usr/bin/env bash
# Look at the report as a person would: headless Chromium renders DIR/index.html to DIR/screenshot.png.
# Needs Debian's chromium (apt-get install chromium). Usage: scripts/screenshot_report.sh [DIR] [HEIGHT]
set -euo pipefail
dir=$(realpath "${1:-attnscale-report}")
height=${2:-2400}
[ -f "$dir/index.html" ] || { echo "no $dir/index.html: run attnscale report first" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1200,"$height" \
  --screenshot="$dir/screenshot.png" "file://$dir/index.html" 2>/dev/null
echo "$dir/screenshot.png"
