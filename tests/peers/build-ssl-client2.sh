#!/usr/bin/env bash
# Builds mbed TLS's test programs ssl_client2 and ssl_server2 from the C
# sources that the `mbedtls-sys-auto` crate ships (the version in Cargo.lock,
# the same mbed TLS that nsh links), with MBEDTLS_SSL_DTLS_CONNECTION_ID
# switched on over the vendor's default include/mbedtls/config.h, so that the
# tests have a DTLS client (and a server, for debugging) that speaks
# Connection ID.
#
#   bash tests/peers/build-ssl-client2.sh     # prints the ssl_client2 path
#
# Output: target/peers/ssl_client2 and target/peers/ssl_server2 (the cmake
# build tree is target/peers/mbedtls-build). Nothing is rebuilt when both
# binaries are newer than this script. Needs cmake, make and a C compiler
# (scripts/install-build-deps.sh and tests/setup.sh install them).
#
# Environment:
#   NSH_PEERS_REBUILD=1   rebuild even when the binaries are up to date
#   CC                    the C compiler cmake uses (default: cc)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
script="$root/tests/peers/build-ssl-client2.sh"
out="$root/target/peers"
client="$out/ssl_client2"
server="$out/ssl_server2"

say() { printf 'build-ssl-client2: %s\n' "$*" >&2; }

if [ "${NSH_PEERS_REBUILD:-}" != 1 ] && [ "$client" -nt "$script" ] && [ "$server" -nt "$script" ]; then
    echo "$client"
    exit 0
fi

for tool in cargo cmake make; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        say "missing '$tool' (bash scripts/install-build-deps.sh installs cmake and make)"
        exit 1
    fi
done

# The crate's source directory, from cargo itself (fetching it first on a
# fresh clone), never a guessed path under ~/.cargo.
cd "$root"
cargo fetch --quiet
# (The package's manifest_path, picked out of the JSON with grep: no jq or
# python needed.)
manifest="$(cargo metadata --format-version 1 --locked |
    grep -o '"manifest_path":"[^"]*/mbedtls-sys-auto-[^/"]*/Cargo.toml"' |
    sed -e 's/^"manifest_path":"//' -e 's/"$//' | sort -u)"
if [ -z "$manifest" ] || [ "$(printf '%s\n' "$manifest" | wc -l)" -ne 1 ]; then
    say "cannot find exactly one mbedtls-sys-auto package in cargo metadata"
    exit 1
fi
vendor="$(dirname "$manifest")/vendor"
if [ ! -f "$vendor/programs/ssl/ssl_client2.c" ]; then
    say "no programs/ssl/ssl_client2.c in $vendor"
    exit 1
fi
say "mbed TLS sources: $vendor"

build="$out/mbedtls-build"
mkdir -p "$out"
# A fresh build tree each time: the source path changes with the crate
# version, and cmake refuses a cache made for another source directory.
rm -rf "$build"
cmake -S "$vendor" -B "$build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="-DMBEDTLS_SSL_DTLS_CONNECTION_ID" \
    -DENABLE_PROGRAMS=ON \
    -DENABLE_TESTING=OFF \
    -DMBEDTLS_FATAL_WARNINGS=OFF \
    -DUSE_SHARED_MBEDTLS_LIBRARY=OFF \
    -DUSE_STATIC_MBEDTLS_LIBRARY=ON \
    >"$build.log" 2>&1 || { cat "$build.log" >&2; say "cmake configure failed"; exit 1; }
jobs="$(nproc 2>/dev/null || echo 2)"
cmake --build "$build" --target ssl_client2 ssl_server2 -- -j"$jobs" \
    >>"$build.log" 2>&1 || { tail -n 50 "$build.log" >&2; say "build failed (log: $build.log)"; exit 1; }

cp "$build/programs/ssl/ssl_client2" "$client"
cp "$build/programs/ssl/ssl_server2" "$server"
# The build must have taken the macro: ssl_client2 lists it among its
# compile-time options (query_config) when it is defined.
if ! "$client" query_config=MBEDTLS_SSL_DTLS_CONNECTION_ID >/dev/null 2>&1; then
    say "ssl_client2 was built without MBEDTLS_SSL_DTLS_CONNECTION_ID"
    rm -f "$client" "$server"
    exit 1
fi
say "built $client and $server"
echo "$client"
