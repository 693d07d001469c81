#!/usr/bin/env python3
"""Fuzz cases per second: `fuzz("/3/0", #{count: N})` (every kind, each case
followed by the liveness read of /3/0) against a client on loopback.

  python3 benches/fuzz_rate.py [N] [ROUNDS] [PEER] [NSH]

PEER is `lockstep` (tests/peers/lockstep_client.py, Python, without its
planted defect) or `waka` (wakatiwai, Wakaama's C core in Node; needs
`bash tests/setup.sh`). Each round starts a fresh nsh and client, seed =
round number; prints each round's rate and the median.
Default binary: target/release/nsh.
"""
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
PEER = sys.argv[3] if len(sys.argv) > 3 else "lockstep"
NSH = sys.argv[4] if len(sys.argv) > 4 else os.path.join(ROOT, "target", "release", "nsh")
SCRIPT = os.path.join(ROOT, "benches", "fuzz_rate.rhai")
PEERS = os.path.join(ROOT, "tests", "peers")


def start_peer(port):
    if PEER == "waka":
        return subprocess.Popen(["node", "waka.js", "127.0.0.1", str(port), "fuzz-bench"],
                                cwd=PEERS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return subprocess.Popen([sys.executable, os.path.join(PEERS, "lockstep_client.py"),
                             "127.0.0.1", str(port), "fuzz-bench", "--defect", "none"],
                            stdout=subprocess.DEVNULL)


def run(seed):
    nsh = subprocess.Popen([NSH, "-l", "0", SCRIPT, str(N), str(seed)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = nsh.stdout.readline()
    port = int(first.rsplit(" port ", 1)[1].split()[0])
    peer = start_peer(port)
    try:
        out, err = nsh.communicate(timeout=900)
    finally:
        peer.terminate()
        peer.wait()
    line = [l for l in out.splitlines() if l.startswith("fuzz: ") and "cases/s" in l]
    if not line:
        sys.exit(f"nsh failed: {out}\n{err}")
    return float(line[0].split(": ")[-1].split(" cases/s")[0])


def main():
    rates = []
    for r in range(ROUNDS):
        rate = run(r + 1)
        rates.append(rate)
        print(f"round {r + 1}: {rate:.0f} cases/s", flush=True)
    print(f"{PEER}: median {statistics.median(rates):.0f} cases/s ({ROUNDS} rounds of {N} cases, nsh {NSH})")


if __name__ == "__main__":
    main()
