#!/usr/bin/env bash
# Installs the Debian packages that building nsh needs, and nothing else:
#
#   cmake clang libclang-dev   the `mbedtls` crate (DTLS) builds mbed TLS
#                              with cmake and generates its Rust bindings
#                              with bindgen, which needs libclang
#
# The Rust toolchain (cargo) and a C compiler are expected to be there.
# Packages named as arguments are installed too (tests/setup.sh adds what
# the tests need). Idempotent and non-interactive: when every package is
# present it changes nothing and says so. Uses sudo when not run as root.
#
#   bash scripts/install-build-deps.sh && cargo run --release -- -l
#   bash scripts/install-build-deps.sh tmux openssl
#
# Environment:
#   NSH_SETUP_SKIP_APT=1   only report what is missing; install nothing
set -euo pipefail

say() { printf 'packages: %s\n' "$*"; }

pkgs=(cmake clang libclang-dev "$@")
missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    say "present: ${pkgs[*]}"
    exit 0
fi
if [ "${NSH_SETUP_SKIP_APT:-}" = 1 ]; then
    say "NSH_SETUP_SKIP_APT=1: not installing missing packages: ${missing[*]}"
    exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
say "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when the install fails on stale/missing ones.
if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    say "apt-get install failed; running apt-get update and trying again"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
say "done"
