#!/usr/bin/env bash
# Re-captures tests/fixtures/captured/ from the real peers: for each peer it
# starts capture.py on a free port, starts the peer against it, waits until
# every request was answered, stops the peer (SIGTERM: it de-registers) and
# keeps what capture.py wrote. Needs `bash tests/setup.sh` first.
#
#   bash tests/peers/recapture.sh [OUTDIR] [waka|coapnode|libcoap ...]
#
# OUTDIR defaults to tests/fixtures/captured. Every process started here is
# stopped on exit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/tests/fixtures/captured}"
shift || true
peers=("$@")
[ "${#peers[@]}" -gt 0 ] || peers=(waka coapnode libcoap)
mkdir -p "$out"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# The requests sent to each LwM2M client after it registered.
common_reqs=(
    'read-3-0-tlv:GET:/3/0:accept=11542'
    'read-3-0-noaccept:GET:/3/0'
    'read-3-0-0:GET:/3/0/0'
    'read-3-0-0-text:GET:/3/0/0:accept=0'
    'discover-3-0:GET:/3/0:accept=40'
    'discover-3:GET:/3:accept=40'
    'discover-3303-0-5700:GET:/3303/0/5700:accept=40'
    'read-3303-0-tlv:GET:/3303/0:accept=11542'
    'write-3303-0-5750:PUT:/3303/0/5750:cf=0,text=hello-nsh'
    'read-3303-0-5750-text:GET:/3303/0/5750:accept=0'
    'write-attributes-3303-0-5700:PUT:/3303/0/5700?pmin=1&pmax=30'
    'execute-3-0-4:POST:/3/0/4'
    'read-9999-0:GET:/9999/0'
)
for cf in 11542 1542 0 40 11543 110 112; do
    common_reqs+=("read-3-0-accept-$cf:GET:/3/0:accept=$cf")
    common_reqs+=("read-3-0-0-accept-$cf:GET:/3/0/0:accept=$cf")
done
common_reqs+=(
    'observe-3303-0-5700:GET:/3303/0/5700:observe=0,notify=2,cancel=get'
    'observe-3303-0:GET:/3303/0:observe=0,accept=11542,notify=2,cancel=rst'
)

run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    "$@"
}

wait_for() { # FILE PATTERN SECONDS
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

capture_client() { # PREFIX LABEL DRIVER...
    local prefix="$1" label="$2"
    shift 2
    local log="$work/$prefix.capture.log"
    local args=()
    for r in "${common_reqs[@]}"; do
        args+=(--req "$r")
    done
    rm -f "$out/$prefix"-*
    python3 "$here/capture.py" --out "$out" --prefix "$prefix" --label "$label" \
        --linger 10 --timeout 240 "${args[@]}" >"$log" 2>&1 &
    local cap=$!
    pids+=("$cap")
    wait_for "$log" LISTENING 10 || { cat "$log"; return 1; }
    local port
    port="$(awk '/^LISTENING/{print $3; exit}' "$log")"
    echo "== $prefix: capture.py on 127.0.0.1:$port"
    (cd "$here" && LIFETIME=20 exec "$@" 127.0.0.1 "$port" "nsh-$prefix") >"$work/$prefix.peer.log" 2>&1 &
    local peer=$!
    pids+=("$peer")
    if ! wait_for "$log" '^DONE' 200; then
        echo "== $prefix: no DONE"; cat "$log" "$work/$prefix.peer.log"; return 1
    fi
    kill -TERM "$peer"
    wait "$peer" || true
    wait "$cap" || true
    cat "$log"
    echo "-- $prefix peer stdout/stderr:"
    cat "$work/$prefix.peer.log"
}

capture_libcoap() {
    # libcoap's coap-client as a hand-crafted LwM2M 1.1 client, all from one
    # local port (-p) so the server sees one peer: a Register, then two Sends
    # (SenML CBOR 112 and SenML JSON 110) of 3303/0/5700 = 21.5, then a
    # De-register. -U keeps Uri-Host/Uri-Port out of the requests.
    local log="$work/libcoap.capture.log"
    rm -f "$out"/libcoap-*
    python3 "$here/capture.py" --out "$out" --prefix libcoap \
        --label "libcoap3-bin@$(dpkg-query -W -f='${Version}' libcoap3-bin) coap-client-notls" \
        --linger 10 --timeout 30 >"$log" 2>&1 &
    local cap=$!
    pids+=("$cap")
    wait_for "$log" LISTENING 10 || { cat "$log"; return 1; }
    local port cport
    port="$(awk '/^LISTENING/{print $3; exit}' "$log")"
    cport="$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    echo "== libcoap: capture.py on 127.0.0.1:$port, coap-client from port $cport"
    run coap-client-notls -U -p "$cport" -m post -t 40 -e '</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</3303/0>' \
        "coap://127.0.0.1:$port/rd?ep=nsh-libcoap&lt=300&lwm2m=1.1&b=U"
    wait_for "$log" '^DONE' 10
    # [{-2: "/3303/0/", 0: "5700", 2: 21.5}] as CBOR (bn, n, v), percent-encoded
    run coap-client-notls -U -p "$cport" -m post -t 112 -e '%81%A3%21h/3303/0/%00d5700%02%F9M%60' \
        "coap://127.0.0.1:$port/dp"
    run coap-client-notls -U -p "$cport" -m post -t 110 -e '[{"bn":"/3303/0/","n":"5700","v":21.5}]' \
        "coap://127.0.0.1:$port/dp"
    run coap-client-notls -U -p "$cport" -m delete "coap://127.0.0.1:$port/rd/1"
    wait "$cap" || true
    cat "$log"
}

for p in "${peers[@]}"; do
    case "$p" in
    waka) capture_client waka 'node-red-contrib-lwm2m@2.12.3 (wakatiwai client)' node waka.js ;;
    coapnode) capture_client coapnode 'coap-node@0.2.5 + smartobject@1.5.3' node coapnode.js ;;
    libcoap) capture_libcoap ;;
    *) echo "unknown peer $p" >&2; exit 2 ;;
    esac
done
