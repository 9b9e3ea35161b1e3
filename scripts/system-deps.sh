#!/usr/bin/env bash
# Install the Debian packages okr-analysis needs when they are missing:
#   chromium        - prints the HTML reports to PDF (headless)
#   poppler-utils   - pdfinfo/pdftoppm, used by the tests to check PDFs
#   fonts-dejavu-core - a font with wide Unicode coverage for the reports
#   postgresql      - the tests start a throw-away PostgreSQL server (tests/test_postgres.py)
# Runs apt-get only when something is missing; needs root (or sudo).
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v pdfinfo  >/dev/null 2>&1 || missing+=(poppler-utils)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "okr-analysis: missing system packages (${missing[*]}) and no apt-get here;" >&2
  echo "  install them with your package manager (PDF output and the PostgreSQL tests need them)." >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "okr-analysis: run as root to install ${missing[*]} (PDF reports, PostgreSQL tests)." >&2
    exit 0
  fi
fi
echo "okr-analysis: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
