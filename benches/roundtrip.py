#!/usr/bin/env python3
"""Round-trip benchmarks against the wakatiwai client (tests/peers/waka.js).

  python3 benches/roundtrip.py [N]

1. launch: time from starting `nsh -c 'listen 0'` to its "listening" line
   (median of 20 runs).
2. floor: a bare Python UDP loop registers the client, then sends N
   pre-built `GET /3/0` datagrams one at a time and times each response.
3. nsh: `benches/roundtrip.rhai` does the same N reads from a Rhai loop.
2 and 3 alternate for ROUNDS rounds (default 5); the medians are compared.
"""
import os
import socket
import statistics
import struct
import subprocess
import sys
import time

from live_nsh import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NSH = os.path.join(ROOT, "target", "release", "nsh")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000


def start_waka(port, ep):
    return subprocess.Popen(["node", os.path.join(ROOT, "tests/peers/waka.js"), "127.0.0.1", str(port), ep],
                            cwd=os.path.join(ROOT, "tests/peers"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def launch():
    runs = []
    for _ in range(20):
        t = time.perf_counter()
        p = subprocess.Popen([NSH, "-c", "listen 0"], stdout=subprocess.PIPE)
        line = p.stdout.readline()
        runs.append(time.perf_counter() - t)
        p.wait()
        assert b"listening" in line, line
    return statistics.median(runs)


def floor():
    port = free_port()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    waka = start_waka(port, "bench-floor")
    try:
        s.settimeout(30)
        while True:
            data, peer = s.recvfrom(2048)
            if data[1] == 0x02:  # POST: the Register
                tkl = data[0] & 0x0F
                ack = bytes([0x60 | tkl, 0x41]) + data[2:4] + data[4:4 + tkl] + b"\x82rd\x011"
                s.sendto(ack, peer)
                break
        times = []
        for i in range(N):
            mid = i & 0xFFFF
            token = struct.pack(">I", i)
            dgram = bytes([0x44, 0x01]) + struct.pack(">H", mid) + token + b"\xb13\x010"
            t = time.perf_counter()
            s.sendto(dgram, peer)
            while True:
                data, _ = s.recvfrom(2048)
                if len(data) >= 8 and data[4:8] == token and (data[0] & 0x0F) == 4:
                    break
            times.append(time.perf_counter() - t)
        times.sort()
        return times[N // 2]
    finally:
        waka.terminate()
        waka.wait()


def nsh_reads():
    port = free_port()
    waka = start_waka(port, "bench-nsh")
    try:
        out = subprocess.run([NSH, "-l", str(port), os.path.join(ROOT, "benches/roundtrip.rhai"), str(N)],
                             capture_output=True, text=True, timeout=600)
        return out.stdout.strip().splitlines()[-1] if out.returncode == 0 else out.stderr
    finally:
        waka.terminate()
        waka.wait()


if __name__ == "__main__":
    rounds = int(os.environ.get("ROUNDS", "5"))
    print(f"launch to listening: median {launch() * 1000:.1f} ms")
    # Alternate the two so that drifts of the machine hit both alike.
    floors, nshs = [], []
    for r in range(rounds):
        floors.append(floor() * 1e6)
        line = nsh_reads()
        nshs.append(float(line.split("median ")[1].split(" us")[0]))
        print(f"round {r + 1}: floor {floors[-1]:.0f} us, nsh {nshs[-1]:.0f} us")
    f, n = statistics.median(floors), statistics.median(nshs)
    print(f"median of {rounds} rounds of {N} reads: floor {f:.0f} us, nsh read(\"/3/0\") {n:.0f} us, "
          f"overhead {100 * (n - f) / f:+.1f} %")
