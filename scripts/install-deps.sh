#!/usr/bin/env bash
# Installs what building, running and testing Strigil need on Debian 12 (bookworm).
# Idempotent and non-interactive: does nothing (and touches no network) when every
# package is already installed. Runs apt-get as root, through sudo when not root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  build-essential cmake pkg-config
  liblua5.4-dev libuv1-dev libcurl4-openssl-dev libcjson-dev libsqlite3-dev
  libhttp-parser-dev
  clang libclang-rt-14-dev
  tzdata python3 ca-certificates
  python3-yaml python3-jsonschema
)

# The Telegram smoke test's emulator (tests/emulator, an npm package) when
# npm is there; without it that test SKIPs. Pinned by package-lock.json.
emulator_deps() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/emulator"
  if command -v npm >/dev/null 2>&1 && [ -f "$dir/package-lock.json" ] &&
     [ ! -d "$dir/node_modules/telegram-test-api" ]; then
    echo "install-deps: npm ci in tests/emulator"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
      echo "install-deps: npm ci failed; the emulator smoke test will SKIP" >&2
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  emulator_deps
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  # Without a terminal (CI) sudo must not wait for a password.
  if [ -t 0 ]; then SUDO=(sudo); else SUDO=(sudo -n); fi
  SUDO+=(env DEBIAN_FRONTEND=noninteractive)
else
  echo "install-deps: missing ${missing[*]}; run this script as root (no sudo found)" >&2
  exit 1
fi

echo "install-deps: apt-get update && apt-get install ${missing[*]}"
"${SUDO[@]}" apt-get update -qq >/dev/null
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: installed ${#missing[@]} package(s)"
emulator_deps
