#!/usr/bin/env python3
"""Sends SIP INVITEs to 127.0.0.1:PORT as fast as it can, bounded by --count and --seconds
(scripts/bench-flood). Each INVITE has its own Call-ID and branch; answers are not read.
Prints `sent=N seconds=S`."""
import argparse, socket, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--count", type=int, default=400000)
p.add_argument("--seconds", type=float, default=15)
p.add_argument("--delay", type=float, default=0, help="seconds to wait before flooding")
a = p.parse_args()
time.sleep(a.delay)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.setblocking(False)
lport = s.getsockname()[1]
target = ("127.0.0.1", a.port)
template = ("INVITE sip:+15551230000@127.0.0.1:%d SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKfl%%d\r\n"
            "From: <sip:flood@127.0.0.1>;tag=f%%d\r\nTo: <sip:+15551230000@127.0.0.1>\r\n"
            "Call-ID: flood-%%d\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nUser-Agent: pbx\r\n"
            "Contact: <sip:flood@127.0.0.1:%d>\r\nContent-Length: 0\r\n\r\n") % (a.port, lport, lport)
start = time.monotonic()
sent = 0
loops = 0
deadline = start + a.seconds
while sent < a.count:
    loops += 1
    if loops % 1000 == 0 and time.monotonic() >= deadline:
        break
    try:
        s.sendto((template % (sent, sent, sent)).encode(), target)
        sent += 1
    except BlockingIOError:
        time.sleep(0.0005)
    except OSError:
        pass
print(f"sent={sent} seconds={time.monotonic() - start:.1f}")
