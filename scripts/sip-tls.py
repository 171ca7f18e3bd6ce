#!/usr/bin/env python3
"""SIP over TLS with Python's ssl module, for the TLS tests and for trying the proxy by hand
(Debian's sipp has no TLS).

  sip-tls.py call --port P --ca CA [--cert C --key K] [--to USER]
      One call to 127.0.0.1:P over TLS: INVITE, ACK, BYE along the Record-Route set. Prints one
      JSON line: {"handshake": "ok"|"failed", "error", "invite": [statuses], "record_route": [...],
      "bye": status, "closed": bool}.
  sip-tls.py options --port P --ca CA [--cert C --key K]
      One OPTIONS; prints {"handshake", "status"}.
  sip-tls.py node --port P --cert C --key K [--ca CA] [--count N] [--seconds S]
      A TLS node (UAS) on 127.0.0.1:P: answers OPTIONS, INVITE (180, 200), ACK, BYE; prints one
      JSON line per call ({"call_id", "via_transport", "record_route"}) and exits after N calls
      or S seconds.
"""
import argparse, json, socket, ssl, sys, threading, time, uuid


def read_message(sock, buf):
    """One SIP message off a stream: (text, rest) or (None, buf) when the peer closed."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        rest += chunk
    return (head + b"\r\n\r\n" + rest[:length]).decode(errors="replace"), rest[length:]


def headers(msg, name):
    out = []
    for line in msg.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        n, _, v = line.partition(":")
        if n.strip().lower() == name.lower():
            out.append(v.strip())
    return out


def status_of(msg):
    first = msg.split("\r\n", 1)[0]
    return int(first.split()[1]) if first.startswith("SIP/2.0") else None


def client_context(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.check_hostname = False
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    return ctx


def connect(args):
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout)
    try:
        return client_context(args).wrap_socket(raw), None
    except (ssl.SSLError, OSError) as e:
        raw.close()
        return None, str(e)


def request(method, uri, port, lport, call_id, cseq, to_tag=None, routes=(), body=""):
    lines = [f"{method} {uri} SIP/2.0",
             f"Via: SIP/2.0/TLS 127.0.0.1:{lport};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport",
             "Max-Forwards: 70",
             f"From: <sip:caller@127.0.0.1>;tag=tls{call_id[:8]}",
             f"To: <sip:{uri.split(':', 1)[1].split('@')[0]}@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""),
             f"Call-ID: {call_id}", f"CSeq: {cseq} {method}",
             f"Contact: <sip:caller@127.0.0.1:{lport};transport=tls>"]
    lines += [f"Route: {r}" for r in routes]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"


def call(args):
    sock, error = connect(args)
    if sock is None:
        return {"handshake": "failed", "error": error}
    out = {"handshake": "ok", "invite": [], "closed": False}
    lport = sock.getsockname()[1]
    call_id = uuid.uuid4().hex
    uri = f"sip:{args.to}@127.0.0.1:{args.port};transport=tls"
    buf = b""
    try:
        sock.sendall(request("INVITE", uri, args.port, lport, call_id, 1, body=SDP))
        final = None
        while final is None:
            msg, buf = read_message(sock, buf)
            if msg is None:
                out["closed"] = True
                return out
            s = status_of(msg)
            if s is None:
                continue
            out["invite"].append(s)
            if s >= 200:
                final = msg
        if status_of(final) != 200:
            return out
        rr = headers(final, "Record-Route")
        out["record_route"] = rr
        to_tag = headers(final, "To")[0].split("tag=")[1].split(";")[0]
        contact = headers(final, "Contact")[0].strip("<>").split(">")[0]
        routes = list(reversed([r for line in rr for r in line.split(",")]))
        sock.sendall(request("ACK", contact, args.port, lport, call_id, 1, to_tag, routes))
        time.sleep(args.hold)
        sock.sendall(request("BYE", contact, args.port, lport, call_id, 2, to_tag, routes))
        while True:
            msg, buf = read_message(sock, buf)
            if msg is None:
                out["closed"] = True
                return out
            if status_of(msg) and headers(msg, "CSeq")[0].endswith("BYE"):
                out["bye"] = status_of(msg)
                return out
    except (OSError, ssl.SSLError) as e:
        out["closed"] = True
        out["error"] = str(e)
        return out
    finally:
        sock.close()


def options(args):
    sock, error = connect(args)
    if sock is None:
        return {"handshake": "failed", "error": error}
    out = {"handshake": "ok"}
    cert = sock.getpeercert()
    if cert:
        out["peer_subject"] = ",".join(f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn)
    try:
        lport = sock.getsockname()[1]
        sock.sendall(request("OPTIONS", f"sip:proxy@127.0.0.1:{args.port};transport=tls", args.port, lport, uuid.uuid4().hex, 1))
        msg, _ = read_message(sock, b"")
        out["status"] = status_of(msg) if msg else None
        out["closed"] = msg is None
    except (OSError, ssl.SSLError) as e:
        out["closed"] = True
        out["error"] = str(e)
    finally:
        sock.close()
    return out


def response(msg, status, reason, to_tag, port, body=""):
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in headers(msg, "Via")]
    lines += [f"Record-Route: {r}" for r in headers(msg, "Record-Route")]
    lines += [f"From: {headers(msg, 'From')[0]}"]
    to = headers(msg, "To")[0]
    lines += [f"To: {to}" + (f";tag={to_tag}" if to_tag and "tag=" not in to else "")]
    lines += [f"Call-ID: {headers(msg, 'Call-ID')[0]}", f"CSeq: {headers(msg, 'CSeq')[0]}",
              f"Contact: <sip:node@127.0.0.1:{port};transport=tls>"]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def node(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.ca:
        ctx.load_verify_locations(args.ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    server = socket.create_server(("127.0.0.1", args.port))
    server.settimeout(0.5)
    deadline = time.time() + args.seconds
    calls = [0]
    lock = threading.Lock()

    def serve(conn):
        buf = b""
        try:
            conn.settimeout(max(0.1, deadline - time.time()))
            while True:
                msg, buf = read_message(conn, buf)
                if msg is None:
                    return
                method = msg.split(" ", 1)[0]
                if method == "OPTIONS":
                    conn.sendall(response(msg, 200, "OK", "n1", args.port))
                elif method == "INVITE":
                    conn.sendall(response(msg, 180, "Ringing", "n1", args.port))
                    conn.sendall(response(msg, 200, "OK", "n1", args.port, SDP))
                    via = headers(msg, "Via")[0]
                    print(json.dumps({"call_id": headers(msg, "Call-ID")[0], "via_transport": via.split()[0],
                                      "record_route": headers(msg, "Record-Route")}), flush=True)
                elif method == "BYE":
                    conn.sendall(response(msg, 200, "OK", None, args.port))
                    with lock:
                        calls[0] += 1
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()

    while time.time() < deadline and calls[0] < args.count:
        try:
            raw, _ = server.accept()
        except socket.timeout:
            continue
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            continue
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
    time.sleep(0.2)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["call", "options", "node"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--to", default="+15551230001")
    p.add_argument("--hold", type=float, default=0.2)
    p.add_argument("--timeout", type=float, default=5)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--seconds", type=float, default=30)
    args = p.parse_args()
    if args.mode == "node":
        node(args)
    else:
        print(json.dumps(call(args) if args.mode == "call" else options(args)), flush=True)


if __name__ == "__main__":
    main()
