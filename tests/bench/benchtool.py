#!/usr/bin/python3
"""fennec benchmark helpers, called by tests/bench/run.sh (standard library only).

  benchtool.py wait PORT QNAME DEADLINE_S
      Sends QNAME/A over UDP to 127.0.0.1:PORT every 5 ms until an authoritative NOERROR
      answer with at least one record comes back; prints the wall clock (ns since the
      epoch) at which it arrived. Exit 1 when DEADLINE_S passes first.
  benchtool.py dnsperf SECS FILE...
      Summary of dnsperf outputs (several processes are added up): offered=sent/SECS
      completed=N lost=N qps=completed/SECS avg_ms=X
  benchtool.py overload SECS FILE...
      Same for `dnsperf -v` runs, plus the latency of the answered queries:
      offered=sent/SECS goodput=completed/SECS lost=N p50=MS p99=MS max=MS
  benchtool.py recovery PORT QUERYFILE SECS RATE CGROUP_DIR TIMEOUT_S PID...
      Puts every thread of PID... into CGROUP_DIR, offers RATE qps with dnsperf (CPU 0,
      the same load as the overload figure) for SECS seconds, stops dnsperf, moves the threads back to the root of the cpu
      hierarchy, then probes with one query every 10 ms. Prints recovery_ms=T: the time
      from that moment to the first probe answered within 5 ms that is followed by 1 s of
      probes all answered within 5 ms (nan when that did not happen within TIMEOUT_S),
      and the counts of probes sent and answered in time.
  benchtool.py report RAWFILE
      The results table (medians), the individual runs and the ratio lines from the raw
      lines "FIGURE SERVER RUN VALUE" that run.sh wrote.
"""

import math
import os
import select
import socket
import statistics
import struct
import subprocess
import sys
import time

PROBE_INTERVAL = 0.010  # recovery: one probe every 10 ms
PROBE_GOOD = 0.005  # answered within 5 ms = normal
PROBE_STABLE = 1.0  # ... and every probe for this long after it as well


def query_wire(qid, qname, qtype=1):
    wire = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in qname.rstrip(".").split("."):
        wire += bytes([len(label)]) + label.encode()
    return wire + b"\x00" + struct.pack("!HH", qtype, 1)


def answer_ok(data, qid):
    """True for a response to QID that is authoritative NOERROR with an answer."""
    if len(data) < 12:
        return False
    rid, flags, _qd, an = struct.unpack("!HHHH", data[:8])
    return rid == qid and flags & 0x8000 and flags & 0x0400 and (flags & 0xF) == 0 and an > 0


def response_id(data):
    if len(data) < 12 or not data[2] & 0x80:
        return None
    return struct.unpack("!H", data[:2])[0]


def recv_until(sock, end, match):
    """The first datagram on SOCK for which MATCH is true, or None at monotonic time END."""
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return None
        try:
            data = sock.recv(65535)
        except OSError:
            continue
        if match(data):
            return data


def cmd_wait(port, qname, deadline_s):
    end = time.monotonic() + float(deadline_s)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    qid = 1
    while time.monotonic() < end:
        qid = (qid + 1) & 0xFFFF or 1
        try:
            sock.sendto(query_wire(qid, qname), ("127.0.0.1", int(port)))
        except OSError:
            pass  # nothing listening yet (ICMP error reported on a later call)
        if recv_until(sock, time.monotonic() + 0.005, lambda d: answer_ok(d, qid)):
            print(time.time_ns())
            return 0
    return 1


# The overload load: PROCS dnsperf processes on CPU 0, each offering RATE/PROCS qps. One
# dnsperf with a large -q sends far below its -Q here, and a query that is neither answered
# nor timed out holds one of its -q slots; with 5 processes, -q 20000 and -t 1 the offered
# rate stays at RATE while the server answers 0..RATE qps. Answers later than 1 s count
# as lost.
OVERLOAD_PROCS = 5
OVERLOAD_ARGS = ["-c", "2", "-T", "1", "-q", "20000", "-t", "1"]


def dnsperf_counts(paths):
    sent = done = lost = 0
    wsum = 0.0
    lat = []
    for path in paths:
        n = 0
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("> "):
                    try:
                        lat.append(float(line.split()[-1]))
                    except ValueError:
                        pass
                elif "Queries sent:" in line:
                    sent += int(line.split()[2])
                elif "Queries completed:" in line:
                    n = int(line.split()[2])
                    done += n
                elif "Queries lost:" in line:
                    lost += int(line.split()[2])
                elif "Average Latency (s):" in line:
                    wsum += float(line.split()[3]) * 1000 * n
    avg = wsum / done if done else float("nan")
    return sent, done, lost, avg, lat


def cmd_dnsperf(secs, paths):
    sent, done, lost, avg, _ = dnsperf_counts(paths)
    secs = float(secs)
    print(f"offered={sent / secs:.0f} completed={done} lost={lost} qps={done / secs:.0f} "
          f"avg_ms={avg:.3f}")
    return 0 if done > 0 else 1


def cmd_overload(secs, paths):
    sent, done, lost, _, lat = dnsperf_counts(paths)
    lat.sort()

    def q(f):
        if not lat:
            return float("nan")
        return lat[min(len(lat) - 1, int(f * len(lat)))] * 1000

    print(f"offered={sent / float(secs):.0f} goodput={done / float(secs):.0f} lost={lost} p50={q(0.5):.2f} p99={q(0.99):.2f} "
          f"max={q(1.0):.2f} answered={len(lat)}")
    return 0 if done > 0 else 1


def move_threads(pids, cgdir):
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(os.path.join(cgdir, "tasks"), "w") as f:
                    f.write(tid)
            except OSError:
                pass  # thread gone meanwhile


def cmd_recovery(port, qfile, secs, rate, cgdir, timeout_s, pids):
    secs = float(secs)
    root = os.path.dirname(cgdir.rstrip("/"))
    move_threads(pids, cgdir)
    perfs = []
    try:
        for _ in range(OVERLOAD_PROCS):
            perfs.append(subprocess.Popen(
                ["taskset", "-c", "0", "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d",
                 qfile, "-l", str(int(secs) + 30), "-Q", str(int(rate) // OVERLOAD_PROCS)] +
                OVERLOAD_ARGS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(secs)
    finally:
        for p in perfs:
            p.kill()
        for p in perfs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        move_threads(pids, root)
    t0 = time.monotonic()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", int(port)))
    sent = good = 0
    streak = None  # send time (relative to t0) of the first probe of the current good run
    recovered = float("nan")
    qid = 0
    while True:
        due = t0 + sent * PROBE_INTERVAL
        now = time.monotonic()
        if now - t0 > float(timeout_s):
            break
        if due > now:
            time.sleep(due - now)
        qid = (qid + 1) & 0xFFFF or 1
        t_send = time.monotonic()
        try:
            sock.send(query_wire(qid, "h1.example.com"))
        except OSError:
            pass
        sent += 1
        rtt = None
        if recv_until(sock, t_send + PROBE_INTERVAL, lambda d: response_id(d) == qid):
            rtt = time.monotonic() - t_send
        if rtt is not None and rtt <= PROBE_GOOD:
            good += 1
            rel = t_send - t0
            if streak is None:
                streak = rel
            if rel - streak >= PROBE_STABLE:
                recovered = streak * 1000
                break
        else:
            streak = None
    print(f"recovery_ms={recovered:.1f} probes={sent} good={good}")
    return 0


# --- report -------------------------------------------------------------------------------

SERVERS = ["nsd", "knot", "fennec", "fennec-nocc"]
# figure, label, format, servers it applies to (None = all)
ROWS = [
    ("steady_cpu_us", "steady: CPU us/query @offered", "{:.2f}", ["nsd", "knot", "fennec"]),
    ("steady_lost", "steady: lost queries", "{:.0f}", ["nsd", "knot", "fennec"]),
    ("max_qps", "max: answered qps (1 worker)", "{:.0f}", ["nsd", "knot", "fennec"]),
    ("max_lost", "max: lost queries", "{:.0f}", ["nsd", "knot", "fennec"]),
    ("over_offered", "overload: offered qps (sent)", "{:.0f}", None),
    ("over_goodput", "overload: goodput qps", "{:.0f}", None),
    ("over_p50", "overload: p50 ms (answered)", "{:.2f}", None),
    ("over_p99", "overload: p99 ms (answered)", "{:.2f}", None),
    ("over_lost", "overload: lost queries", "{:.0f}", None),
    ("recovery_ms", "recovery: ms to normal", "{:.0f}", ["fennec", "fennec-nocc"]),
    ("load_s", "zone load: start->answer s", "{:.2f}", ["nsd", "knot", "fennec"]),
    ("load_rss_mib", "zone load: RSS MiB", "{:.0f}", ["nsd", "knot", "fennec"]),
    ("scale_1w_qps", "scaling: 1 worker qps (unpinned)", "{:.0f}", ["fennec"]),
    ("scale_2w_qps", "scaling: 2 workers qps (unpinned)", "{:.0f}", ["fennec"]),
]


def fnum(x):
    try:
        return float(x)
    except ValueError:
        return float("nan")


def median(vals):
    """Median with nan (a run that gave no figure) counted as the worst (largest) value."""
    if not vals:
        return None
    if any(math.isnan(v) for v in vals):
        ordered = sorted(vals, key=lambda v: (math.isnan(v), 0.0 if math.isnan(v) else v))
        return ordered[len(ordered) // 2]
    return statistics.median(vals)


def cell(fmt, v):
    if v is None:
        return "-"
    if math.isnan(v):
        return "n/a"
    return fmt.format(v)


def cmd_report(raw):
    data = {}  # (figure, server) -> [values in run order]
    with open(raw) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "#":
                continue
            if len(parts) != 4:
                continue
            fig, srv, _run, val = parts
            data.setdefault((fig, srv), []).append(fnum(val))
    med = {k: median(v) for k, v in data.items()}
    w0, w = 34, 13
    out = []
    out.append("figure".ljust(w0) + "".join(s.rjust(w) for s in SERVERS))
    out.append("-" * (w0 + w * len(SERVERS)))
    for fig, label, fmt, _only in ROWS:
        if not any((fig, s) in data for s in SERVERS):
            continue
        out.append(label.ljust(w0) +
                   "".join(cell(fmt, med.get((fig, s))).rjust(w) for s in SERVERS))
    out.append("")
    out.append("individual runs: median [run 1, run 2, ...]")
    for fig, label, fmt, _only in ROWS:
        for s in SERVERS:
            if (fig, s) in data:
                runs = " ".join(cell(fmt, v) for v in data[(fig, s)])
                out.append(f"  {fig:14} {s:12} {cell(fmt, med[(fig, s)]):>10}  [{runs}]")
    out.append("")

    def ratio(fig, a, b):
        x, y = med.get((fig, a)), med.get((fig, b))
        if x is None or y is None or math.isnan(x) or math.isnan(y) or y == 0:
            return "n/a"
        return f"{x / y:.2f}"

    for peer in ("knot", "nsd"):
        out.append(f"ratio fennec/{peer}: cpu_per_query={ratio('steady_cpu_us', 'fennec', peer)}"
                   f" max_qps={ratio('max_qps', 'fennec', peer)}"
                   f" goodput={ratio('over_goodput', 'fennec', peer)}"
                   f" load_time={ratio('load_s', 'fennec', peer)}"
                   f" rss={ratio('load_rss_mib', 'fennec', peer)}")
    if ("scale_2w_qps", "fennec") in med:
        x = med[("scale_2w_qps", "fennec")]
        y1 = med.get(("scale_1w_qps", "fennec"))
        y2 = med.get(("max_qps", "fennec"))
        r1 = f"{x / y1:.2f}" if y1 else "n/a"
        r2 = f"{x / y2:.2f}" if y2 else "n/a"
        out.append(f"ratio fennec 2 workers / 1 worker: unpinned={r1} vs_pinned_max={r2}")
    print("\n".join(out))
    return 0


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    try:
        if cmd == "wait" and len(args) == 3:
            return cmd_wait(*args)
        if cmd == "dnsperf" and len(args) >= 2:
            return cmd_dnsperf(args[0], args[1:])
        if cmd == "overload" and len(args) >= 2:
            return cmd_overload(args[0], args[1:])
        if cmd == "overload-args" and not args:
            print(OVERLOAD_PROCS, " ".join(OVERLOAD_ARGS))
            return 0
        if cmd == "recovery" and len(args) >= 7:
            return cmd_recovery(*args[:6], args[6:])
        if cmd == "report" and len(args) == 1:
            return cmd_report(args[0])
    except KeyboardInterrupt:
        return 130
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
