#!/usr/bin/env python3
"""Helpers of scripts/soak: sample processes, drive the API, write the report and the picture.

  soak.py sample --seconds S --csv F        RSS (KiB) and open fds of each stack process every 5 s
  soak.py api --seconds S --rate R --key K --json F
                                            POST /v1/calls at R/s for S s, then wait for every
                                            call to be completed with its CDR
  soak.py report --csv F --svg F --sipp F --sipp-rc N --api F --stack-died 0|1
"""
import argparse, csv, json, os, sys, threading, time, urllib.error, urllib.request, uuid

API = "http://127.0.0.1:8080"


def role(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None
    if not argv:
        return None
    exe = os.path.basename(argv[0])
    if exe == "switchyard" and len(argv) > 1:
        if argv[1] == "fsnode" and "--name" in argv:
            return "fsnode " + argv[argv.index("--name") + 1]
        return "switchyard " + argv[1]
    if exe == "nats-server":
        return "nats-server"
    if exe == "postgres" and "-D" in argv:
        return "postgres (postmaster)"
    return None


def sample(args):
    deadline = time.time() + args.seconds
    start = time.time()
    with open(args.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t", "pid", "process", "rss_kib", "fds"])
        while time.time() < deadline:
            t = round(time.time() - start, 1)
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                name = role(pid)
                if name is None:
                    continue
                try:
                    with open(f"/proc/{pid}/status") as s:
                        rss = next(int(l.split()[1]) for l in s if l.startswith("VmRSS:"))
                    fds = len(os.listdir(f"/proc/{pid}/fd"))
                except (OSError, StopIteration):
                    continue
                w.writerow([t, pid, name, rss, fds])
            f.flush()
            time.sleep(5)


def request(method, path, key, body=None, idem=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data:
        req.add_header("Content-Type", "application/json")
    if idem:
        req.add_header("Idempotency-Key", idem)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None
    except (OSError, ValueError):
        return 0, None


def api(args):
    created, errors = [], {}
    start = time.time()
    n = 0
    while time.time() - start < args.seconds:
        due = start + n / args.rate
        if due > time.time():
            time.sleep(due - time.time())
        n += 1
        status, body = request("POST", "/v1/calls", args.key,
                               {"to": "+15551234567", "from": "+15557654321", "url": "https://example.com/twiml"},
                               idem=uuid.uuid4().hex)
        if status == 201 and body and "id" in body:
            created.append(body["id"])
        else:
            errors[str(status)] = errors.get(str(status), 0) + 1
    # Every call must end as completed and have its CDR (the node hangs up after 3 s).
    pending = set(created)
    statuses = {}
    deadline = time.time() + 90
    while pending and time.time() < deadline:
        for cid in list(pending):
            s, b = request("GET", f"/v1/calls/{cid}", args.key)
            if s == 200 and b and b.get("status") in ("completed", "failed", "busy", "no-answer", "canceled"):
                c, _ = request("GET", f"/v1/calls/{cid}/cdr", args.key)
                if c == 200 or b.get("status") != "completed":
                    statuses[b["status"]] = statuses.get(b["status"], 0) + 1
                    pending.discard(cid)
        if pending:
            time.sleep(2)
    result = {"offered": n, "created": len(created), "create_errors": errors, "final": statuses,
              "unfinished": len(pending), "failed": n - statuses.get("completed", 0)}
    with open(args.json, "w") as f:
        json.dump(result, f)
    sys.exit(0 if result["failed"] == 0 else 1)


def report(args):
    rows = list(csv.DictReader(open(args.csv)))
    series = {}
    for r in rows:
        series.setdefault(r["process"], []).append((float(r["t"]), int(r["rss_kib"]), int(r["fds"])))
    lines = ["process                       RSS MiB: first  after 60s     last      max  growth*   fds: first  last  max"]
    for name in sorted(series):
        s = series[name]
        first = s[0][1]
        warm = next((x[1] for x in s if x[0] >= 60), s[-1][1])
        last = s[-1][1]
        peak = max(x[1] for x in s)
        growth = (last - warm) / warm * 100 if warm else 0
        lines.append(f"{name:28s} {first/1024:9.1f} {warm/1024:10.1f} {last/1024:8.1f} {peak/1024:8.1f} {growth:+7.1f}%"
                     f" {s[0][2]:10d} {s[-1][2]:5d} {max(x[2] for x in s):4d}")
    lines.append("* growth: last sample against the first one after 60 s of load")
    sip_total = sip_ok = sip_failed = 0
    try:
        last = list(csv.DictReader(open(args.sipp), delimiter=";"))[-1]
        sip_total = int(last.get("TotalCallCreated", 0))
        sip_ok = int(last.get("SuccessfulCall(C)", 0))
        sip_failed = int(last.get("FailedCall(C)", 0))
    except (OSError, IndexError, ValueError):
        sip_failed = -1
    api_result = json.load(open(args.api)) if os.path.exists(args.api) else {"failed": -1}
    lines.append(f"SIP calls: {sip_total} created, {sip_ok} successful, {sip_failed} failed (sipp exit {args.sipp_rc})")
    lines.append(f"API calls: {json.dumps(api_result)}")
    lines.append(f"stack died during the run: {'yes' if args.stack_died else 'no'}")
    print("\n".join(lines))
    svg(series, args.svg)
    ok = sip_failed == 0 and args.sipp_rc == 0 and api_result.get("failed") == 0 and not args.stack_died
    sys.exit(0 if ok else 1)


def svg(series, path):
    w, h, left, bottom, top, right = 900, 480, 70, 40, 20, 230
    tmax = max((x[0] for s in series.values() for x in s), default=1) or 1
    rmax = max((x[1] for s in series.values() for x in s), default=1) / 1024 * 1.1 or 1
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    px = lambda t: left + (w - left - right) * t / tmax
    py = lambda r: h - bottom - (h - top - bottom) * (r / 1024) / rmax
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="14" font-size="13">RSS over time (soak)</text>',
           f'<line x1="{left}" y1="{h-bottom}" x2="{w-right}" y2="{h-bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h-bottom}" stroke="black"/>']
    for i in range(6):
        r = rmax * i / 5
        y = h - bottom - (h - top - bottom) * i / 5
        out.append(f'<text x="{left-6}" y="{y+4}" text-anchor="end">{r:.0f} MiB</text>')
        out.append(f'<line x1="{left}" y1="{y}" x2="{w-right}" y2="{y}" stroke="#eee"/>')
        t = tmax * i / 5
        out.append(f'<text x="{px(t)}" y="{h-bottom+16}" text-anchor="middle">{t:.0f} s</text>')
    for i, name in enumerate(sorted(series)):
        c = colors[i % len(colors)]
        pts = " ".join(f"{px(t):.1f},{py(r):.1f}" for t, r, _ in series[name])
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{pts}"/>')
        out.append(f'<rect x="{w-right+10}" y="{top+i*16}" width="10" height="10" fill="{c}"/>')
        out.append(f'<text x="{w-right+26}" y="{top+i*16+9}">{name}</text>')
    out.append("</svg>")
    open(path, "w").write("\n".join(out))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample"); s.add_argument("--seconds", type=float, required=True); s.add_argument("--csv", required=True)
    a = sub.add_parser("api"); a.add_argument("--seconds", type=float, required=True); a.add_argument("--rate", type=float, required=True)
    a.add_argument("--key", required=True); a.add_argument("--json", required=True)
    r = sub.add_parser("report")
    for k in ("--csv", "--svg", "--sipp", "--api"):
        r.add_argument(k, required=True)
    r.add_argument("--sipp-rc", type=int, default=0); r.add_argument("--stack-died", type=int, default=0)
    args = p.parse_args()
    {"sample": sample, "api": api, "report": report}[args.cmd](args)


if __name__ == "__main__":
    main()
