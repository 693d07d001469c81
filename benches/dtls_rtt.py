#!/usr/bin/env python3
"""Read round trip of nsh over DTLS versus plain UDP, against the same fast
peer: libcoap's C `coap-server-openssl`, which serves plain CoAP on -p PORT
and CoAP over DTLS (PSK key `password`, any identity) on PORT+1 at once.

  cargo build --release
  python3 benches/dtls_rtt.py [N] [ROUNDS] [NSH]

Each round starts one `coap-server-openssl -A 127.0.0.1 -p PORT -k password`
and runs `nsh benches/dtls_rtt.rhai PORT N udp` and
`nsh benches/dtls_rtt.rhai PORT+1 N dtls` (N `coap_get("/time")` in a Rhai
loop after one untimed GET that completes the handshake), in alternating
order so that drift cancels. Prints each round's medians and their ratio,
then the median over rounds. Default binary: target/release/nsh.
Needs libcoap's command-line tools (`bash tests/setup.sh` installs them).
"""
import os
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 6
NSH = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "target", "release", "nsh")
SCRIPT = os.path.join(ROOT, "benches", "dtls_rtt.rhai")


def free_port_pair():
    """A port P with P and P+1 both free on 127.0.0.1 (UDP)."""
    while True:
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        p = a.getsockname()[1]
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            b.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
        finally:
            a.close()
            b.close()


def run(port, mode):
    out = subprocess.run([NSH, SCRIPT, str(port), str(N), mode],
                         capture_output=True, text=True, timeout=600)
    line = [l for l in out.stdout.splitlines() if l.startswith(mode + " gets:")]
    if not line:
        sys.exit(f"{NSH} ({mode}) failed: {out.stdout}\n{out.stderr}")
    f = line[0]
    med = float(f.split("median ")[1].split(" us")[0])
    mean = float(f.split("mean ")[1].split(" us")[0])
    return med, mean


def main():
    res = {"udp": ([], []), "dtls": ([], [])}
    ratios = []
    for r in range(ROUNDS):
        port = free_port_pair()
        server = subprocess.Popen(["coap-server-openssl", "-A", "127.0.0.1", "-p", str(port),
                                   "-k", "password", "-h", "user"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        try:
            order = ["udp", "dtls"] if r % 2 == 0 else ["dtls", "udp"]
            got = {}
            for mode in order:
                got[mode] = run(port if mode == "udp" else port + 1, mode)
                res[mode][0].append(got[mode][0])
                res[mode][1].append(got[mode][1])
            ratio = got["dtls"][0] / got["udp"][0]
            ratios.append(ratio)
            print(f"round {r + 1}: udp median {got['udp'][0]:.1f} us (mean {got['udp'][1]:.1f}), "
                  f"dtls median {got['dtls'][0]:.1f} us (mean {got['dtls'][1]:.1f}), "
                  f"ratio {ratio:.3f}", flush=True)
        finally:
            server.terminate()
            server.wait()
    mu, md = statistics.median(res["udp"][0]), statistics.median(res["dtls"][0])
    print(f"udp: median of round medians {mu:.1f} us, median of round means "
          f"{statistics.median(res['udp'][1]):.1f} us")
    print(f"dtls: median of round medians {md:.1f} us, median of round means "
          f"{statistics.median(res['dtls'][1]):.1f} us")
    print(f"dtls/udp: {md / mu:.3f} (median of per-round ratios {statistics.median(ratios):.3f}; "
          f"{ROUNDS} rounds of {N} GETs each way)")


if __name__ == "__main__":
    main()
