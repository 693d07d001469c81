#!/usr/bin/env python3
"""Read round trip of nsh against libcoap's C coap-server (a fast peer, so
nsh's own overhead shows), for one or more nsh binaries, rounds alternating.

  python3 benches/libcoap_rtt.py [--capture] [N] [ROUNDS] [NSH ...]

Each round starts `coap-server-notls` on a free port and runs
`nsh benches/libcoap_rtt.rhai PORT N` (N `coap_get("/time")` in a Rhai loop)
with every binary in turn; prints per-round and overall medians and means.
With --capture each binary also runs with `capture(FILE)` on (a pcapng file
in a temporary directory), the two runs alternating, first one then the
other, so the cost of the capture shows as the difference.
Default binary: target/release/nsh.
"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CAPTURE = "--capture" in sys.argv[1:]
if CAPTURE:
    sys.argv.remove("--capture")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
BINS = sys.argv[3:] or [os.path.join(ROOT, "target", "release", "nsh")]
SCRIPT = os.path.join(ROOT, "benches", "libcoap_rtt.rhai")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run(binary, port, capture=None):
    args = [binary, SCRIPT, str(port), str(N)] + ([capture] if capture else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    line = [l for l in out.stdout.splitlines() if l.startswith("gets:")]
    if not line:
        sys.exit(f"{binary} failed: {out.stdout}\n{out.stderr}")
    f = line[0]
    med = float(f.split("median ")[1].split(" us")[0])
    mean = float(f.split("mean ")[1].split(" us")[0])
    return med, mean


def main():
    variants = [(b, None) for b in BINS]
    if CAPTURE:
        variants = [(b, c) for b in BINS for c in (None, "capture")]
    results = {v: ([], []) for v in variants}
    tmp = tempfile.mkdtemp(prefix="nsh-rtt-")
    for r in range(ROUNDS):
        port = free_port()
        server = subprocess.Popen(["coap-server-notls", "-A", "127.0.0.1", "-p", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        try:
            order = variants if r % 2 == 0 else list(reversed(variants))
            for v in order:
                b, c = v
                capture = os.path.join(tmp, f"round{r}.pcapng") if c else None
                med, mean = run(b, port, capture)
                results[v][0].append(med)
                results[v][1].append(mean)
                if capture:
                    os.remove(capture)
                label = f"{b}{' with capture' if c else ''}"
                print(f"round {r + 1}: {label}: median {med:.1f} us, mean {mean:.1f} us", flush=True)
        finally:
            server.terminate()
            server.wait()
    os.rmdir(tmp)
    for (b, c), (meds, means) in results.items():
        b = f"{b}{' with capture' if c else ''}"
        print(f"{b}: median of round medians {statistics.median(meds):.1f} us, "
              f"median of round means {statistics.median(means):.1f} us ({ROUNDS} rounds of {N} GETs)")


if __name__ == "__main__":
    main()
