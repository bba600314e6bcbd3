#!/usr/bin/env bash
# readme-screenshots.sh - refresh the README's screenshots from the browser tests' own screenshots.
#
# `cargo xtask test` leaves every browser test's screenshots in $HOMEDESK_ARTIFACTS (default
# ~/.cache/homedesk/artifacts). This copies the ones the README shows into docs/screenshots/, scaled to
# at most 960 px wide and stripped of metadata. A missing file (a test renamed or not run) is an error,
# so the README never shows a picture no test takes any more.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
artifacts=${HOMEDESK_ARTIFACTS:-$HOME/.cache/homedesk/artifacts}
out=$root/docs/screenshots
# README name = test screenshot
shots=(
    "portal-login.png=designer-console-sales-page.png"
    "two-factor-enrolment.png=twofa-enrol.png"
    "desktop-files.png=files-upload-progress.png"
    "desktop-clipboard.png=clipboard-from-session.png"
    "phone-key-bar.png=phone-keyboard-bar.png"
    "reconnect-countdown.png=reconnect-countdown.png"
    "console-designer.png=designer-console-sales.png"
    "console-sessions.png=admin-sessions.png"
)
command -v convert >/dev/null || { echo "readme-screenshots: ImageMagick's convert is missing (apt-get install imagemagick)" >&2; exit 1; }
mkdir -p "$out"
for pair in "${shots[@]}"; do
    name=${pair%%=*} source=$artifacts/${pair#*=}
    [ -f "$source" ] || { echo "readme-screenshots: $source is missing: run cargo xtask test first" >&2; exit 1; }
    convert "$source" -resize '960x960>' -strip "$out/$name"
    echo "docs/screenshots/$name  <- ${pair#*=}"
done
