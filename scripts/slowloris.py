#!/usr/bin/env python3
# scripts/slowloris.py PORT [N] [SOURCE_IP] — N (default 500) TCP connections to 127.0.0.1:PORT, from
# SOURCE_IP (default 127.0.0.1; use 127.0.0.2 to keep the per-source limit off your own calls), each
# trickling an INVITE one byte a second for 15 s; prints how many are still open right after the
# last byte and 45 s later (issue 11: the goal is 0). Bounded: N sockets, about 65 s, loopback only.
import socket, sys, time, select
port = int(sys.argv[1]); n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
src = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
msg = b"INVITE sip:+12125551212@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKslow\r\n"
socks = []
for i in range(n):
    s = socket.socket(); s.bind((src, 0)); s.connect(("127.0.0.1", port)); s.setblocking(False); socks.append(s)
def is_open(s):
    try:
        r, _, _ = select.select([s], [], [], 0)
        if not r: return True
        return s.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False
t0 = time.time()
for k in range(15):
    for s in socks:
        try: s.send(msg[k:k+1])
        except OSError: pass
    time.sleep(1)
last = time.time()
print(f"open right after the last byte ({last - t0:.0f} s after the first): {sum(map(is_open, socks))} of {n}", flush=True)
time.sleep(45)
print(f"open 45 s after the last byte: {sum(map(is_open, socks))} of {n}", flush=True)
