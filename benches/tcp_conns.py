#!/usr/bin/env python3
"""Many idle TCP connections to `nsh --tcp`: N clients connect as fast as
one Python thread can, and stay idle.

Prints connections accepted per second (from the first connect to nsh's
N-th "TCP connection from" line), nsh's VmRSS before and after (so RSS per
idle connection, the kernel's socket buffers not included), its thread
count with the N connections open, and how long nsh takes to report them
all closed.

Usage: python3 benches/tcp_conns.py [N] [NSH]
(N = 2000, NSH = target/release/nsh)
"""

import resource
import socket
import sys
import threading
import time

from live_nsh import start, status

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
NSH = sys.argv[2] if len(sys.argv) > 2 else "target/release/nsh"

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < N + 1024:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, N + 1024), hard))


proc, port = start(NSH, ["--tcp", "-c", "sleep(3600)"])

opened = 0
closed = 0
all_open = threading.Event()
all_closed = threading.Event()
stamps = {}


def reader():
    global opened, closed
    for line in proc.stdout:
        if line.startswith("TCP connection from"):
            opened += 1
            if opened == N:
                stamps["open"] = time.monotonic()
                all_open.set()
        elif line.startswith("TCP connection with") and " closed: " in line:
            closed += 1
            if closed == N:
                stamps["closed"] = time.monotonic()
                all_closed.set()


threading.Thread(target=reader, daemon=True).start()
time.sleep(0.5)
rss0 = status(proc.pid, "VmRSS")
socks = []
t0 = time.monotonic()
for _ in range(N):
    s = socket.create_connection(("127.0.0.1", port))
    socks.append(s)
t_connected = time.monotonic()
if not all_open.wait(120):
    proc.kill()
    sys.exit(f"only {opened} of {N} connections reported by nsh")
time.sleep(1.0)
rss1 = status(proc.pid, "VmRSS")
threads = status(proc.pid, "Threads")
print(f"{N} connections: connect loop {N / (t_connected - t0):.0f}/s,"
      f" accepted {N / (stamps['open'] - t0):.0f}/s (first connect to last accept line)")
print(f"nsh VmRSS {rss0} kB -> {rss1} kB: {(rss1 - rss0) * 1024 / N:.0f} B per idle connection")
print(f"nsh threads with {N} connections open: {threads}")
t1 = time.monotonic()
for s in socks:
    s.close()
if all_closed.wait(120):
    print(f"all {N} reported closed in {(stamps['closed'] - t1) * 1000:.0f} ms")
else:
    print(f"only {closed} of {N} reported closed")
proc.kill()
proc.wait()
