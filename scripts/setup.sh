#!/usr/bin/env bash
# Installs every build and test dependency from Debian packages. Idempotent; quick when all is there.
set -euo pipefail

# Usage: scripts/setup.sh [--test]   (--test adds what only the tests need: clang's fuzzer and
# sanitizer runtimes, and Chromium to render the HTML report)
PACKAGES=(
  build-essential cmake git pkg-config ccache
  libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev libssl-dev
  libsentencepiece-dev libpcre2-dev libvulkan-dev glslc libcpp-httplib-dev
)
if [ "${1:-}" = "--test" ]; then
  PACKAGES+=(clang libclang-rt-14-dev chromium g++-aarch64-linux-gnu qemu-user mesa-vulkan-drivers)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
