#!/usr/bin/env bash
# Installs what nsh's tests need on this machine: Debian packages for the
# real peers (libcoap's coap-client, a C toolchain and a `python` command for
# the wakatiwai client's node-gyp build), the Rust components CI uses, and the
# npm peers in tests/peers. Idempotent and non-interactive; quick when
# everything is already in place. Run as root (or with sudo available).
#
#   bash tests/setup.sh
#
# Environment:
#   NSH_SETUP_SKIP_APT=1   do not try to install Debian packages
#   NSH_SETUP_SKIP_NPM=1   do not install the npm peers
#   NSH_SETUP_SKIP_PIP=1   do not install the Python packages
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peers="$root/tests/peers"

say() { printf 'setup: %s\n' "$*"; }

# ---------------------------------------------------------------- Debian ----
# Packages and why:
#   libcoap3-bin        coap-client-notls/openssl/gnutls, coap-server-*: crafted
#                       requests, DTLS handshakes, block-wise peers
#   python-is-python3   a plain `python` for wakatiwai's gyp files
#   gcc g++ make        node-gyp build of the wakatiwai client (C + C++ addon)
#   tmux                drives the interactive shell in terminal tests
#   openssl             `openssl s_client -dtls1_2`: a bare DTLS PSK handshake
#                       and certificates; DER copies of the test certificates
#   tshark              reads back the pcapng files `--pcap`/`capture` write
#   cmake make          build mbed TLS's ssl_client2 (Connection ID) from the
#                       sources the mbedtls-sys-auto crate ships
#   chromium            renders `nsh test --report` pages headless (screenshot,
#                       DOM) in tests
# installed with what building nsh itself needs (cmake clang libclang-dev,
# for the mbedtls crate) by scripts/install-build-deps.sh.
bash "$root/scripts/install-build-deps.sh" \
    libcoap3-bin python-is-python3 gcc g++ make tmux openssl tshark cmake \
    chromium

# ------------------------------------------------------------------ Rust ----
if command -v cargo >/dev/null 2>&1; then
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1; then
            say "adding rustup components rustfmt and clippy"
            rustup component add rustfmt clippy
        else
            say "WARNING: cargo fmt/clippy missing and no rustup to add them"
        fi
    else
        say "cargo fmt and cargo clippy present"
    fi
else
    say "WARNING: cargo not found"
fi

# ------------------------------------------------------------------- npm ----
# node_modules is reinstalled when missing, when package-lock.json or the node
# version changed since the last install, or when the wakatiwai binary is gone.
if [ "${NSH_SETUP_SKIP_NPM:-}" = 1 ]; then
    say "NSH_SETUP_SKIP_NPM=1: not installing npm peers"
elif ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    say "WARNING: node/npm not found; the npm peers (wakatiwai, coap-node) are not installed"
else
    stamp="$peers/node_modules/.nsh-setup-stamp"
    want="$(cat "$peers/package-lock.json" | sha256sum | cut -d' ' -f1) node-$(node --version)"
    have=""
    if [ -f "$stamp" ]; then
        have="$(cat "$stamp")"
    fi
    waka_bin="$(ls "$peers"/node_modules/node-red-contrib-lwm2m/dist/binding/*/node_lwm2m.node 2>/dev/null | head -n1 || true)"
    if [ "$have" = "$want" ] && [ -n "$waka_bin" ] && [ -d "$peers/node_modules/coap-node" ]; then
        say "npm peers up to date in tests/peers/node_modules"
    else
        say "installing npm peers in tests/peers (npm ci)"
        start=$(date +%s)
        # The wakatiwai package tries a prebuilt-binary download first (not
        # reachable here) and then builds from source with node-gyp; go
        # straight to the build. Its .python-version names a Python 2 that
        # pyenv shims would insist on: use the system python instead.
        (
            cd "$peers"
            export npm_config_build_from_source=true
            export PYENV_VERSION=system
            export PATH="/usr/local/bin:/usr/bin:/bin:$PATH"
            npm ci --no-audit --no-fund --omit=peer --loglevel=error
        )
        echo "$want" >"$stamp"
        say "npm ci took $(($(date +%s) - start)) s"
    fi
fi

# ---------------------------------------------------------------- Python ----
# junitparser reads back the JUnit XML of `nsh test --junit` in tests.
if [ "${NSH_SETUP_SKIP_PIP:-}" = 1 ]; then
    say "NSH_SETUP_SKIP_PIP=1: not installing Python packages"
elif python3 -c 'import junitparser, sys; sys.exit(junitparser.version != "5.0.3")' 2>/dev/null; then
    say "junitparser 5.0.3 present"
else
    say "installing junitparser 5.0.3 (pip)"
    python3 -m pip install --quiet --disable-pip-version-check junitparser==5.0.3
fi

say "done"
