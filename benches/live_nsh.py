"""What the bench scripts share: starting nsh listening on a free port, and
reading a field of a process's /proc/PID/status."""
import subprocess
import sys


def start(nsh, args):
    """Starts `nsh -l 0 ARGS…` with its output on a pipe; returns the
    process and the port from its listening line (exits without one)."""
    proc = subprocess.Popen(
        [nsh, "-l", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        if "listening on" in line:
            return proc, int(line.split(" port ")[1].split()[0])
    sys.exit("nsh printed no listening line")


def status(pid, field):
    """A numeric field of /proc/PID/status (VmRSS in kB, Threads), 0 if
    absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0
