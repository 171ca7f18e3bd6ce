#!/usr/bin/env python3
"""Generates the SIP fixture corpus in this directory (valid/, odd/, malformed/, expectations.json).

Run from anywhere:  python3 Fixtures/sip/generate.py
The output is deterministic: running it twice gives byte-identical files. Existing *.sip files in
the three folders are removed first, so the folders always match this script exactly.

Every SIP line ends with CRLF and the header section ends with an empty line (CRLF), unless a
malformed fixture deliberately breaks that. Content-Length equals the body byte count unless the
fixture is deliberately wrong.

Addresses: the proxy under test listens on 127.0.0.1:5060, FreeSWITCH nodes on 127.0.0.1:5080,
the carrier trunk is an SBC at 203.0.113.10 (RFC 5737 documentation range) with a core element
behind it at 198.51.100.20. Top Vias from remote peers carry ;rport, so a test that replays a
fixture gets answers at its own socket.
"""

import hashlib
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent
CRLF = "\r\n"
AUTO = object()  # placeholder for a Content-Length value equal to the body length

MAX_MESSAGE = 65_535  # larger messages are dropped
MAX_HEADER_SECTION = 16 * 1024  # larger header sections get 513 (or are dropped)

files: dict[str, bytes] = {}
expectations: dict[str, dict] = {}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def render(start: str, headers: list, body: "str | bytes" = b"", lead: bytes = b"") -> bytes:
    """Start line, header lines, empty line, body. A header is (name, value) written as
    "name: value", or a str written verbatim (for odd spacing, folding, missing colons).
    A value of AUTO becomes the body length."""
    body_b = body.encode("utf-8") if isinstance(body, str) else body
    lines = [start]
    for h in headers:
        if isinstance(h, str):
            lines.append(h)
        else:
            name, value = h
            if value is AUTO:
                value = str(len(body_b))
            lines.append(f"{name}: {value}")
    return lead + (CRLF.join(lines) + CRLF + CRLF).encode("utf-8") + body_b


def sdp(user: str, sess_id: int, sess_ver: int, ip: str, port: int, *, name: str = "-",
        direction: str = "sendrecv", ipver: str = "IP4") -> str:
    lines = [
        "v=0",
        f"o={user} {sess_id} {sess_ver} IN {ipver} {ip}",
        f"s={name}",
        f"c=IN {ipver} {ip}",
        "t=0 0",
        f"m=audio {port} RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        f"a={direction}",
    ]
    return CRLF.join(lines) + CRLF


def fs_sdp(sess_ver: int = 1732598401, direction: str = "sendrecv", ip: str = "127.0.0.1",
           ipver: str = "IP4", port: int = 16384) -> str:
    return sdp("FreeSWITCH", 1732598400, sess_ver, ip, port, name="FreeSWITCH", direction=direction, ipver=ipver)


def carrier_sdp() -> str:
    return sdp("-", 2890844526, 2890844526, "203.0.113.11", 31000)


def put(path: str, data: bytes, expect: dict) -> None:
    assert path not in files, path
    files[path] = data
    expectations[path] = expect


def msg_expect(kind: str, method: str, call_id: str, vias: int, routes: int, mf, status=None) -> dict:
    e = {"kind": kind, "method": method, "call_id": call_id, "via_count": vias, "route_count": routes,
         "max_forwards": mf}
    if kind == "response":
        e["status"] = status
    return e


def req(path, start, headers, body=b"", *, call_id, vias, routes=0, mf=70, lead=b""):
    method = start.split(" ", 1)[0]
    put(path, render(start, headers, body, lead), msg_expect("request", method, call_id, vias, routes, mf))


def resp(path, start, headers, body=b"", *, method, call_id, vias, routes=0):
    status = int(start.split(" ")[1])
    put(path, render(start, headers, body), msg_expect("response", method, call_id, vias, routes, None, status))


def drop_header(headers: list, name: str) -> list:
    lowered = name.lower()
    return [h for h in headers if isinstance(h, str) or h[0].lower() != lowered]


def replace_header(headers: list, name: str, value: str) -> list:
    out, done = [], False
    for h in headers:
        if not isinstance(h, str) and h[0].lower() == name.lower() and not done:
            out.append((h[0], value))
            done = True
        else:
            out.append(h)
    assert done, name
    return out


def insert_after(headers: list, name: str, new: list) -> list:
    """Inserts `new` after the last header called `name`."""
    idx = max(i for i, h in enumerate(headers) if not isinstance(h, str) and h[0].lower() == name.lower())
    return headers[: idx + 1] + new + headers[idx + 1:]


def det_bytes(seed: str, n: int) -> bytes:
    """Deterministic pseudo-random bytes (SHA-256 in counter mode), stable across Python versions."""
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return out[:n]


def det_token(seed: str, n: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(alphabet[b % len(alphabet)] for b in det_bytes(seed, n))


# ---------------------------------------------------------------------------------------------
# Shared dialog data
# ---------------------------------------------------------------------------------------------

FS_UA = "FreeSWITCH-mod_sofia/1.10.12-release~64bit"
FS_ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY"
CARRIER_ALLOW = "INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, UPDATE, INFO, PRACK"
PROXY_RR = "<sip:127.0.0.1:5060;lr>"

# Flow A: carrier -> proxy -> node (inbound call to a DID).
A_RURI = "sip:+13105550100@127.0.0.1:5060"
A_CID = "5f1c2a7e3b9d4e08a61c@203.0.113.10"
A_FROM = '"+12125551212" <sip:+12125551212@203.0.113.10>;tag=as58f4201b'
A_TO = "<sip:+13105550100@127.0.0.1:5060>"
A_TO_TAGGED = A_TO + ";tag=Hm3pQ8vN1cZrD"
A_VIA_SBC = "SIP/2.0/UDP 203.0.113.10:5060;rport;branch=z9hG4bK-sbc-5a1f3c9e"
A_VIA_SBC_RECEIVED = "SIP/2.0/UDP 203.0.113.10:5060;rport=5060;received=203.0.113.10;branch=z9hG4bK-sbc-5a1f3c9e"
A_VIA_CORE = "SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-core-77e02b14"
A_VIA_PROXY = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sy-1f6c2a90"

# Flow B: node -> proxy -> carrier (outbound call, Route to the proxy, then an in-dialog sequence).
B_RURI = "sip:+12125551212@203.0.113.10:5060"
B_CID = "6d0e3b3c-8a2f-4b57-9c1e-2f7a4d9e0b61"
B_FROM = '"Switchyard Test" <sip:+13105550100@127.0.0.1:5080>;tag=9mF4cSp1Kv0tQ'
B_TO = "<sip:+12125551212@203.0.113.10:5060>"
B_TO_TAGGED = B_TO + ";tag=sbc-4e7a1c0f"
B_TARGET = "sip:+12125551212@203.0.113.10:5060;transport=udp"  # carrier Contact = remote target
B_NODE_CONTACT = "<sip:mod_sofia@127.0.0.1:5080>"
B_VIA_PROXY = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sy-8c03d5e1"


def node_via(branch: str) -> str:
    return f"SIP/2.0/UDP 127.0.0.1:5080;rport;branch={branch}"


def node_via_received(branch: str) -> str:
    return f"SIP/2.0/UDP 127.0.0.1:5080;rport=5080;received=127.0.0.1;branch={branch}"


def invite_a_headers() -> list:
    """The carrier's INVITE (valid/invite-sdp.sip); also the base of most malformed fixtures."""
    return [
        ("Via", A_VIA_SBC),
        ("Via", A_VIA_CORE),
        ("Max-Forwards", "70"),
        ("From", A_FROM),
        ("To", A_TO),
        ("Call-ID", A_CID),
        ("CSeq", "102 INVITE"),
        ("Contact", "<sip:+12125551212@203.0.113.10:5060;transport=udp>"),
        ("Allow", CARRIER_ALLOW),
        ("Supported", "replaces, timer"),
        ("User-Agent", "CarrierSBC/4.2.1"),
        ("Content-Type", "application/sdp"),
        ("Content-Length", AUTO),
    ]


A_START = f"INVITE {A_RURI} SIP/2.0"


# ---------------------------------------------------------------------------------------------
# valid/: realistic RFC 3261 traffic
# ---------------------------------------------------------------------------------------------

def build_valid() -> None:
    # Carrier INVITE with SDP: 2 Vias, no Record-Route, no Route.
    req("valid/invite-sdp.sip", A_START, invite_a_headers(), carrier_sdp(), call_id=A_CID, vias=2)

    # Node INVITE sent through the proxy as outbound proxy (Route with lr). FreeSWITCH writes
    # Content-Length before its X- headers.
    req("valid/invite-route.sip", f"INVITE {B_RURI} SIP/2.0", [
        ("Via", node_via("z9hG4bKQ2g7XyS0vNa3H")),
        ("Route", PROXY_RR),
        ("Max-Forwards", "70"),
        ("From", B_FROM),
        ("To", B_TO),
        ("Call-ID", B_CID),
        ("CSeq", "31522871 INVITE"),
        ("Contact", B_NODE_CONTACT),
        ("User-Agent", FS_UA),
        ("Allow", FS_ALLOW),
        ("Supported", "timer, path, replaces"),
        ("Allow-Events", "talk, hold, conference, refer"),
        ("Content-Type", "application/sdp"),
        ("Content-Disposition", "session"),
        ("Content-Length", AUTO),
        ("X-FS-Support", "update_display,send_info"),
        ("Remote-Party-ID", '"Switchyard Test" <sip:+13105550100@127.0.0.1>;party=calling;screen=yes;privacy=off'),
    ], fs_sdp(), call_id=B_CID, vias=1, routes=1)

    # ACK for the 2xx of invite-route: new transaction, Route set from the Record-Route.
    req("valid/ack-2xx-route.sip", f"ACK {B_TARGET} SIP/2.0", [
        ("Via", node_via("z9hG4bKaF0c7mWq2TzpB")),
        ("Route", PROXY_RR),
        ("Max-Forwards", "70"),
        ("From", B_FROM),
        ("To", B_TO_TAGGED),
        ("Call-ID", B_CID),
        ("CSeq", "31522871 ACK"),
        ("Contact", B_NODE_CONTACT),
        ("User-Agent", FS_UA),
        ("Content-Length", "0"),
    ], call_id=B_CID, vias=1, routes=1)

    # re-INVITE (hold) in the same dialog.
    req("valid/reinvite.sip", f"INVITE {B_TARGET} SIP/2.0", [
        ("Via", node_via("z9hG4bKr5UeX0j8LdQ1s")),
        ("Route", PROXY_RR),
        ("Max-Forwards", "70"),
        ("From", B_FROM),
        ("To", B_TO_TAGGED),
        ("Call-ID", B_CID),
        ("CSeq", "31522872 INVITE"),
        ("Contact", B_NODE_CONTACT),
        ("User-Agent", FS_UA),
        ("Allow", FS_ALLOW),
        ("Supported", "timer, path, replaces"),
        ("Content-Type", "application/sdp"),
        ("Content-Disposition", "session"),
        ("Content-Length", AUTO),
    ], fs_sdp(sess_ver=1732598402, direction="sendonly"), call_id=B_CID, vias=1, routes=1)

    # UPDATE from the carrier side (session refresh, no body): callee's route set is the proxy.
    req("valid/update.sip", "UPDATE sip:mod_sofia@127.0.0.1:5080 SIP/2.0", [
        ("Via", "SIP/2.0/UDP 203.0.113.10:5060;rport;branch=z9hG4bK-sbc-0d9e4471"),
        ("Route", PROXY_RR),
        ("Max-Forwards", "70"),
        ("From", B_TO_TAGGED),
        ("To", B_FROM),
        ("Call-ID", B_CID),
        ("CSeq", "4711 UPDATE"),
        ("Contact", "<sip:+12125551212@203.0.113.10:5060;transport=udp>"),
        ("Session-Expires", "1800;refresher=uac"),
        ("Supported", "timer"),
        ("User-Agent", "CarrierSBC/4.2.1"),
        ("Content-Length", "0"),
    ], call_id=B_CID, vias=1, routes=1)

    # INFO with a DTMF relay body.
    req("valid/info.sip", f"INFO {B_TARGET} SIP/2.0", [
        ("Via", node_via("z9hG4bKj3Wc8RtN5yVhE")),
        ("Route", PROXY_RR),
        ("Max-Forwards", "70"),
        ("From", B_FROM),
        ("To", B_TO_TAGGED),
        ("Call-ID", B_CID),
        ("CSeq", "31522873 INFO"),
        ("Contact", B_NODE_CONTACT),
        ("User-Agent", FS_UA),
        ("Content-Type", "application/dtmf-relay"),
        ("Content-Length", AUTO),
    ], "Signal=5" + CRLF + "Duration=160" + CRLF, call_id=B_CID, vias=1, routes=1)

    # BYE in-dialog, route set of 1.
    req("valid/bye-route-1.sip", f"BYE {B_TARGET} SIP/2.0", [
        ("Via", node_via("z9hG4bKp8Hn2Ek6GfS4d")),
        ("Route", PROXY_RR),
        ("Max-Forwards", "70"),
        ("From", B_FROM),
        ("To", B_TO_TAGGED),
        ("Call-ID", B_CID),
        ("CSeq", "31522874 BYE"),
        ("User-Agent", FS_UA),
        ("Reason", 'Q.850;cause=16;text="NORMAL_CLEARING"'),
        ("Content-Length", "0"),
    ], call_id=B_CID, vias=1, routes=1)

    # BYE in-dialog from the callee node, route set of 2 (proxy and carrier SBC both record-routed).
    cid_g = "0a7d5c31e98b4f25@203.0.113.10"
    req("valid/bye-route-2.sip", "BYE sip:+16465550188@198.51.100.20:5060 SIP/2.0", [
        ("Via", node_via("z9hG4bKt1Yb6Dm0Cq9Lw")),
        ("Max-Forwards", "70"),
        ("Route", PROXY_RR),
        ("Route", "<sip:203.0.113.10;lr>"),
        ("From", "<sip:+13105550102@127.0.0.1:5060>;tag=vB3kS9dQ2mXcF"),
        ("To", '"+16465550188" <sip:+16465550188@203.0.113.10>;tag=as7f2e0d11'),
        ("Call-ID", cid_g),
        ("CSeq", "39117204 BYE"),
        ("User-Agent", FS_UA),
        ("Content-Length", "0"),
    ], call_id=cid_g, vias=1, routes=2)

    # CANCEL for invite-sdp: one Via equal to the INVITE's top Via, same From/To/Call-ID/CSeq number.
    req("valid/cancel.sip", f"CANCEL {A_RURI} SIP/2.0", [
        ("Via", A_VIA_SBC),
        ("Max-Forwards", "70"),
        ("From", A_FROM),
        ("To", A_TO),
        ("Call-ID", A_CID),
        ("CSeq", "102 CANCEL"),
        ("User-Agent", "CarrierSBC/4.2.1"),
        ("Content-Length", "0"),
    ], call_id=A_CID, vias=1)

    # OPTIONS keepalive from a node to the proxy itself (no user part).
    cid = "b2f6a1d4-57c3-4e0a-8d2b-6f1e9c7a3b58"
    req("valid/options-keepalive.sip", "OPTIONS sip:127.0.0.1:5060 SIP/2.0", [
        ("Via", node_via("z9hG4bKv6Nq3Hs9ZxB2k")),
        ("Max-Forwards", "70"),
        ("From", "<sip:mod_sofia@127.0.0.1:5080>;tag=Fp4yK0rJd7mTg"),
        ("To", "<sip:127.0.0.1:5060>"),
        ("Call-ID", cid),
        ("CSeq", "98232011 OPTIONS"),
        ("Contact", "<sip:mod_sofia@127.0.0.1:5080>"),
        ("User-Agent", FS_UA),
        ("Allow", FS_ALLOW),
        ("Supported", "timer, path, replaces"),
        ("Content-Length", "0"),
    ], call_id=cid, vias=1)

    # REGISTER of a node to the proxy.
    cid = "e41c7b90-3a6f-4d28-b5e1-0c9d8f2a7e36"
    req("valid/register.sip", "REGISTER sip:127.0.0.1:5060 SIP/2.0", [
        ("Via", node_via("z9hG4bKc2Rm7Pw4XuN8j")),
        ("Max-Forwards", "70"),
        ("From", "<sip:node-a@127.0.0.1:5060>;tag=Zr8cB1xPq5nVe"),
        ("To", "<sip:node-a@127.0.0.1:5060>"),
        ("Call-ID", cid),
        ("CSeq", "61724390 REGISTER"),
        ("Contact", "<sip:node-a@127.0.0.1:5080;transport=udp>"),
        ("Expires", "300"),
        ("User-Agent", FS_UA),
        ("Allow", FS_ALLOW),
        ("Supported", "path, replaces"),
        ("Content-Length", "0"),
    ], call_id=cid, vias=1)

    # Responses. 100 Trying from the node for flow A (proxy Via + the carrier's two).
    a_vias = [("Via", A_VIA_PROXY), ("Via", A_VIA_SBC_RECEIVED), ("Via", A_VIA_CORE)]
    resp("valid/resp-100-trying.sip", "SIP/2.0 100 Trying", a_vias + [
        ("From", A_FROM),
        ("To", A_TO),
        ("Call-ID", A_CID),
        ("CSeq", "102 INVITE"),
        ("User-Agent", FS_UA),
        ("Content-Length", "0"),
    ], method="INVITE", call_id=A_CID, vias=3)

    # 180 Ringing with the proxy's Record-Route copied back.
    resp("valid/resp-180-ringing.sip", "SIP/2.0 180 Ringing", a_vias + [
        ("Record-Route", PROXY_RR),
        ("From", A_FROM),
        ("To", A_TO_TAGGED),
        ("Call-ID", A_CID),
        ("CSeq", "102 INVITE"),
        ("Contact", B_NODE_CONTACT),
        ("User-Agent", FS_UA),
        ("Allow", FS_ALLOW),
        ("Supported", "timer, path, replaces"),
        ("Content-Length", "0"),
    ], method="INVITE", call_id=A_CID, vias=3)

    # 200 OK for invite-route (carrier -> proxy): 2 Vias, Record-Route, SDP answer.
    resp("valid/resp-200-invite-sdp.sip", "SIP/2.0 200 OK", [
        ("Via", B_VIA_PROXY),
        ("Via", node_via_received("z9hG4bKQ2g7XyS0vNa3H")),
        ("Record-Route", PROXY_RR),
        ("From", B_FROM),
        ("To", B_TO_TAGGED),
        ("Call-ID", B_CID),
        ("CSeq", "31522871 INVITE"),
        ("Contact", "<sip:+12125551212@203.0.113.10:5060;transport=udp>"),
        ("Allow", CARRIER_ALLOW),
        ("Supported", "replaces, timer"),
        ("Server", "CarrierSBC/4.2.1"),
        ("Content-Type", "application/sdp"),
        ("Content-Length", AUTO),
    ], carrier_sdp(), method="INVITE", call_id=B_CID, vias=2)

    # 486 Busy Here from a node for another inbound carrier call.
    cid = "1b9e44c07d2a4f63b7e2@203.0.113.10"
    resp("valid/resp-486-busy.sip", "SIP/2.0 486 Busy Here", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sy-47b1e0c2"),
        ("Via", "SIP/2.0/UDP 203.0.113.10:5060;rport=5060;received=203.0.113.10;branch=z9hG4bK-sbc-9e3d0a55"),
        ("From", '"+14155550123" <sip:+14155550123@203.0.113.10>;tag=as1d0c9a37'),
        ("To", "<sip:+13105550101@127.0.0.1:5060>;tag=Qx7rN2aVb9KpS"),
        ("Call-ID", cid),
        ("CSeq", "102 INVITE"),
        ("User-Agent", FS_UA),
        ("Allow", FS_ALLOW),
        ("Supported", "timer, path, replaces"),
        ("Reason", 'Q.850;cause=17;text="USER_BUSY"'),
        ("Content-Length", "0"),
    ], method="INVITE", call_id=cid, vias=2)

    # 503 with Retry-After from the carrier for an outbound call of a node.
    cid = "93a4f0d2-1e6b-4c7a-a8f5-2d0b7e9c4a13"
    resp("valid/resp-503-retry-after.sip", "SIP/2.0 503 Service Unavailable", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sy-c5e80f31"),
        ("Via", node_via_received("z9hG4bKm9Ta4Gv1RkW7c")),
        ("From", '"Switchyard Test" <sip:+13105550100@127.0.0.1:5080>;tag=Ue2hL6sYc8qDn'),
        ("To", "<sip:+12125551213@203.0.113.10:5060>;tag=sbc-7b20e9d4"),
        ("Call-ID", cid),
        ("CSeq", "44810297 INVITE"),
        ("Retry-After", "120"),
        ("Reason", 'Q.850;cause=34;text="NO_CIRCUIT_AVAILABLE"'),
        ("Server", "CarrierSBC/4.2.1"),
        ("Content-Length", "0"),
    ], method="INVITE", call_id=cid, vias=2)

    # 200 OK for bye-route-1.
    resp("valid/resp-200-bye.sip", "SIP/2.0 200 OK", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sy-2a6d94b8"),
        ("Via", node_via_received("z9hG4bKp8Hn2Ek6GfS4d")),
        ("From", B_FROM),
        ("To", B_TO_TAGGED),
        ("Call-ID", B_CID),
        ("CSeq", "31522874 BYE"),
        ("Server", "CarrierSBC/4.2.1"),
        ("Content-Length", "0"),
    ], method="BYE", call_id=B_CID, vias=2)


# ---------------------------------------------------------------------------------------------
# odd/: unusual but valid
# ---------------------------------------------------------------------------------------------

LONG_CALL_ID = det_token("long-call-id", 200 - len("@127.0.0.1")) + "@127.0.0.1"
assert len(LONG_CALL_ID) == 200


def build_odd() -> None:
    # Compact header forms (RFC 3261 §7.3.3): v f t i l m, plus c (Content-Type) and k (Supported).
    cid = "cmp-7c1d0e95@203.0.113.10"
    req("odd/compact-forms.sip", f"INVITE {A_RURI} SIP/2.0", [
        ("v", "SIP/2.0/UDP 203.0.113.10:5060;rport;branch=z9hG4bK-cmp-0a1b2c3d"),
        ("Max-Forwards", "70"),
        ("f", '"+12125551212" <sip:+12125551212@203.0.113.10>;tag=cmp83e1'),
        ("t", A_TO),
        ("i", cid),
        ("CSeq", "1 INVITE"),
        ("m", "<sip:+12125551212@203.0.113.10:5060>"),
        ("k", "timer"),
        ("c", "application/sdp"),
        ("l", AUTO),
    ], carrier_sdp(), call_id=cid, vias=1)

    # Header names in odd case; the names are case-insensitive (RFC 3261 §7.3.1).
    req("odd/lowercase-header-names.sip", f"BYE {B_TARGET} SIP/2.0", [
        ("VIA", node_via("z9hG4bKlc5Dq0Wn8Yt3R")),
        ("route", PROXY_RR),
        ("max-FORWARDS", "70"),
        ("from", B_FROM),
        ("TO", B_TO_TAGGED),
        ("call-ID", B_CID),
        ("cseq", "31522875 BYE"),
        ("CONTENT-LENGTH", "0"),
    ], call_id=B_CID, vias=1, routes=1)

    # Subject folded over three physical lines (space and tab continuations).
    cid = "fold-subject-31e0@203.0.113.10"
    req("odd/folded-subject.sip", f"INVITE {A_RURI} SIP/2.0", [
        ("Via", "SIP/2.0/UDP 203.0.113.10:5060;rport;branch=z9hG4bK-fs-4c9a01"),
        ("Max-Forwards", "70"),
        ("From", "<sip:+12125551212@203.0.113.10>;tag=fold1"),
        ("To", A_TO),
        ("Call-ID", cid),
        ("CSeq", "1 INVITE"),
        "Subject: Quarterly review call" + CRLF + " about the" + CRLF + "\tSwitchyard rollout",
        ("Contact", "<sip:+12125551212@203.0.113.10:5060>"),
        ("Content-Type", "application/sdp"),
        ("Content-Length", AUTO),
    ], carrier_sdp(), call_id=cid, vias=1)

    # A Via field folded after the comma between two values, and before a ';' of the second value.
    cid = "fold-via-8d2f@127.0.0.1"
    req("odd/folded-via.sip", "OPTIONS sip:127.0.0.1:5060 SIP/2.0", [
        "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-fv-1," + CRLF
        + " SIP/2.0/UDP 10.0.0.7:5060" + CRLF + "\t;received=203.0.113.99;rport=5062;branch=z9hG4bK-fv-2",
        ("Max-Forwards", "69"),
        ("From", "<sip:monitor@10.0.0.7>;tag=fv77"),
        ("To", "<sip:127.0.0.1:5060>"),
        ("Call-ID", cid),
        ("CSeq", "12 OPTIONS"),
        ("Content-Length", "0"),
    ], call_id=cid, vias=2, mf=69)

    # Two Via values in one header line (plus a third on its own line), in a response: the proxy
    # must remove only the first value of the first line.
    cid = "mv-resp-2b7e@203.0.113.10"
    resp("odd/multi-via-one-line.sip", "SIP/2.0 180 Ringing", [
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sy-aa01, "
        "SIP/2.0/UDP 203.0.113.10:5060;rport=5060;received=203.0.113.10;branch=z9hG4bK-sbc-aa02",
        ("Via", "SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-core-aa03"),
        ("Record-Route", PROXY_RR),
        ("From", "<sip:+12125551212@203.0.113.10>;tag=mv1"),
        ("To", "<sip:+13105550100@127.0.0.1:5060>;tag=Lp2nX5cQ8vRwT"),
        ("Call-ID", cid),
        ("CSeq", "1 INVITE"),
        ("Contact", B_NODE_CONTACT),
        ("Content-Length", "0"),
    ], method="INVITE", call_id=cid, vias=3)

    # Two Via values in one header line in a request (sent by an upstream proxy at 5090).
    cid = "mv-req-6f31@127.0.0.1"
    req("odd/multi-via-one-line-request.sip", f"INVITE {A_RURI} SIP/2.0", [
        "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-up-1, "
        "SIP/2.0/UDP 127.0.0.1:5080;rport=5080;received=127.0.0.1;branch=z9hG4bK-up-2",
        ("Max-Forwards", "69"),
        ("From", "<sip:+13105550100@127.0.0.1:5080>;tag=mvr1"),
        ("To", "<sip:+12125551212@127.0.0.1:5060>"),
        ("Call-ID", cid),
        ("CSeq", "1 INVITE"),
        ("Contact", B_NODE_CONTACT),
        ("Content-Length", "0"),
    ], call_id=cid, vias=2, mf=69)

    # Route with two values in one line.
    cid = "0c4e8a17d2b94f6e@203.0.113.10"
    req("odd/route-two-values-one-line.sip", "BYE sip:+16465550188@198.51.100.20:5060 SIP/2.0", [
        ("Via", node_via("z9hG4bKrt2Vn7Qc4Xm1S")),
        ("Max-Forwards", "70"),
        ("Route", PROXY_RR + ", <sip:203.0.113.10;lr>"),
        ("From", "<sip:+13105550103@127.0.0.1:5060>;tag=Jw5dR8kT3bYqM"),
        ("To", '"+16465550188" <sip:+16465550188@203.0.113.10>;tag=as0e6b3f92'),
        ("Call-ID", cid),
        ("CSeq", "20311 BYE"),
        ("Content-Length", "0"),
    ], call_id=cid, vias=1, routes=2)

    # Whitespace before and after colons (HCOLON = *(SP / HTAB) ":" SWS).
    cid = "ws-1@127.0.0.1"
    req("odd/whitespace-around-colon.sip", "OPTIONS sip:127.0.0.1:5060 SIP/2.0", [
        "Via :SIP/2.0/UDP 127.0.0.1:5080;rport;branch=z9hG4bK-ws-5e7f",
        "Max-Forwards :  70",
        "From\t:\t<sip:mod_sofia@127.0.0.1:5080>;tag=ws1",
        "To:<sip:127.0.0.1:5060>",
        "Call-ID  :   " + cid,
        "CSeq : 7 OPTIONS",
        "Content-Length  :  0",
    ], call_id=cid, vias=1)

    # No Max-Forwards (an RFC 2543 client): the proxy adds one (RFC 3261 §16.6 step 3).
    cid = "nomf-41d7@198.51.100.33"
    req("odd/no-max-forwards.sip", f"INVITE {A_RURI} SIP/2.0", [
        ("Via", "SIP/2.0/UDP 198.51.100.33:5060;rport;branch=z9hG4bK-nomf-8a2c"),
        ("From", "<sip:+17185550111@198.51.100.33>;tag=old1"),
        ("To", A_TO),
        ("Call-ID", cid),
        ("CSeq", "1 INVITE"),
        ("Contact", "<sip:+17185550111@198.51.100.33:5060>"),
        ("Content-Type", "application/sdp"),
        ("Content-Length", AUTO),
    ], sdp("-", 1, 1, "198.51.100.33", 40000), call_id=cid, vias=1, mf=None)

    # Extension headers, including X-Call-ID (not the Call-ID) placed before the real Call-ID.
    cid = "ext-9b0e2d6a@203.0.113.10"
    req("odd/extension-headers.sip", f"INVITE {A_RURI} SIP/2.0", [
        ("Via", "SIP/2.0/UDP 203.0.113.10:5060;rport;branch=z9hG4bK-ext-3f61"),
        ("Max-Forwards", "70"),
        ("From", "<sip:+12125551212@203.0.113.10>;tag=ext1"),
        ("To", A_TO),
        ("X-Call-ID", "not-the-call-id@example.invalid"),
        ("Call-ID", cid),
        ("CSeq", "1 INVITE"),
        ("P-Asserted-Identity", '"Jane Caller" <sip:+12125551212@203.0.113.10>'),
        ("P-Charging-Vector", "icid-value=1a2b3c4d;icid-generated-at=203.0.113.10"),
        ("Diversion", "<sip:+13105550199@203.0.113.10>;reason=unconditional;counter=1"),
        ("X-Carrier-Trunk", "trunk-07"),
        ("Contact", "<sip:+12125551212@203.0.113.10:5060>"),
        ("Content-Length", "0"),
    ], call_id=cid, vias=1)

    # IPv6: Via host [::1] and an IPv6 Request-URI.
    cid = "ipv6-5c2a9e10-7d4b"
    req("odd/ipv6.sip", "INVITE sip:+13105550100@[::1]:5060 SIP/2.0", [
        ("Via", "SIP/2.0/UDP [::1]:5080;rport;branch=z9hG4bK-v6-0e4d"),
        ("Max-Forwards", "70"),
        ("From", "<sip:+12125551212@[::1]:5080>;tag=v6a"),
        ("To", "<sip:+13105550100@[::1]:5060>"),
        ("Call-ID", cid),
        ("CSeq", "1 INVITE"),
        ("Contact", "<sip:mod_sofia@[::1]:5080>"),
        ("Content-Type", "application/sdp"),
        ("Content-Length", AUTO),
    ], fs_sdp(ip="::1", ipver="IP6"), call_id=cid, vias=1)

    # A 200-character Call-ID.
    req("odd/long-call-id.sip", "OPTIONS sip:127.0.0.1:5060 SIP/2.0", [
        ("Via", node_via("z9hG4bK-long-19d3")),
        ("Max-Forwards", "70"),
        ("From", "<sip:mod_sofia@127.0.0.1:5080>;tag=lc1"),
        ("To", "<sip:127.0.0.1:5060>"),
        ("Call-ID", LONG_CALL_ID),
        ("CSeq", "1 OPTIONS"),
        ("Content-Length", "0"),
    ], call_id=LONG_CALL_ID, vias=1)

    # Top Via with ;rport without value (after the branch); second Via with received= and rport=.
    cid = "rport-2e8c@127.0.0.1"
    req("odd/via-rport-received.sip", f"INVITE {A_RURI} SIP/2.0", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-rp-1;rport"),
        ("Via", "SIP/2.0/UDP 10.0.0.7:5060;received=203.0.113.99;rport=5062;branch=z9hG4bK-rp-2"),
        ("Max-Forwards", "69"),
        ("From", "<sip:2001@10.0.0.7>;tag=rp1"),
        ("To", A_TO),
        ("Call-ID", cid),
        ("CSeq", "1 INVITE"),
        ("Contact", "<sip:2001@10.0.0.7:5060>"),
        ("Content-Length", "0"),
    ], call_id=cid, vias=2, mf=69)

    # Display names in quotes that contain commas (also in Contact, a comma-list header).
    cid = "dn-comma-74f0@203.0.113.10"
    req("odd/display-name-comma.sip", f"INVITE {A_RURI} SIP/2.0", [
        ("Via", "SIP/2.0/UDP 203.0.113.10:5060;rport;branch=z9hG4bK-dn-6b1c"),
        ("Max-Forwards", "70"),
        ("From", '"Smith, John" <sip:+12125551212@203.0.113.10>;tag=dn1'),
        ("To", '"Support, Tier 2" <sip:+13105550100@127.0.0.1:5060>'),
        ("Call-ID", cid),
        ("CSeq", "1 INVITE"),
        ("Contact", '"Smith, John" <sip:+12125551212@203.0.113.10:5060>'),
        ("Content-Length", "0"),
    ], call_id=cid, vias=1)

    # Keep-alive CRLFs before the start line (RFC 3261 §7.5, RFC 5626 §4.4.1).
    cid = "lead-crlf-0f3a@127.0.0.1"
    req("odd/leading-crlf.sip", "OPTIONS sip:127.0.0.1:5060 SIP/2.0", [
        ("Via", node_via("z9hG4bK-lead-7c20")),
        ("Max-Forwards", "70"),
        ("From", "<sip:mod_sofia@127.0.0.1:5080>;tag=lead1"),
        ("To", "<sip:127.0.0.1:5060>"),
        ("Call-ID", cid),
        ("CSeq", "3 OPTIONS"),
        ("Content-Length", "0"),
    ], call_id=cid, vias=1, lead=(CRLF + CRLF).encode())

    # No body and no Content-Length (allowed on UDP, RFC 3261 §18.3 / §20.14).
    req("odd/no-content-length.sip", f"BYE {B_TARGET} SIP/2.0", [
        ("Via", node_via("z9hG4bKncl4Bz7Wd1Pq6")),
        ("Route", PROXY_RR),
        ("Max-Forwards", "70"),
        ("From", B_FROM),
        ("To", B_TO_TAGGED),
        ("Call-ID", B_CID),
        ("CSeq", "31522876 BYE"),
    ], call_id=B_CID, vias=1, routes=1)

    # URI parameters in the Request-URI, From, To and Contact.
    cid = "uriparams-3d9b@203.0.113.10"
    req("odd/uri-params.sip", "INVITE sip:+13105550100@127.0.0.1:5060;user=phone;transport=udp SIP/2.0", [
        ("Via", "SIP/2.0/UDP 203.0.113.10:5060;rport;branch=z9hG4bK-up-58e2"),
        ("Max-Forwards", "70"),
        ("From", '"+12125551212" <sip:+12125551212@203.0.113.10;user=phone>;tag=up1'),
        ("To", "<sip:+13105550100@127.0.0.1:5060;user=phone>"),
        ("Call-ID", cid),
        ("CSeq", "1 INVITE"),
        ("Contact", "<sip:+12125551212@203.0.113.10:5060;transport=udp;ob>"),
        ("Content-Type", "application/sdp"),
        ("Content-Length", AUTO),
    ], carrier_sdp(), call_id=cid, vias=1)

    # A tel: Request-URI (RFC 3966); a proxy may answer 416, but the parser must accept it.
    cid = "tel-8e1f5a@127.0.0.1"
    req("odd/tel-uri.sip", "INVITE tel:+12125551212 SIP/2.0", [
        ("Via", node_via("z9hG4bK-tel-2d7a")),
        ("Max-Forwards", "70"),
        ("From", "<sip:+13105550100@127.0.0.1:5080>;tag=tel1"),
        ("To", "<tel:+12125551212>"),
        ("Call-ID", cid),
        ("CSeq", "1 INVITE"),
        ("Contact", B_NODE_CONTACT),
        ("Content-Type", "application/sdp"),
        ("Content-Length", AUTO),
    ], fs_sdp(), call_id=cid, vias=1)


# ---------------------------------------------------------------------------------------------
# malformed/: must be rejected (400/505/513) or dropped, never crash
# ---------------------------------------------------------------------------------------------
#
# Rule (see README.md): a request whose first line is "METHOD SP uri SP SIP/x.y" and that has
# Via, From, To, Call-ID and CSeq lines is answered: 505 for a version other than 2.0, else 400.
# If any of those five lines is missing: drop. Too many headers / header section over 16 KiB:
# 513 if the five lines are found within the first 16 KiB, else drop. Over 65,535 bytes: drop.
# Responses, empty input and garbage: drop. No malformed fixture is an ACK (never answered).

def bad(name: str, data: bytes, expect: str) -> None:
    assert expect in ("400", "416", "505", "513", "drop")
    put(f"malformed/{name}.sip", data, {"expect": expect})


def invite_a(headers=None, body=None, start=A_START) -> bytes:
    return render(start, invite_a_headers() if headers is None else headers,
                  carrier_sdp() if body is None else body)


def truncated_expectation(data: bytes) -> str:
    """drop, unless the five header lines and the empty line survived: then 400 (Content-Length
    exceeds the remaining body)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return "drop"
    names = [line.split(b":", 1)[0].strip().lower() for line in data[:end].split(b"\r\n")[1:]]
    needed = [b"via", b"from", b"to", b"call-id", b"cseq"]
    return "400" if all(n in names for n in needed) else "drop"


def build_malformed() -> None:
    h = invite_a_headers()

    # --- nothing usable -------------------------------------------------------------------
    # Empty datagram: nothing to parse or answer.
    bad("empty", b"", "drop")
    # Only CRLFs (keep-alive pings without a message): nothing to answer.
    bad("only-crlf", (CRLF * 8).encode(), "drop")
    # 512 deterministic pseudo-random bytes: garbage, no request line.
    bad("random-binary", det_bytes("random-binary", 512), "drop")
    # Plain text, no request line: garbage.
    bad("garbage-text", b"Hello, this is not a SIP message.\r\nJust some text, no headers.\r\n\r\n", "drop")
    # An HTTP request: its version is not SIP/x.y and it has no Via/From/To/Call-ID/CSeq.
    bad("http-request", b"GET / HTTP/1.1\r\nHost: 127.0.0.1:5060\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
        "drop")
    # A request line and nothing else: no Via to answer to.
    bad("request-line-only", (A_START + CRLF).encode(), "drop")

    # --- a mandatory header missing: drop (the rule needs all five) ----------------------
    # No Via: nowhere to send a response.
    bad("no-via", invite_a(drop_header(h, "Via")), "drop")
    # No From: a response cannot be built.
    bad("no-from", invite_a(drop_header(h, "From")), "drop")
    # No To: a response cannot be built.
    bad("no-to", invite_a(drop_header(h, "To")), "drop")
    # No Call-ID: a response cannot be built.
    bad("no-call-id", invite_a(drop_header(h, "Call-ID")), "drop")
    # No CSeq: a response cannot be built.
    bad("no-cseq", invite_a(drop_header(h, "CSeq")), "drop")

    # --- bad values, all five lines present: 400 ------------------------------------------
    # CSeq number is not a number; five lines present, so 400.
    bad("cseq-non-numeric", invite_a(replace_header(h, "CSeq", "abc INVITE")), "400")
    # CSeq number above 2^32 (RFC 3261 §8.1.1.5 wants < 2^31); five lines present, so 400.
    bad("cseq-number-overflow", invite_a(replace_header(h, "CSeq", "99999999999 INVITE")), "400")
    # CSeq method BYE on an INVITE (RFC 3261 §8.1.1.5); five lines present, so 400.
    bad("cseq-method-mismatch", invite_a(replace_header(h, "CSeq", "102 BYE")), "400")
    # Max-Forwards is not a number; five lines present, so 400.
    bad("max-forwards-abc", invite_a(replace_header(h, "Max-Forwards", "abc")), "400")
    # Max-Forwards is negative (1*DIGIT); five lines present, so 400.
    bad("max-forwards-negative", invite_a(replace_header(h, "Max-Forwards", "-1")), "400")
    # Request URI with an http scheme: RFC 3261 §16.3 step 2 answers 416 Unsupported URI Scheme.
    bad("request-uri-http", invite_a(start="INVITE http://x SIP/2.0"), "416")
    # sip: URI without a host; the request line has the right shape, five lines: 400.
    bad("request-uri-sip-no-host", invite_a(start="INVITE sip: SIP/2.0"), "400")
    # A header line without a colon; request line fine, five lines present: 400.
    bad("header-without-colon", invite_a(insert_after(h, "Max-Forwards", ["X-No-Colon-Here this line has no colon"])),
        "400")
    # A continuation line (leading space) right after the request line, before any header;
    # request line fine, five lines present: 400.
    bad("continuation-first-header", invite_a([" folded-text-without-a-header"] + h), "400")
    # Content-Length 500 but only 10 body bytes (RFC 3261 §18.3: a request gets 400).
    bad("content-length-exceeds-body", invite_a(replace_header(h, "Content-Length", "500"), "v=0\r\no=- 0"), "400")
    # Content-Length negative; five lines present, so 400.
    bad("content-length-negative", invite_a(replace_header(h, "Content-Length", "-5")), "400")
    # Content-Length 99999999999 (overflows 32 bits, beyond any datagram); five lines: 400.
    bad("content-length-huge", invite_a(replace_header(h, "Content-Length", "99999999999")), "400")
    # Content-Length not a number; five lines present, so 400.
    bad("content-length-non-numeric", invite_a(replace_header(h, "Content-Length", "abc")), "400")
    # Two different Content-Length values (a single-value header may appear once, §7.3.1);
    # five lines present, so 400.
    bad("content-length-duplicate", invite_a(insert_after(h, "Max-Forwards", [("Content-Length", "0")])), "400")
    # NUL bytes inside a header value (TEXT-UTF8 excludes %x00); five lines present, so 400.
    bad("nul-in-header", invite_a(insert_after(h, "CSeq", [("Subject", "Incoming\x00\x00call")])), "400")
    # --- headers other SIP servers' parsers crashed on (issue 11): 400 naming the header -----
    # A second To (Kamailio CVE-2018-14767), From, Call-ID, CSeq, Max-Forwards, Content-Type:
    # each may appear once (RFC 3261 §7.3.1, their grammar is not a comma list).
    for name, value in [("To", "<sip:other@198.51.100.20>"), ("From", "<sip:x@203.0.113.10>;tag=2"),
                        ("Call-ID", "second-call-id@203.0.113.10"), ("CSeq", "103 INVITE"),
                        ("Max-Forwards", "10"), ("Content-Type", "text/plain")]:
        bad(f"duplicate-{name.lower()}", invite_a(insert_after(h, "Max-Forwards", [(name, value)])), "400")
    # The compact form counts as the same header (t: is To).
    bad("duplicate-to-compact", invite_a(insert_after(h, "Max-Forwards", [("t", "<sip:other@198.51.100.20>")])), "400")
    # Control bytes in a header name (a name is a token, §25.1): SOH, ESC, DEL.
    for label, byte in [("soh", "\x01"), ("esc", "\x1b"), ("del", "\x7f")]:
        bad(f"control-{label}-in-header-name", invite_a(insert_after(h, "CSeq", [f"X-Bad{byte}Name: 1"])), "400")
    # A control byte in a value, outside a quoted-pair (TEXT-UTF8 excludes it): 400.
    bad("control-bel-in-header-value", invite_a(insert_after(h, "CSeq", [("Subject", "ring\x07ring")])), "400")
    # A space inside a header name: not a token, 400.
    bad("space-in-header-name", invite_a(insert_after(h, "CSeq", ["X Bad: 1"])), "400")

    # Second Via with port 99999; the top Via is usable and all five lines are present: 400.
    bad("via-bad-port", invite_a([("Via", A_VIA_SBC), ("Via", "SIP/2.0/UDP 198.51.100.20:99999;branch=z9hG4bK-core-77e02b14")]
                                 + drop_header(h, "Via")), "400")
    # Second Via with no host (":5060"); the top Via is usable and all five lines present: 400.
    bad("via-no-host", invite_a([("Via", A_VIA_SBC), ("Via", "SIP/2.0/UDP :5060;branch=z9hG4bK-core-77e02b14")]
                                + drop_header(h, "Via")), "400")

    # --- version ----------------------------------------------------------------------------
    # SIP/9.9: a well-shaped request line with all five lines, unsupported version: 505.
    bad("version-sip-9-9", invite_a(start=f"INVITE {A_RURI} SIP/9.9"), "505")
    # Request line without version: not "METHOD SP uri SP SIP/x.y", so not a SIP request: drop.
    bad("request-line-no-version", invite_a(start=f"INVITE {A_RURI}"), "drop")

    # --- framing ------------------------------------------------------------------------------
    # Header section never ends (no empty line) although all five lines are there: drop, as for
    # a truncated INVITE without its empty line.
    no_empty = (A_START + CRLF + CRLF.join(
        f"{n}: {'0' if v is AUTO else v}" for n, v in drop_header(h, "Content-Type")) + CRLF).encode()
    assert b"\r\n\r\n" not in no_empty
    bad("no-empty-line", no_empty, "drop")
    # The valid INVITE with every CRLF replaced by a bare CR: no line ends at all, so no request
    # line can be found: drop.
    bad("bare-cr", invite_a().replace(b"\r\n", b"\r"), "drop")

    # Truncated copies of valid/invite-sdp.sip. Expectation by truncated_expectation(): drop
    # unless the five lines and the empty line survived (then 400, Content-Length > body).
    full = files["valid/invite-sdp.sip"]
    for n in (10, 50, 100, 200, 400):
        cut = full[:n]
        bad(f"truncated-invite-{n}", cut, truncated_expectation(cut))
    # Cut 20 bytes into the body: headers complete, Content-Length exceeds the body: 400.
    cut = full[: full.index(b"\r\n\r\n") + 4 + 20]
    assert truncated_expectation(cut) == "400"
    bad("truncated-invite-in-body", cut, "400")

    # --- limits -------------------------------------------------------------------------------
    # 300 Via lines (more than the header-count limit) but under 16 KiB in all; the five lines
    # are near the top, so the proxy answers 513.
    vias = [("Via", f"SIP/2.0/UDP 10.1.{i // 250}.{i % 250 + 1}:5060;branch=z9hG4bK{i:05d}") for i in range(299)]
    many = [("Via", A_VIA_SBC), ("From", A_FROM), ("To", A_TO), ("Call-ID", A_CID), ("CSeq", "102 INVITE"),
            ("Max-Forwards", "70")] + vias + [("Content-Length", "0")]
    data = render(A_START, many)
    assert len(data) < MAX_HEADER_SECTION, len(data)
    bad("too-many-vias", data, "513")
    # Header section over 16 KiB (one 20,000-byte header) in a 20 KB message; the five lines come
    # first, within 16 KiB: 513.
    data = invite_a(insert_after(h, "Content-Type", [("X-Padding", "a" * 20_000)]))
    assert MAX_HEADER_SECTION < data.index(b"\r\n\r\n") and len(data) < MAX_MESSAGE
    bad("header-section-too-large", data, "513")
    # Same size, but the padding comes right after the top Via, pushing From/To/Call-ID/CSeq
    # past the first 16 KiB: drop.
    hh = [h[0], ("X-Padding", "a" * 20_000)] + h[1:]
    data = invite_a(hh)
    assert data.index(b"Call-ID:") > MAX_HEADER_SECTION and len(data) < MAX_MESSAGE
    bad("header-section-too-large-late-call-id", data, "drop")
    # One header value of 70,000 bytes: the message exceeds 65,535 bytes, so drop (this rule
    # wins over 513).
    data = invite_a(insert_after(h, "Content-Type", [("X-Padding", "b" * 70_000)]))
    assert len(data) > MAX_MESSAGE
    bad("header-value-70000", data, "drop")
    # A well-formed INVITE of exactly 70,000 bytes (large text body, exact Content-Length): over
    # 65,535 bytes, drop.
    hb = replace_header(h, "Content-Type", "text/plain")
    line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-padding" + CRLF
    size = 70_000
    blen = size - len(render(A_START, hb, b""))  # first guess, corrected for Content-Length digits
    for _ in range(3):
        blen = size - (len(render(A_START, hb, "x" * blen)) - blen)
    text = (line * (blen // len(line) + 1))[:blen]
    data = render(A_START, hb, text)
    assert len(data) == size, len(data)
    bad("datagram-70000", data, "drop")

    # --- responses: never answered ---------------------------------------------------------
    resp_headers = [("Via", A_VIA_PROXY), ("From", A_FROM), ("To", A_TO_TAGGED), ("Call-ID", A_CID),
                    ("CSeq", "102 INVITE"), ("Content-Length", "0")]
    # Status code 99 (below 100): a response, so drop.
    bad("status-code-99", render("SIP/2.0 99 Too Low", resp_headers), "drop")
    # Status code 1000 (four digits): a response, so drop.
    bad("status-code-1000", render("SIP/2.0 1000 Too High", resp_headers), "drop")
    # 200 OK without Via: a response, so drop.
    bad("response-no-via", render("SIP/2.0 200 OK", drop_header(resp_headers, "Via")), "drop")
    # 200 OK whose Content-Length exceeds the body: RFC 3261 §18.3 says discard a response.
    bad("response-content-length-exceeds",
        render("SIP/2.0 200 OK", replace_header(resp_headers, "Content-Length", "500"), "v=0\r\no=- 0"), "drop")


# ---------------------------------------------------------------------------------------------
# Output and self-check
# ---------------------------------------------------------------------------------------------

README_CHECK_NAMES = ("valid", "odd", "malformed")


def header_section(data: bytes) -> "tuple[list[tuple[str, str]], bytes]":
    """Unfolded (name, value) pairs and the body of a well-formed fixture."""
    data = data.lstrip(b"\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8").split("\r\n")[1:]
    unfolded: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            unfolded[-1] += " " + line.strip()
        else:
            unfolded.append(line)
    pairs = []
    for line in unfolded:
        name, _, value = line.partition(":")
        pairs.append((name.strip(), value.strip()))
    return pairs, body


def self_check() -> None:
    for path, data in files.items():
        if path.startswith("malformed/"):
            continue
        assert b"\r\n\r\n" in data, path
        assert re.search(rb"(?<!\r)\n", data) is None, f"{path}: bare LF"
        pairs, body = header_section(data)
        cls = [v for n, v in pairs if n.lower() in ("content-length", "l")]
        assert len(cls) <= 1, path
        if cls:
            assert int(cls[0]) == len(body), f"{path}: Content-Length {cls[0]} != body {len(body)}"
        else:
            assert body == b"", path


def main() -> None:
    build_valid()
    build_odd()
    build_malformed()
    self_check()
    for folder in README_CHECK_NAMES:
        d = ROOT / folder
        d.mkdir(exist_ok=True)
        for old in d.glob("*.sip"):
            old.unlink()
    for path, data in sorted(files.items()):
        (ROOT / path).write_bytes(data)
    (ROOT / "expectations.json").write_bytes(
        (json.dumps(dict(sorted(expectations.items())), indent=2, sort_keys=True) + "\n").encode())
    counts = {f: sum(p.startswith(f + "/") for p in files) for f in README_CHECK_NAMES}
    print(f"wrote {len(files)} fixtures {counts} and expectations.json")


if __name__ == "__main__":
    main()
