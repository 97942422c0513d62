#!/usr/bin/env bash
# Build KenLM's lmplz and build_binary (needed by `curate train lm`) into tools/bin/.
#
# The source is the kenlm sdist from PyPI (it ships the full C++ tree, lmplz included).
# Usage: bash scripts/build_kenlm.sh [KENLM_VERSION]   (default 0.3.0; env JOBS, default 2)
set -euo pipefail

VERSION="${1:-0.3.0}"
JOBS="${JOBS:-2}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$REPO_ROOT/tools/bin"
PYTHON="${PYTHON:-python3}"

# Debian/Ubuntu packages the build needs; installed only when missing (apt needs root).
PACKAGES=(build-essential cmake libboost-program-options-dev libboost-system-dev
          libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "build_kenlm: installing missing packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "build_kenlm: need root to install them; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# --no-binary kenlm (not :all:) so pip does not also build cmake/setuptools from source.
# Build isolation stays on: pip prepares the sdist's metadata in a throwaway environment, so a
# bare venv (no `wheel`, as the README makes it) works and nothing is installed into it.
echo "build_kenlm: fetching kenlm==$VERSION source from PyPI"
"$PYTHON" -m pip download --quiet --no-deps --no-binary kenlm "kenlm==$VERSION" -d "$WORK"
tar -xzf "$WORK"/kenlm-*.tar.gz -C "$WORK"
SRC="$(find "$WORK" -maxdepth 1 -type d -name 'kenlm-*' | head -n 1)"
if [[ ! -f "$SRC/lm/builder/lmplz_main.cc" ]]; then
  echo "build_kenlm: $SRC has no lm/builder/lmplz_main.cc; this sdist cannot build lmplz" >&2
  exit 1
fi

echo "build_kenlm: building lmplz and build_binary with -j$JOBS"
# Compiler output (many deprecation warnings) goes to a log shown only when the build fails.
LOG="$WORK/build.log"
if ! { cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 \
       && cmake --build "$WORK/build" --target lmplz build_binary -j "$JOBS"; } >"$LOG" 2>&1; then
  tail -n 40 "$LOG" >&2
  echo "build_kenlm: build failed (log above)" >&2
  exit 1
fi

mkdir -p "$DEST"
cp "$WORK/build/bin/lmplz" "$WORK/build/bin/build_binary" "$DEST/"
echo "build_kenlm: installed $DEST/lmplz and $DEST/build_binary"
