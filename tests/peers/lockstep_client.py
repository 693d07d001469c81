#!/usr/bin/env python3
"""A lock-step LwM2M client with a planted defect, for testing `fuzz`.

usage: python3 lockstep_client.py HOST PORT EP [--defect crash|reboot|none]

It registers (POST /rd?ep=EP&lt=300&b=U, CoRE link payload), prints
REGISTERED, then answers one datagram at a time, in order: a GET of
/3/0 (or below) gets 2.05 with a small TLV, anything else that decodes as a
request gets 4.04, 4.00 or 2.04, undecodable datagrams get nothing.

The planted defect: a request whose Content-Format is TLV (11542) and whose
first TLV declares a value longer than the payload holds. With
`--defect crash` (the default) the client then exits with status 3, as a
firmware that read past its buffer would; with `--defect reboot` it
registers again (as a device that reset); with `none` it answers 4.00.
Everything else it survives, whatever the bytes.
"""

import argparse
import socket
import sys

CON, NON, ACK, RST = 0, 1, 2, 3
URI_PATH, CONTENT_FORMAT, URI_QUERY = 11, 12, 15
TLV = 11542

# /3/0: Manufacturer (0) "nsh-lockstep", Model Number (1) "L1".
DEVICE_TLV = bytes([0xC8, 0x00, 12]) + b"nsh-lockstep" + bytes([0xC2, 0x01]) + b"L1"


class Malformed(Exception):
    pass


def decode(data):
    """(type, code, mid, token, [(number, value)], payload) or Malformed."""
    if len(data) < 4 or data[0] >> 6 != 1:
        raise Malformed("header")
    mtype = (data[0] >> 4) & 3
    tkl = data[0] & 0x0F
    if tkl > 8:
        raise Malformed("token length")
    code = data[1]
    mid = (data[2] << 8) | data[3]
    i = 4 + tkl
    if i > len(data):
        raise Malformed("token past the end")
    token = data[4:i]
    options, number = [], 0
    while i < len(data) and data[i] != 0xFF:
        delta, length = data[i] >> 4, data[i] & 0x0F
        i += 1
        vals = []
        for nib in (delta, length):
            if nib == 13:
                if i >= len(data):
                    raise Malformed("option extension")
                vals.append(data[i] + 13)
                i += 1
            elif nib == 14:
                if i + 1 >= len(data):
                    raise Malformed("option extension")
                vals.append(((data[i] << 8) | data[i + 1]) + 269)
                i += 2
            elif nib == 15:
                raise Malformed("reserved nibble")
            else:
                vals.append(nib)
        number += vals[0]
        if i + vals[1] > len(data):
            raise Malformed("option value past the end")
        options.append((number, data[i : i + vals[1]]))
        i += vals[1]
    payload = b""
    if i < len(data):
        payload = data[i + 1 :]
        if not payload:
            raise Malformed("payload marker without payload")
    return mtype, code, mid, token, options, payload


def encode(mtype, code, mid, token, options=(), payload=b""):
    out = bytearray([0x40 | (mtype << 4) | len(token), code, mid >> 8, mid & 0xFF])
    out += token
    prev = 0
    for number, value in sorted(options, key=lambda o: o[0]):
        out += _option(number - prev, value)
        prev = number
    if payload:
        out += b"\xff" + payload
    return bytes(out)


def _option(delta, value):
    def nib(v):
        if v < 13:
            return v, b""
        if v < 269:
            return 13, bytes([v - 13])
        return 14, (v - 269).to_bytes(2, "big")

    dn, dx = nib(delta)
    ln, lx = nib(len(value))
    return bytes([(dn << 4) | ln]) + dx + lx + value


def uint(data):
    return int.from_bytes(data, "big") if data else 0


def tlv_declares_past_the_end(payload):
    """The planted defect's trigger: the first TLV's length exceeds what follows."""
    if len(payload) < 2:
        return False
    t = payload[0]
    i = 1 + (2 if t & 0x20 else 1)
    ltype = (t >> 3) & 3
    if ltype == 0:
        length = t & 7
    else:
        if i + ltype > len(payload):
            return False
        length = int.from_bytes(payload[i : i + ltype], "big")
        i += ltype
    return i + length > len(payload)


class Client:
    def __init__(self, host, port, ep, defect):
        self.server = (host, port)
        self.ep = ep
        self.defect = defect
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.mid = 1000

    def register(self):
        self.mid = (self.mid + 1) & 0xFFFF
        opts = [(URI_PATH, b"rd"), (CONTENT_FORMAT, bytes([40]))]
        for q in (f"ep={self.ep}", "lt=300", "b=U", "lwm2m=1.0"):
            opts.append((URI_QUERY, q.encode()))
        self.sock.sendto(
            encode(CON, 0x02, self.mid, b"\x52\x45", opts, b"</1/0>,</3/0>"), self.server
        )
        self.sock.settimeout(10)
        while True:
            data, _ = self.sock.recvfrom(2048)
            try:
                mtype, code, mid, _, _, _ = decode(data)
            except Malformed:
                continue
            if mtype == ACK and mid == self.mid and code == 0x41:
                break
        self.sock.settimeout(None)
        print("REGISTERED", flush=True)

    def answer(self, data, peer):
        try:
            mtype, code, mid, token, options, payload = decode(data)
        except Malformed:
            return
        if code == 0 or code >= 0x20 or mtype not in (CON, NON):
            return  # Empty, responses, ACK/RST: nothing to answer.
        fmt = [uint(v) for n, v in options if n == CONTENT_FORMAT]
        if fmt and fmt[0] == TLV and tlv_declares_past_the_end(payload):
            if self.defect == "crash":
                print("CRASHED: TLV length past the end", flush=True)
                sys.exit(3)
            if self.defect == "reboot":
                print("REBOOTED: TLV length past the end", flush=True)
                self.register()
                return
            code_out = 0x80  # 4.00
        else:
            path = [v.decode("latin-1") for n, v in options if n == URI_PATH]
            if code == 0x01 and path[:2] == ["3", "0"]:
                code_out = 0x45  # 2.05
            elif code == 0x01:
                code_out = 0x84  # 4.04
            else:
                code_out = 0x84 if path[:1] != ["3"] else 0x85  # 4.04 / 4.05
        rtype = ACK if mtype == CON else NON
        rmid = mid if mtype == CON else (self.mid + 1) & 0xFFFF
        self.mid = rmid if mtype == NON else self.mid
        opts, body = [], b""
        if code_out == 0x45:
            opts, body = [(CONTENT_FORMAT, TLV.to_bytes(2, "big"))], DEVICE_TLV
        self.sock.sendto(encode(rtype, code_out, rmid, token, opts, body), peer)

    def serve(self):
        while True:
            data, peer = self.sock.recvfrom(65535)
            self.answer(data, peer)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("ep")
    ap.add_argument("--defect", choices=["crash", "reboot", "none"], default="crash")
    a = ap.parse_args()
    c = Client(a.host, a.port, a.ep, a.defect)
    c.register()
    try:
        c.serve()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
