#!/usr/bin/env python3
"""A tiny LwM2M server over UDP that records real clients' datagrams.

It answers Register (POST /rd) with ACK 2.01 and Location-Path rd/<n>,
Update with 2.04, De-register with 2.02, Send (POST /dp) with 2.04, acknowledges
any other CON with an empty ACK, sends a configured list of requests to the
registered client one after another, and writes what was exchanged as hex:

  * OUT/<prefix>-transcript.txt : every datagram, both directions, in order
  * OUT/<prefix>-<name>.hex       : one datagram per file, e.g.
        register, update, deregister, send, <request>, <request>-extra<k>,
        <request>-notify<k>, <request>-cancel

Each .hex file is two lines: '# captured from LABEL, request: ...' (or
'# sent by tests/peers/capture.py to LABEL, request: ...' for the
<request>-request.hex files, the requests this tool sent) and the datagram's
bytes as lowercase hex.

Standard library only. Example:

  python3 tests/peers/capture.py --port 0 --out tests/fixtures/captured \\
      --prefix waka --label 'node-red-contrib-lwm2m@2.12.3 (wakatiwai)' \\
      --req 'read-3-0:GET:/3/0:accept=11542' \\
      --req 'observe-3303-0-5700:GET:/3303/0/5700:observe=0,notify=2'

prints 'LISTENING <host> <port>' once bound, 'DONE' when every request has
been answered (or timed out), and exits after the client de-registers, after
--linger seconds past DONE, or after --timeout seconds in all.

Request syntax NAME:METHOD:PATH[:k=v,k=v...]
  METHOD   GET POST PUT DELETE FETCH IPATCH or a code like 0.01
  PATH     /3/0/0 ; may carry a query: /3/0?pmin=1
  keys     accept=N, cf=N (Content-Format), observe=0|1, payload=HEX,
           text=STRING (payload as UTF-8), notify=N (Observe: wait for N
           notifications, then cancel), cancel=get|rst|none (default get),
           wait=SECONDS (response timeout, default 5), non=1 (send NON)
"""

import argparse
import os
import select
import socket
import struct
import sys
import time

TYPES = ["CON", "NON", "ACK", "RST"]
METHODS = {"GET": 1, "POST": 2, "PUT": 3, "DELETE": 4, "FETCH": 5, "PATCH": 6, "IPATCH": 7}
OPT_NAMES = {
    1: "If-Match", 3: "Uri-Host", 4: "ETag", 5: "If-None-Match", 6: "Observe",
    7: "Uri-Port", 8: "Location-Path", 11: "Uri-Path", 12: "Content-Format",
    14: "Max-Age", 15: "Uri-Query", 17: "Accept", 20: "Location-Query",
    23: "Block2", 27: "Block1", 28: "Size2", 35: "Proxy-Uri", 39: "Proxy-Scheme",
    60: "Size1",
}
UINT_OPTS = {6, 7, 12, 14, 17, 23, 27, 28, 60}
STR_OPTS = {3, 8, 11, 15, 20, 35, 39}


def code_str(code):
    return "%d.%02d" % (code >> 5, code & 0x1F)


def parse_code(s):
    s = s.upper()
    if s in METHODS:
        return METHODS[s]
    c, d = s.split(".")
    return (int(c) << 5) | int(d)


def enc_uint(v):
    if v == 0:
        return b""
    n = (v.bit_length() + 7) // 8
    return v.to_bytes(n, "big")


def dec_uint(b):
    return int.from_bytes(b, "big") if b else 0


def encode(mtype, code, mid, token=b"", options=(), payload=b""):
    out = bytearray([0x40 | (mtype << 4) | len(token), code])
    out += struct.pack("!H", mid)
    out += token
    last = 0
    for num, val in sorted(options, key=lambda o: o[0]):  # stable: keeps repeats in order
        delta = num - last
        last = num
        hdr = bytearray([0])
        ext = bytearray()
        for shift, x in ((4, delta), (0, len(val))):
            if x < 13:
                nib = x
            elif x < 269:
                nib = 13
                ext.append(x - 13)
            else:
                nib = 14
                ext += struct.pack("!H", x - 269)
            hdr[0] |= nib << shift
        out += hdr + ext + val
    if payload:
        out += b"\xff" + payload
    return bytes(out)


def decode(data):
    """Returns a dict or raises ValueError."""
    if len(data) < 4:
        raise ValueError("short datagram")
    ver = data[0] >> 6
    if ver != 1:
        raise ValueError("version %d" % ver)
    mtype = (data[0] >> 4) & 3
    tkl = data[0] & 0xF
    if tkl > 8:
        raise ValueError("token length %d" % tkl)
    code = data[1]
    mid = struct.unpack("!H", data[2:4])[0]
    token = data[4:4 + tkl]
    i = 4 + tkl
    opts = []
    num = 0
    payload = b""
    while i < len(data):
        b = data[i]
        if b == 0xFF:
            payload = data[i + 1:]
            break
        i += 1
        vals = []
        for nib in (b >> 4, b & 0xF):
            if nib < 13:
                vals.append(nib)
            elif nib == 13:
                vals.append(data[i] + 13)
                i += 1
            elif nib == 14:
                vals.append(struct.unpack("!H", data[i:i + 2])[0] + 269)
                i += 2
            else:
                raise ValueError("reserved option nibble")
        num += vals[0]
        val = data[i:i + vals[1]]
        if len(val) != vals[1]:
            raise ValueError("truncated option")
        i += vals[1]
        opts.append((num, val))
    return {"type": mtype, "code": code, "mid": mid, "token": token, "options": opts, "payload": payload}


def opt_all(msg, num):
    return [v for n, v in msg["options"] if n == num]


def opt_uint(msg, num):
    v = opt_all(msg, num)
    return dec_uint(v[0]) if v else None


def uri_path(msg):
    return "/" + "/".join(v.decode("utf-8", "replace") for v in opt_all(msg, 11))


def summary(msg):
    parts = ["%s %s mid=%d tok=%s" % (TYPES[msg["type"]], code_str(msg["code"]), msg["mid"], msg["token"].hex() or "-")]
    for n, v in msg["options"]:
        name = OPT_NAMES.get(n, "opt%d" % n)
        if n in UINT_OPTS:
            parts.append("%s=%d" % (name, dec_uint(v)))
        elif n in STR_OPTS:
            parts.append("%s=%s" % (name, v.decode("utf-8", "replace")))
        else:
            parts.append("%s=0x%s" % (name, v.hex()))
    if msg["payload"]:
        parts.append("payload=%dB" % len(msg["payload"]))
    return " ".join(parts)


def parse_req(spec):
    fields = spec.split(":", 3)
    if len(fields) < 3:
        raise SystemExit("bad --req %r: NAME:METHOD:PATH[:k=v,...]" % spec)
    name, method, path = fields[:3]
    kv = {}
    if len(fields) == 4 and fields[3]:
        for item in fields[3].split(","):
            k, _, v = item.partition("=")
            kv[k] = v
    return {"name": name, "code": parse_code(method), "method": method, "path": path, "kv": kv}


class Capture:
    def __init__(self, args):
        self.args = args
        fam = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.bind((args.host, args.port))
        self.port = self.sock.getsockname()[1]
        os.makedirs(args.out, exist_ok=True)
        self.transcript = open(os.path.join(args.out, "%s-transcript.txt" % args.prefix), "w")
        self.transcript.write("# captured from %s; every datagram in order, t in seconds\n" % args.label)
        self.t0 = time.monotonic()
        self.client = None
        self.registrations = 0
        self.mid = 0x1000
        self.deregistered = False
        self.written = set()

    # -- I/O ----------------------------------------------------------------
    def log(self, direction, addr, data, note=""):
        t = time.monotonic() - self.t0
        try:
            s = summary(decode(data))
        except ValueError as e:
            s = "undecodable (%s)" % e
        line = "%7.3f %s %s:%d %s%s" % (t, direction, addr[0], addr[1], s, ("  [" + note + "]") if note else "")
        print(line, flush=True)
        self.transcript.write(line + "\n" + data.hex() + "\n")
        self.transcript.flush()

    def send(self, data, addr, note=""):
        self.sock.sendto(data, addr)
        self.log("->", addr, data, note)

    def save(self, name, data, request, sent=False):
        fname = "%s-%s.hex" % (self.args.prefix, name)
        k = 2
        while fname in self.written:  # e.g. a second Update
            fname = "%s-%s-%d.hex" % (self.args.prefix, name, k)
            k += 1
        self.written.add(fname)
        with open(os.path.join(self.args.out, fname), "w") as f:
            who = ("sent by tests/peers/capture.py to %s" if sent else "captured from %s") % self.args.label
            f.write("# %s, request: %s\n%s\n" % (who, request, data.hex()))

    def recv(self, timeout):
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not r:
            return None
        data, addr = self.sock.recvfrom(65535)
        return data, addr

    # -- server side of client-initiated messages ---------------------------
    def handle_incoming(self, data, addr):
        """Answers what a server answers. Returns the decoded message or None."""
        try:
            msg = decode(data)
        except ValueError:
            self.log("<-", addr, data, "undecodable")
            return None
        code, mtype = msg["code"], msg["type"]
        path = uri_path(msg)
        ack_type = 2 if mtype == 0 else 1
        if code == 2 and path == "/rd" and mtype in (0, 1):
            self.registrations += 1
            self.client = addr
            q = "&".join(v.decode("utf-8", "replace") for v in opt_all(msg, 15))
            self.log("<-", addr, data, "Register " + q)
            self.save("register" if self.registrations == 1 else "register%d" % self.registrations, data,
                      "Register from the client (POST /rd?%s), answered 2.01" % q)
            loc = "rd/%d" % self.registrations
            opts = [(8, b"rd"), (8, str(self.registrations).encode())]
            self.send(encode(ack_type, 0x41, msg["mid"] if mtype == 0 else self.next_mid(), msg["token"], opts), addr,
                      "Created " + loc)
            msg["handled"] = True
            return msg
        if code == 2 and path.startswith("/rd/") and mtype in (0, 1):
            self.log("<-", addr, data, "Update")
            self.save("update", data, "Update from the client (POST %s), answered 2.04" % path)
            self.send(encode(ack_type, 0x44, msg["mid"] if mtype == 0 else self.next_mid(), msg["token"]), addr, "Changed")
            msg["handled"] = True
            return msg
        if code == 4 and path.startswith("/rd/") and mtype in (0, 1):
            self.log("<-", addr, data, "De-register")
            self.save("deregister", data, "De-register from the client (DELETE %s), answered 2.02" % path)
            self.send(encode(ack_type, 0x42, msg["mid"] if mtype == 0 else self.next_mid(), msg["token"]), addr, "Deleted")
            self.deregistered = True
            msg["handled"] = True
            return msg
        if code in (2, 7) and path == "/dp" and mtype in (0, 1):
            cf = opt_uint(msg, 12)
            self.log("<-", addr, data, "Send")
            self.save("send" if cf is None else "send-cf%d" % cf, data,
                      "Send from the client (%s /dp, Content-Format %s), answered 2.04" % (code_str(code), cf))
            self.send(encode(ack_type, 0x44, msg["mid"] if mtype == 0 else self.next_mid(), msg["token"]), addr, "Changed")
            msg["handled"] = True
            return msg
        return msg

    def next_mid(self):
        self.mid = (self.mid + 1) & 0xFFFF
        return self.mid

    # -- requests -----------------------------------------------------------
    def do_request(self, idx, req):
        kv = req["kv"]
        path, _, query = req["path"].partition("?")
        opts = []
        if "observe" in kv:
            opts.append((6, enc_uint(int(kv["observe"]))))
        for seg in [s for s in path.split("/") if s]:
            opts.append((11, seg.encode()))
        if "cf" in kv:
            opts.append((12, enc_uint(int(kv["cf"]))))
        if query:
            for q in query.split("&"):
                opts.append((15, q.encode()))
        if "accept" in kv:
            opts.append((17, enc_uint(int(kv["accept"]))))
        payload = b""
        if "payload" in kv:
            payload = bytes.fromhex(kv["payload"])
        elif "text" in kv:
            payload = kv["text"].encode()
        token = bytes([0x4E, 0x53, 0x00, idx & 0xFF])  # "NS" 00 idx: fixed, so fixtures are reproducible
        mtype = 1 if kv.get("non") == "1" else 0
        mid = self.next_mid()
        data = encode(mtype, req["code"], mid, token, opts, payload)
        desc = "%s %s" % (req["method"], req["path"])
        for key, label in (("accept", "Accept"), ("cf", "Content-Format"), ("observe", "Observe")):
            if key in kv:
                desc += " %s %s" % (label, kv[key])
        if payload:
            desc += " payload %s" % payload.hex()
        desc += " (%s, mid %d, token %s)" % (TYPES[mtype], mid, token.hex())
        self.save("%s-request" % req["name"], data, desc, sent=True)
        self.send(data, self.client, "request " + req["name"])

        wait = float(kv.get("wait", "5"))
        notify_n = int(kv.get("notify", "0"))
        deadline = time.monotonic() + wait
        got = None
        extras = 0
        notes = 0
        settle_until = None
        while True:
            now = time.monotonic()
            if got is not None and notes >= notify_n and settle_until is None:
                settle_until = now + self.args.settle
            end = settle_until if settle_until is not None else deadline
            if now >= end:
                break
            r = self.recv(end - now)
            if r is None:
                continue
            rdata, raddr = r
            msg = self.handle_incoming(rdata, raddr)
            if msg is None:
                continue
            if msg.get("handled"):
                continue
            is_resp = msg["code"] >= 0x40 or (msg["code"] == 0 and msg["type"] in (2, 3))
            if not is_resp:
                self.log("<-", raddr, rdata, "unexpected request")
                continue
            same_tok = msg["token"] == token
            same_mid = msg["type"] in (2, 3) and msg["mid"] == mid
            if msg["code"] == 0 and same_mid and msg["type"] == 2:
                self.log("<-", raddr, rdata, "empty ACK (separate response follows)")
                self.save("%s-empty-ack" % req["name"], rdata, desc)
                deadline = time.monotonic() + wait
                continue
            if same_tok and got is None:
                got = msg
                self.log("<-", raddr, rdata, "response to " + req["name"])
                self.save(req["name"], rdata, desc)
                if notify_n:
                    deadline = time.monotonic() + max(wait, 5.0 * notify_n + 5)
            elif same_tok and notify_n and notes < notify_n and opt_all(msg, 6):
                notes += 1
                self.log("<-", raddr, rdata, "notification %d" % notes)
                self.save("%s-notify%d" % (req["name"], notes), rdata, desc + ", notification %d" % notes)
            else:
                extras += 1
                why = "same msg id, other token" if same_mid else "unmatched"
                self.log("<-", raddr, rdata, "extra after %s (%s)" % (req["name"], why))
                self.save("%s-extra%d" % (req["name"], extras), rdata, desc + ", extra datagram (%s)" % why)
            if msg["type"] == 0:  # CON response or notification: acknowledge
                self.send(encode(2, 0, msg["mid"]), raddr, "ACK")
        if got is None:
            print("TIMEOUT %s" % req["name"], flush=True)
            return
        if notify_n and "observe" in kv:
            cancel = kv.get("cancel", "get")
            if cancel == "get":
                opts2 = [(6, enc_uint(1))] + [o for o in opts if o[0] != 6]
                mid2 = self.next_mid()
                data2 = encode(0, req["code"], mid2, token, opts2)
                self.send(data2, self.client, "cancel observation " + req["name"])
                end = time.monotonic() + wait
                while time.monotonic() < end:
                    r = self.recv(end - time.monotonic())
                    if r is None:
                        continue
                    msg = self.handle_incoming(*r)
                    if msg and msg["token"] == token and msg["type"] == 2 and msg["mid"] == mid2:
                        self.log("<-", r[1], r[0], "response to cancel")
                        self.save("%s-cancel" % req["name"], r[0],
                                  "GET %s Observe 1 (cancel, same token %s)" % (req["path"], token.hex()))
                        break
                    self.other(msg, r[0], r[1], "late notification or stray")
            elif cancel == "rst":
                end = time.monotonic() + wait
                while time.monotonic() < end:
                    r = self.recv(end - time.monotonic())
                    if r is None:
                        continue
                    msg = self.handle_incoming(*r)
                    if msg and msg["token"] == token and msg["code"] >= 0x40:
                        self.log("<-", r[1], r[0], "notification answered with RST")
                        self.send(encode(3, 0, msg["mid"]), r[1], "RST cancels observation")
                        break
                    self.other(msg, r[0], r[1], "stray")
            self.drain(self.args.settle)

    def other(self, msg, data, addr, note):
        """Logs a message nobody waits for; ACKs a CON response (a notification)."""
        if msg is None or msg.get("handled"):
            return
        self.log("<-", addr, data, note)
        if msg["type"] == 0 and msg["code"] >= 0x40:
            self.send(encode(2, 0, msg["mid"]), addr, "ACK")

    def drain(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r = self.recv(end - time.monotonic())
            if r is None:
                continue
            self.other(self.handle_incoming(*r), r[0], r[1], "stray")

    def run(self):
        a = self.args
        print("LISTENING %s %d" % (a.host, self.port), flush=True)
        t_end = time.monotonic() + a.timeout
        while self.client is None and time.monotonic() < t_end:
            r = self.recv(t_end - time.monotonic())
            if r is not None:
                self.handle_incoming(*r)
        if self.client is None:
            print("TIMEOUT register", flush=True)
            return 2
        self.drain(a.delay)
        for i, spec in enumerate(a.req):
            self.do_request(i + 1, parse_req(spec))
        print("DONE", flush=True)
        linger_end = min(t_end, time.monotonic() + a.linger)
        while not self.deregistered and time.monotonic() < linger_end:
            r = self.recv(linger_end - time.monotonic())
            if r is None:
                continue
            self.other(self.handle_incoming(*r), r[0], r[1], "stray")
        if self.deregistered:
            self.drain(a.settle)
            print("DEREGISTERED", flush=True)
        return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    p.add_argument("--out", required=True, help="folder for the .hex files and the transcript")
    p.add_argument("--prefix", required=True, help="file name prefix, e.g. the peer's short name")
    p.add_argument("--label", required=True, help="'package@version' for the header lines")
    p.add_argument("--req", action="append", default=[], help="request to send after Register (repeatable)")
    p.add_argument("--delay", type=float, default=0.5, help="seconds between Register and the first request")
    p.add_argument("--settle", type=float, default=0.5, help="seconds to keep listening after each response")
    p.add_argument("--linger", type=float, default=10, help="seconds to wait for De-register after DONE")
    p.add_argument("--timeout", type=float, default=120, help="overall limit in seconds")
    a = p.parse_args()
    cap = Capture(a)
    try:
        return cap.run()
    finally:
        cap.transcript.close()
        cap.sock.close()


if __name__ == "__main__":
    sys.exit(main())
