#!/usr/bin/env python3
"""Read round trip of nsh against libcoap's C coap-server (a fast peer, so
nsh's own overhead shows), for one or more nsh binaries, rounds alternating.

  python3 benches/libcoap_rtt.py [--floor] [N] [ROUNDS] [NSH ...]

Each round starts `coap-server-notls` on a free port and runs
`nsh benches/libcoap_rtt.rhai PORT N` (N `coap_get("/time")` in a Rhai loop)
with every binary in turn; prints per-round and overall medians and means.
Default binary: target/release/nsh.

--floor adds the compiled floor (`benches/udp_floor.rs`: the same GET from a
bare blocking-socket loop, built here with `cargo bench --no-run`) as the
first binary of every round, and prints each nsh binary's ratio to it:
per round, and over the run (ratio of the medians of round medians and of
round means, and the median of per-round ratios).
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGV = sys.argv[1:]
FLOOR = "--floor" in ARGV
ARGV = [a for a in ARGV if a != "--floor"]
N = int(ARGV[0]) if len(ARGV) > 0 else 2000
ROUNDS = int(ARGV[1]) if len(ARGV) > 1 else 5
BINS = ARGV[2:] or [os.path.join(ROOT, "target", "release", "nsh")]
SCRIPT = os.path.join(ROOT, "benches", "libcoap_rtt.rhai")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def floor_binary():
    """Builds benches/udp_floor.rs and returns the path of its executable."""
    out = subprocess.run(["cargo", "bench", "--bench", "udp_floor", "--no-run", "--message-format=json"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "udp_floor" \
                and msg.get("executable"):
            return msg["executable"]
    sys.exit("cargo bench --bench udp_floor --no-run built no executable")


def run(binary, port):
    cmd = [binary, str(port), str(N)] if binary == FLOOR_BIN else [binary, SCRIPT, str(port), str(N)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    line = [l for l in out.stdout.splitlines() if l.startswith("gets:")]
    if not line:
        sys.exit(f"{binary} failed: {out.stdout}\n{out.stderr}")
    f = line[0]
    med = float(f.split("median ")[1].split(" us")[0])
    mean = float(f.split("mean ")[1].split(" us")[0])
    return med, mean


FLOOR_BIN = floor_binary() if FLOOR else None


def main():
    bins = ([FLOOR_BIN] if FLOOR else []) + BINS
    results = {b: ([], []) for b in bins}
    ratios = {b: [] for b in BINS}
    for r in range(ROUNDS):
        port = free_port()
        server = subprocess.Popen(["coap-server-notls", "-A", "127.0.0.1", "-p", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        try:
            # Alternate the order each round, so neither side always runs
            # first against a fresh server.
            for b in (bins if r % 2 == 0 else bins[::-1]):
                med, mean = run(b, port)
                results[b][0].append(med)
                results[b][1].append(mean)
                print(f"round {r + 1}: {b}: median {med:.1f} us, mean {mean:.1f} us", flush=True)
            if FLOOR:
                for b in BINS:
                    ratios[b].append(results[b][0][-1] / results[FLOOR_BIN][0][-1])
        finally:
            server.terminate()
            server.wait()
    for b, (meds, means) in results.items():
        print(f"{b}: median of round medians {statistics.median(meds):.1f} us, "
              f"median of round means {statistics.median(means):.1f} us ({ROUNDS} rounds of {N} GETs)")
    if FLOOR:
        fmed, fmean = (statistics.median(v) for v in results[FLOOR_BIN])
        for b in BINS:
            med, mean = (statistics.median(v) for v in results[b])
            print(f"{b} / floor: median {med / fmed:.3f}, mean {mean / fmean:.3f}, "
                  f"median of per-round median ratios {statistics.median(ratios[b]):.3f}")


if __name__ == "__main__":
    main()
