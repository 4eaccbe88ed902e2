#!/usr/bin/python3
"""Integration test of the control plane: a real fennecd driven by the real fennecctl and curl.

usage: test_ctl.py [--cluster] [FENNECD [FENNECCTL]]   (or env FENNECD / FENNECCTL; fennecctl
defaults to the fennecctl next to fennecd)

Needs curl, dig (bind9-dnsutils), promtool (package prometheus) and the python3 module
prometheus_client (package python3-prometheus-client); a missing one fails the test, naming
the package. Listens on 127.0.0.1 ports 15710-15717 only (FENNEC_CTL_PORT_BASE moves them).

--cluster runs the two-node part instead: a primary and a secondary on ports 15718-15722
(base + 8 to base + 12): membership, the replication views and ?wait=all while a secondary
is stopped (SIGSTOP). It needs membership changes in the write path and the replication
stream; when the build has neither it says which is missing and exits 77 (ctest: skipped).

Record edits are in memory only in this version (no journal yet); the test pins down what a
reload does to them (see docs/cli.md, "Record edits and reloads").
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# FENNEC_CTL_PORT_BASE moves the eight ports (two test runs on one host must not share them).
PORT_BASE = int(os.environ.get("FENNEC_CTL_PORT_BASE", "15710"))
CONTROL_PORT = PORT_BASE
DNS_PORT = PORT_BASE + 1
CONTROL_PORT_NOKEY = PORT_BASE + 2
DNS_PORT_NOKEY = PORT_BASE + 3
CONTROL_PORT_CODEL = PORT_BASE + 4
DNS_PORT_CODEL = PORT_BASE + 5
CONTROL_PORT_CUBIC = PORT_BASE + 6
DNS_PORT_CUBIC = PORT_BASE + 7
CONTROL_PORT_P = PORT_BASE + 8   # --cluster: the primary
DNS_PORT_P = PORT_BASE + 9
REPL_PORT_P = PORT_BASE + 10
CONTROL_PORT_S = PORT_BASE + 11  # --cluster: the secondary
DNS_PORT_S = PORT_BASE + 12
URL = "http://127.0.0.1:%d" % CONTROL_PORT
SKIP = 77  # exit code ctest reads as "skipped" (SKIP_RETURN_CODE)
ZONE = "example.com"
SERIAL = 2024010101
BIG = "big.test"  # a zone that takes a while to load, for the tests of concurrent requests

failures = []


def check(cond, what, detail=""):
    if cond:
        print("ok   %s" % what)
    else:
        print("FAIL %s %s" % (what, detail))
        failures.append(what)
    return cond


def need(tool, package):
    if not shutil.which(tool):
        print("FAIL %s is missing: install the Debian package %s" % (tool, package))
        sys.exit(1)


def zone_text(serial, extra=""):
    return (
        "$ORIGIN example.com.\n$TTL 300\n"
        "@ IN SOA ns1 hostmaster %d 7200 3600 1209600 300\n"
        "@ IN NS ns1\nns1 IN A 127.0.0.1\nwww IN A 192.0.2.10\nalias IN CNAME www\n%s"
        % (serial, extra)
    )


def big_zone_text(hosts):
    lines = ["$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n"
             "@ IN NS ns1\nns1 IN A 127.0.0.1\n"]
    lines += ["h%d IN A 10.%d.%d.%d\n" % (i, i >> 16 & 255, i >> 8 & 255, i & 255)
              for i in range(hosts)]
    return "".join(lines)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def config(node, control_port, dns_port, key_file, workers=2, overload=None, more_zones=()):
    text = (
        "node:\n  id: %s\n  role: primary\n  data_dir: ./data-%s\n"
        "listen:\n  dns: [\"127.0.0.1:%d\"]\n  control: \"127.0.0.1:%d\"\n"
        "workers: %d\nzones:\n  - name: example.com\n    file: zones/example.com.zone\n"
        % (node, node, dns_port, control_port, workers)
    )
    for name in more_zones:
        text += "  - name: %s\n    file: zones/%s.zone\n" % (name, name)
    if key_file:
        text += "cluster:\n  key_file: %s\n" % key_file
    if overload:
        text += "overload:\n" + overload
    return text


def http(method, path, body=None, token=None, headers=None, base=URL):
    """Returns (status, parsed JSON or text)."""
    req = urllib.request.Request(base + path, data=body, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, data, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    if ctype.startswith("application/json"):
        return status, json.loads(data)
    return status, data.decode()


def curl(args):
    """Runs curl and returns (http status, body)."""
    p = subprocess.run(
        ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"] + args,
        capture_output=True, text=True, timeout=20)
    body, _, code = p.stdout.rpartition("\n")
    return int(code or 0), body


def dig(name, qtype="A", tcp=False, port=DNS_PORT):
    args = ["dig", "+time=2", "+tries=1", "-p", str(port), "@127.0.0.1", name, qtype]
    if tcp:
        args.append("+tcp")
    p = subprocess.run(args, capture_output=True, text=True, timeout=10)
    return p.stdout


def dig_full(name, qtype="A", tcp=False, port=DNS_PORT):
    """Asks with dig; returns (status, answer, authority) where the sections are lists of
    (owner, ttl, type, rdata text) as dig prints them, or (None, [], []) without an answer."""
    out = dig(name, qtype, tcp, port)
    status, section, sections = None, None, {"ANSWER": [], "AUTHORITY": []}
    for line in out.splitlines():
        if line.startswith(";; ->>HEADER<<-"):
            status = line.split("status: ")[1].split(",")[0]
        elif line.startswith(";; ") and line.endswith(" SECTION:"):
            section = line[3:].split()[0]
        elif not line.strip():
            section = None
        elif section in sections and not line.startswith(";"):
            parts = line.split(None, 4)
            sections[section].append((parts[0], int(parts[1]), parts[3],
                                      parts[4] if len(parts) > 4 else ""))
    return status, sections["ANSWER"], sections["AUTHORITY"]


def served_serial(tcp=False):
    out = dig(ZONE, "SOA", tcp=tcp)
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 7 and not line.startswith(";") and parts[3] == "SOA":
            return int(parts[6])
    return None


def rdatas(name, qtype, tcp=False):
    """The sorted rdata texts of NAME/QTYPE in the answer section, with the status."""
    status, ans, _ = dig_full(name, qtype, tcp)
    return status, sorted(r[3] for r in ans if r[2] == qtype and r[0] == name + ".")


class Ctl:
    def __init__(self, binary):
        self.binary = binary

    def run(self, *args, key=None, env_extra=None, stdin=None):
        env = dict(os.environ)
        env.pop("FENNEC_KEY_FILE", None)
        env.pop("FENNEC_URL", None)
        env.update(env_extra or {})
        cmd = [self.binary, "-s", URL]
        if key:
            cmd += ["--key-file", key]
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, env=env,
                           timeout=30, input=stdin if stdin is not None else "")
        return p.returncode, p.stdout, p.stderr


def start_daemon(fennecd, workdir, cfg_name, log_name, port):
    log = open(os.path.join(workdir, log_name), "w")
    proc = subprocess.Popen([fennecd, "-c", cfg_name], cwd=workdir, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            status, _ = http("GET", "/v1/status", base="http://127.0.0.1:%d" % port)
            if status == 200:
                return proc
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    log.close()
    with open(os.path.join(workdir, log_name)) as f:
        print(f.read())
    print("FAIL fennecd did not open its control endpoint on port %d within 15 s (does "
          "node/main.c call control_new() and control_start()?)" % port)
    sys.exit(1)


def stop_daemon(proc, workdir, log_name, what):
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = None
    with open(os.path.join(workdir, log_name)) as f:
        log = f.read()
    check(rc == 0, "%s exits 0 on SIGTERM" % what, "rc=%r" % rc)
    bad = [l for l in log.splitlines() if "Sanitizer" in l or "runtime error" in l]
    check(not bad, "%s log free of sanitizer reports" % what, "\n".join(bad[:20]))


def metrics_families(text):
    from prometheus_client.parser import text_string_to_metric_families
    samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def metric(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def main():
    args = sys.argv[1:]
    cluster = "--cluster" in args
    args = [a for a in args if a != "--cluster"]
    fennecd = (args[0] if args else None) or os.environ.get("FENNECD")  # the command line wins
    if not fennecd:
        print("usage: test_ctl.py [--cluster] FENNECD [FENNECCTL]")
        return 2
    fennecctl = (args[1] if len(args) > 1 else None) or os.environ.get("FENNECCTL") or \
        os.path.join(os.path.dirname(fennecd), "fennecctl")
    fennecd, fennecctl = os.path.abspath(fennecd), os.path.abspath(fennecctl)
    need("curl", "curl")
    need("dig", "bind9-dnsutils")
    need("promtool", "prometheus")
    try:
        import prometheus_client.parser  # noqa: F401
    except ImportError:
        print("FAIL python3 module prometheus_client is missing: install the Debian package "
              "python3-prometheus-client")
        return 1
    for b in (fennecd, fennecctl):
        if not os.access(b, os.X_OK):
            print("FAIL %s is not an executable" % b)
            return 1
    if cluster:
        return cluster_main(fennecd, fennecctl)

    work = tempfile.mkdtemp(prefix="fennec-ctl-")
    os.makedirs(os.path.join(work, "zones"))
    zone_file = os.path.join(work, "zones", "example.com.zone")
    write(zone_file, zone_text(SERIAL))
    write(os.path.join(work, "zones", BIG + ".zone"), big_zone_text(1))
    key_path = os.path.join(work, "cluster.key")
    key = subprocess.run(["openssl", "rand", "-hex", "32"], capture_output=True, text=True,
                         check=True).stdout.strip()
    write(key_path, key + "\n")
    os.chmod(key_path, 0o600)
    token = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", key],
                           input="fennec-control", capture_output=True, text=True,
                           check=True).stdout.split()[-1]
    write(os.path.join(work, "fennec.yaml"),
          config("ctl1", CONTROL_PORT, DNS_PORT, "cluster.key", more_zones=(BIG,)))
    write(os.path.join(work, "nokey.yaml"),
          config("ctl2", CONTROL_PORT_NOKEY, DNS_PORT_NOKEY, None))

    write(os.path.join(work, "codel.yaml"),
          config("ctl3", CONTROL_PORT_CODEL, DNS_PORT_CODEL, None, workers=1,
                 overload="  codel: { target: 1us, interval: 2us }\n"
                          "  cubic: { enabled: false }\n"))
    write(os.path.join(work, "cubic.yaml"),
          config("ctl4", CONTROL_PORT_CUBIC, DNS_PORT_CUBIC, None, workers=1,
                 overload="  codel: { enabled: false }\n"
                          "  cubic: { utilization_threshold: 0.001, c: 0.001, beta: 0.1, "
                          "ema_alpha: 0.99, min_rate: 1 }\n"))

    ctl = Ctl(fennecctl)
    proc = start_daemon(fennecd, work, "fennec.yaml", "fennecd.log", CONTROL_PORT)
    try:
        run_tests(ctl, work, zone_file, key_path, token, proc)
    finally:
        stop_daemon(proc, work, "fennecd.log", "fennecd")

    # Overload shedding is counted by reason: one daemon per mechanism, tuned to shed at once.
    for reason, cfg_name, cport, dport in (("codel", "codel.yaml", CONTROL_PORT_CODEL,
                                            DNS_PORT_CODEL),
                                           ("cubic", "cubic.yaml", CONTROL_PORT_CUBIC,
                                            DNS_PORT_CUBIC)):
        log_name = reason + ".log"
        proc = start_daemon(fennecd, work, cfg_name, log_name, cport)
        try:
            overload_test(reason, cport, dport)
        finally:
            stop_daemon(proc, work, log_name, "fennecd with aggressive %s" % reason)

    # A node without cluster.key_file refuses every write with 403, whatever the token.
    proc = start_daemon(fennecd, work, "nokey.yaml", "nokey.log", CONTROL_PORT_NOKEY)
    try:
        base = "http://127.0.0.1:%d" % CONTROL_PORT_NOKEY
        status, body = http("POST", "/v1/zones/example.com/reload", token=token, base=base)
        check(status == 403 and "cluster.key_file" in body.get("error", ""),
              "no key file: writes refused with 403 naming cluster.key_file", (status, body))
        status, body = http("GET", "/v1/status", base=base)
        check(status == 200 and body.get("node_id") == "ctl2",
              "no key file: reads still work", (status, body))
    finally:
        stop_daemon(proc, work, "nokey.log", "fennecd without key")

    if failures:
        print("\n%d check(s) failed: %s\n(work folder kept: %s)" % (len(failures),
                                                                    ", ".join(failures), work))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("\nall checks passed")
    return 0


def udp_rcvbuf_errors():
    """The machine's count of UDP datagrams dropped at a full receive buffer."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def udp_burst(port, count):
    """Sends COUNT queries for www.example.com as fast as the socket takes them (reading the
    answers that have arrived every 50 queries), then reads answers until none arrives for
    0.5 s (at most 10 s); returns the number of answers."""
    import socket
    import dns.message
    q = dns.message.make_query("www.example.com", "A").to_wire()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    answers = 0
    try:
        # SO_RCVBUF is capped by net.core.rmem_max (about 200 KiB: some 270 answers of
        # this size); as root, force the 4 MiB so that a slow client loses nothing.
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setblocking(False)
        for i in range(count):
            s.sendto(q, ("127.0.0.1", port))
            # Drain now and then so that answers are never lost to a full client buffer
            # (fennec_udp_answered_total is compared with what arrived).
            while i % 50 == 49:
                try:
                    s.recv(4096)
                    answers += 1
                except BlockingIOError:
                    break
        # A loaded machine (the sanitizer build, tests in parallel) can pause the server for
        # a while: answers still on their way must not be missed.
        s.settimeout(1.5)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                s.recv(4096)
                answers += 1
            except socket.timeout:
                break
        return answers
    finally:
        s.close()


def overload_test(reason, cport, dport):
    """CoDel sheds what it reads (fennec_overload_shed_total{reason="codel"}); CUBIC stops
    reading at its admitted rate (fennec_overload_paced_total) and leaves the excess to the
    kernel queue."""
    base = "http://127.0.0.1:%d" % cport
    family = "fennec_overload_shed_total" if reason == "codel" else "fennec_overload_paced_total"
    labels = {"reason": "codel"} if reason == "codel" else {}
    answers = 0
    rcvbuf_before = udp_rcvbuf_errors()
    for _ in range(5):  # bounded: 5 bursts of 3000 queries
        answers += udp_burst(dport, 3000)
        code, text = curl([base + "/metrics"])
        m = metrics_families(text)
        if (metric(m, family, **labels) or 0) > 0:
            break
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 0, "%s daemon: promtool check metrics" % reason, p.stdout + p.stderr)
    moved = metric(m, family, **labels)
    check(moved is not None and moved > 0, "%s%s moves under overload" % (family, labels), moved)
    other = ("fennec_overload_paced_total", {}) if reason == "codel" else \
        ("fennec_overload_shed_total", {"reason": "codel"})
    check(metric(m, other[0], **other[1]) == 0,
          "%s%s stays 0 when that mechanism is off" % other,
          metric(m, other[0], **other[1]))
    if reason == "cubic":
        check((metric(m, "fennec_overload_congestion_events_total", worker="0") or 0) > 0,
              "cubic daemon: a congestion event is counted", text[-2000:])
        check((metric(m, "fennec_overload_admitted_rate", worker="0") or 1e9) < 1e6,
              "cubic daemon: the admitted rate is limited",
              metric(m, "fennec_overload_admitted_rate", worker="0"))
    received = metric(m, "fennec_udp_received_total")
    parts = {k: metric(m, k) for k in ("fennec_udp_answered_total", "fennec_udp_ignored_total",
                                       "fennec_udp_send_dropped_total",
                                       "fennec_udp_send_errors_total")}
    parts["shed"] = metric(m, "fennec_overload_shed_total", reason="codel")
    check(received is not None and received == sum(parts.values()),
          "%s daemon: every UDP datagram received is answered, shed, ignored or lost" % reason,
          (received, parts))
    # What the server sent is what arrived, but for what the kernel dropped at a full
    # receive buffer (counted machine-wide, so an upper bound of the client's losses).
    dropped = udp_rcvbuf_errors() - rcvbuf_before
    answered = metric(m, "fennec_udp_answered_total")
    check(answered is not None and answers <= answered <= answers + dropped,
          "%s daemon: fennec_udp_answered_total is what the client received" % reason,
          (answered, answers, dropped))
    check(metric(m, "fennec_dns_queries_total", transport="udp") == received - parts["shed"],
          "%s daemon: shed queries are not parsed (not in fennec_dns_queries_total)" % reason,
          (metric(m, "fennec_dns_queries_total", transport="udp"), received, parts["shed"]))
    check((metric(m, "fennec_udp_batches_total") or 0) > 0, "%s daemon: "
          "fennec_udp_batches_total moves" % reason)
    out = dig("www.example.com", port=dport, tcp=True)
    check("192.0.2.10" in out, "%s daemon: TCP still answered (overload control is UDP only)"
          % reason, out)


def wait_log(work, log_name, needle, count, timeout=10):
    """Waits until NEEDLE occurs COUNT times in the log; returns True if it did."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(os.path.join(work, log_name)) as f:
            if f.read().count(needle) >= count:
                return True
        time.sleep(0.05)
    return False


def sighup_reload(proc, work):
    """Sends SIGHUP and waits until fennecd logs that the reload finished."""
    with open(os.path.join(work, "fennecd.log")) as f:
        done = f.read().count("reload: serving")
    proc.send_signal(signal.SIGHUP)
    return wait_log(work, "fennecd.log", "reload: serving", done + 1)


def record_tests(ctl, work, zone_file, key, token, proc):
    """Record edits through fennecctl, checked with dig over UDP and TCP."""
    s0 = served_serial()
    check(s0 == SERIAL + 3, "record edits start from the file's serial", s0)
    new = "new." + ZONE

    # ---- add: JSON for scripts, served at once (no sleep: the edit is published before the
    # API answers)
    rc, out, err = ctl.run("--json", "record", "add", ZONE, "new", "300", "A", "192.0.2.77",
                           key=key)
    index0 = None
    if check(rc == 0, "record add --json exits 0", (rc, out, err)):
        j = json.loads(out)
        index0 = j.pop("index", None)
        check(isinstance(index0, int) and index0 > 0, "record add --json: the change's index",
              index0)
        check(j == {"zone": ZONE, "result": "added", "name": new, "type": "A", "ttl": 300,
                    "serial": s0 + 1}, "record add --json: zone, result, name, type, ttl, "
              "serial + 1", j)
    for tcp in (False, True):
        st, ans, _ = dig_full(new, "A", tcp=tcp)
        check(st == "NOERROR" and ans == [(new + ".", 300, "A", "192.0.2.77")],
              "added record answered at once over %s" % ("TCP" if tcp else "UDP"), (st, ans))
        check(served_serial(tcp=tcp) == s0 + 1, "SOA serial + 1 over %s" %
              ("TCP" if tcp else "UDP"), served_serial(tcp=tcp))

    # ---- add a second record to the RRset: the human line
    rc, out, err = ctl.run("record", "add", ZONE, "NEW", "300", "A", "192.0.2.78", key=key)
    check(rc == 0 and out == "added %s 300 A 192.0.2.78; serial %d\n" % (new, s0 + 2),
          "record add prints one human line with the new serial", (rc, out, err))
    check(rdatas(new, "A") == ("NOERROR", ["192.0.2.77", "192.0.2.78"]),
          "both records of the RRset answered", rdatas(new, "A"))

    # ---- the same record again: 409, nothing changed
    rc, out, err = ctl.run("record", "add", ZONE, "new", "3600", "A", "192.0.2.77", key=key)
    check(rc == 1 and "exists already" in err and "HTTP 409" in err and out == "",
          "adding an existing record: exit 1, 409", (rc, out, err))
    rc, out, err = ctl.run("--json", "record", "add", ZONE, "new", "300", "A", "192.0.2.77",
                           key=key)
    check(rc == 1 and json.loads(out).get("http_status") == 409,
          "adding an existing record --json: 409 as JSON", (rc, out))
    check(served_serial() == s0 + 2, "a refused add leaves the serial alone", served_serial())

    # ---- delete one record of two, then the last one (absolute name; the TTL is not compared)
    rc, out, err = ctl.run("record", "delete", ZONE, "new", "300", "A", "192.0.2.78", key=key)
    check(rc == 0 and out == "deleted %s 300 A 192.0.2.78; serial %d\n" % (new, s0 + 3),
          "record delete prints one human line", (rc, out, err))
    check(rdatas(new, "A") == ("NOERROR", ["192.0.2.77"]), "the other record stays",
          rdatas(new, "A"))
    rc, out, err = ctl.run("--json", "record", "delete", ZONE, new + ".", "0", "A", "192.0.2.77",
                           key=key)
    if check(rc == 0, "record delete --json of the last record exits 0", (rc, out, err)):
        j = json.loads(out)
        check(j.get("result") == "deleted" and j.get("serial") == s0 + 4 and j.get("name") == new,
              "record delete --json: result deleted, serial + 1", j)
        check(index0 is not None and j.get("index") == index0 + 3,
              "one index per applied edit, none for refused ones", (index0, j.get("index")))
    for tcp in (False, True):
        st, ans, auth = dig_full(new, "A", tcp=tcp)
        soa = [a for a in auth if a[2] == "SOA"]
        check(st == "NXDOMAIN" and not ans and len(soa) == 1 and
              int(soa[0][3].split()[2]) == s0 + 4,
              "deleted name is NXDOMAIN with the new SOA over %s" % ("TCP" if tcp else "UDP"),
              (st, ans, auth))

    # ---- deleting a record that is not there: 404, nothing changed
    rc, out, err = ctl.run("record", "delete", ZONE, "new", "300", "A", "192.0.2.77", key=key)
    check(rc == 1 and "no such record" in err and "HTTP 404" in err,
          "deleting a missing record: exit 1, 404", (rc, err))
    rc, out, err = ctl.run("record", "delete", ZONE, "www", "300", "A", "192.0.2.11", key=key)
    check(rc == 1 and "HTTP 404" in err, "deleting a record with other rdata: 404", (rc, err))
    check(served_serial() == s0 + 4, "refused deletes leave the serial alone", served_serial())

    # ---- zone rules: a CNAME cannot have company (RFC 1034 3.6.2)
    rc, out, err = ctl.run("record", "add", ZONE, "alias", "300", "A", "192.0.2.5", key=key)
    check(rc == 1 and "HTTP 422" in err and "CNAME" in err,
          "A beside an existing CNAME: exit 1, 422", (rc, err))
    rc, out, err = ctl.run("record", "add", ZONE, "www", "300", "CNAME", "alias", key=key)
    check(rc == 1 and "HTTP 422" in err and "CNAME" in err,
          "CNAME beside an existing A: exit 1, 422", (rc, err))
    st, ans, _ = dig_full("alias." + ZONE, "A")
    check(st == "NOERROR" and [(a[2], a[3]) for a in ans] ==
          [("CNAME", "www.%s." % ZONE), ("A", "192.0.2.10")],
          "after the refused edits alias is still only a CNAME to www", (st, ans))
    check(rdatas("www." + ZONE, "A") == ("NOERROR", ["192.0.2.10"]), "www unchanged")
    check(served_serial() == s0 + 4, "refused edits leave the serial alone", served_serial())

    # ---- MX and TXT: RDATA with several arguments, spaces and quotes
    serial = s0 + 4
    rc, out, err = ctl.run("record", "add", ZONE, "@", "3600", "MX", "10", "mail", key=key)
    serial += 1
    check(rc == 0 and out == "added %s 3600 MX 10 mail; serial %d\n" % (ZONE, serial),
          "MX from several arguments", (rc, out, err))
    rc, out, err = ctl.run("record", "add", ZONE, "@", "3600", "MX", "20 mx2.example.net.",
                           key=key)
    serial += 1
    check(rc == 0, "MX from one argument", (rc, err))
    check(rdatas(ZONE, "MX", tcp=True) == ("NOERROR", ["10 mail.example.com.",
                                                       "20 mx2.example.net."]),
          "MX answered, relative target completed", rdatas(ZONE, "MX", tcp=True))
    quoted = '"v=spf1 -all" "say \\"hi\\" now"'
    rc, out, err = ctl.run("record", "add", ZONE, "txt", "300", "TXT", quoted, key=key)
    serial += 1
    check(rc == 0 and out == "added txt.%s 300 TXT %s; serial %d\n" % (ZONE, quoted, serial),
          "TXT with quotes, spaces and an escaped quote", (rc, out, err))
    rc, out, err = ctl.run("record", "add", ZONE, "txt", "300", "TXT", "two", "words", key=key)
    serial += 1
    check(rc == 0, "TXT from several unquoted arguments", (rc, err))
    for tcp in (False, True):
        check(rdatas("txt." + ZONE, "TXT", tcp=tcp) == ("NOERROR", ['"two" "words"', quoted]),
              "TXT answered as given over %s" % ("TCP" if tcp else "UDP"),
              rdatas("txt." + ZONE, "TXT", tcp=tcp))
    rc, out, err = ctl.run("record", "delete", ZONE, "txt", "300", "TXT", quoted, key=key)
    serial += 1
    check(rc == 0, "TXT with quotes deleted by the same RDATA", (rc, err))
    check(rdatas("txt." + ZONE, "TXT") == ("NOERROR", ['"two" "words"']),
          "only the other TXT is left", rdatas("txt." + ZONE, "TXT"))
    rc, out, err = ctl.run("record", "delete", ZONE, "@", "3600", "MX", "10 mail.example.com.",
                           key=key)
    serial += 1
    check(rc == 0, "MX deleted with the target written absolute", (rc, err))
    rc, out, err = ctl.run("record", "add", ZONE, "www", "300", "TXT", '"web"', key=key)
    serial += 1
    rc2, out, err2 = ctl.run("record", "delete", ZONE, "www", "300", "TXT", '"web"', key=key)
    serial += 1
    st, ans, auth = dig_full("www." + ZONE, "TXT")
    check(rc == 0 and rc2 == 0 and st == "NOERROR" and not ans and
          any(a[2] == "SOA" for a in auth),
          "a deleted type beside other data is NODATA (NOERROR, SOA)", (rc, rc2, st, ans, auth))
    check(rdatas("www." + ZONE, "A") == ("NOERROR", ["192.0.2.10"]), "www A still there")
    check(served_serial() == serial, "one serial step per edit", (served_serial(), serial))

    # ---- writes without the token or with a wrong one: 401, nothing changed
    rc, out, err = ctl.run("record", "add", ZONE, "sneaky", "300", "A", "192.0.2.66")
    check(rc == 1 and "not authorized" in err and "--key-file" in err,
          "record add without key: exit 1, says how to authorize", (rc, err))
    wrong_key = os.path.join(work, "wrong.key")
    rc, out, err = ctl.run("record", "add", ZONE, "sneaky", "300", "A", "192.0.2.66",
                           key=wrong_key)
    check(rc == 1 and "not authorized" in err, "record add with the wrong key: exit 1", (rc, err))
    body = '{"action":"add","name":"sneaky","ttl":300,"type":"A","rdata":"192.0.2.66"}'
    code, resp = curl(["-X", "POST", "--data-binary", body, URL + "/v1/zones/example.com/records"])
    check(code == 401, "curl record add without token: 401", (code, resp))
    code, resp = curl(["-X", "POST", "-H", "Authorization: Bearer " + token[::-1],
                       "--data-binary", body, URL + "/v1/zones/example.com/records"])
    check(code == 401, "curl record add with a wrong token: 401", (code, resp))
    body = '{"action":"delete","name":"www","ttl":300,"type":"A","rdata":"192.0.2.10"}'
    code, resp = curl(["-X", "POST", "-H", "Authorization: Bearer " + "f" * 64,
                       "--data-binary", body, URL + "/v1/zones/example.com/records"])
    check(code == 401, "curl record delete with a wrong token: 401", (code, resp))
    st, ans, _ = dig_full("sneaky." + ZONE, "A")
    check(st == "NXDOMAIN", "unauthorized add not served", (st, ans))
    check(rdatas("www." + ZONE, "A") == ("NOERROR", ["192.0.2.10"]),
          "unauthorized delete not applied")
    check(served_serial() == serial, "unauthorized writes leave the serial alone")

    # ---- edits and reloads (edits live in memory only in this version)
    rc, out, err = ctl.run("record", "add", ZONE, "kept", "300", "A", "192.0.2.99", key=key)
    serial += 1
    check(rc == 0 and rdatas("kept." + ZONE, "A") == ("NOERROR", ["192.0.2.99"]),
          "edit before the reloads", (rc, err))
    # SIGHUP with the file unchanged (same path, size, mtime): the edited zone is kept.
    check(sighup_reload(proc, work), "SIGHUP reload finished (log)")
    check(rdatas("kept." + ZONE, "A") == ("NOERROR", ["192.0.2.99"]) and
          served_serial() == serial, "SIGHUP with an unchanged file keeps the edits",
          (rdatas("kept." + ZONE, "A"), served_serial(), serial))
    # SIGHUP after only touching the file: its records are what they were at the last load,
    # so it is unchanged and the edits stay.
    st_ = os.stat(zone_file)
    os.utime(zone_file, (st_.st_atime, st_.st_mtime + 5))
    check(sighup_reload(proc, work), "SIGHUP reload after touch finished (log)")
    check(rdatas("kept." + ZONE, "A") == ("NOERROR", ["192.0.2.99"]) and
          served_serial() == serial, "SIGHUP after a touch keeps the edits",
          (rdatas("kept." + ZONE, "A"), served_serial(), serial))
    # SIGHUP after the file's records changed: the file is served (the difference against the
    # served version), the edits are gone, and the serial moves on from the served one since
    # the file's is older (it never goes back).
    with open(zone_file, "a") as f:
        f.write("fromfile 300 IN A 192.0.2.55\n")
    check(sighup_reload(proc, work), "SIGHUP reload after a change finished (log)")
    serial += 1
    check(dig_full("kept." + ZONE, "A")[0] == "NXDOMAIN" and
          dig_full("txt." + ZONE, "TXT")[0] == "NXDOMAIN" and
          rdatas("fromfile." + ZONE, "A") == ("NOERROR", ["192.0.2.55"]) and
          served_serial() == serial,
          "SIGHUP after changing the file drops the edits, serial served + 1",
          (dig_full("kept." + ZONE, "A")[0], served_serial(), serial))
    # zone reload through the API skips an unchanged file, as SIGHUP does: the edit stays.
    rc, out, err = ctl.run("record", "add", ZONE, "kept", "300", "A", "192.0.2.99", key=key)
    serial += 1
    check(rc == 0 and served_serial() == serial, "edit before the API reload", (rc, err))
    rc, out, err = ctl.run("zone", "reload", ZONE, key=key)
    check(rc == 0 and "serial %d" % serial in out, "zone reload with an unchanged file: exit 0, "
          "the served serial", (rc, out, err))
    check(rdatas("kept." + ZONE, "A") == ("NOERROR", ["192.0.2.99"]) and
          served_serial() == serial,
          "zone reload through the API keeps the edits while the file is unchanged",
          (rdatas("kept." + ZONE, "A"), served_serial()))
    # After the file's records change, the API reload serves them: the edits are gone.
    with open(zone_file, "a") as f:
        f.write("fromfile2 300 IN A 192.0.2.56\n")
    rc, out, err = ctl.run("zone", "reload", ZONE, key=key)
    serial += 1
    check(rc == 0 and "serial %d" % serial in out and dig_full("kept." + ZONE, "A")[0] == "NXDOMAIN"
          and rdatas("fromfile2." + ZONE, "A") == ("NOERROR", ["192.0.2.56"])
          and served_serial() == serial, "zone reload after changing the file drops the edits",
          (rc, out, err, served_serial()))


def reload_tests(ctl, zone_file, key, token):
    """A reload says what changed: the file's records served at once, counts and index."""
    s0 = served_serial()
    status, before = http("GET", "/v1/status")
    records0 = {z["name"]: z["records"] for z in before["zones"]}[ZONE]
    write(zone_file, zone_text(s0 + 10, "fresh IN A 192.0.2.55\n"))
    st_ = os.stat(zone_file)
    os.utime(zone_file, (st_.st_atime, st_.st_mtime + 20))
    status, r = http("POST", "/v1/zones/%s/reload" % ZONE, token=token)
    ok = check(status == 200 and r.get("result") == "reloaded" and r.get("serial") == s0 + 10,
               "reload of an edited file: reloaded, the file's serial", (status, r))
    if ok:
        # The file has one record more than zone_text(): the net change is known whatever
        # way the records that stayed are counted.
        check(isinstance(r.get("added"), int) and isinstance(r.get("deleted"), int) and
              r["added"] >= 1 and r["added"] - r["deleted"] == 6 - records0,
              "reload response: records added and deleted", (r, records0))
        check(isinstance(r.get("index"), int) and r["index"] > 0, "reload response: index", r)
    check(rdatas("fresh." + ZONE, "A") == ("NOERROR", ["192.0.2.55"]) and
          served_serial() == s0 + 10, "the reloaded file is served at once",
          (rdatas("fresh." + ZONE, "A"), served_serial()))
    # The same file again: unchanged, nothing applied, the index of the version served.
    status, u = http("POST", "/v1/zones/%s/reload" % ZONE, token=token)
    check(status == 200 and u.get("result") == "unchanged" and u.get("added") == 0 and
          u.get("deleted") == 0 and u.get("serial") == s0 + 10 and
          u.get("index") == r.get("index"), "reload of an unchanged file: unchanged, same index",
          (status, u, r.get("index")))
    rc, out, err = ctl.run("zone", "reload", ZONE, key=key)
    check(rc == 0 and "unchanged" in out and "serial %d" % (s0 + 10) in out,
          "zone reload of an unchanged file says so", (rc, out, err))
    write(zone_file, zone_text(s0 + 11, "fresh IN A 192.0.2.55\nfresh2 IN A 192.0.2.56\n"))
    st_ = os.stat(zone_file)
    os.utime(zone_file, (st_.st_atime, st_.st_mtime + 40))
    rc, out, err = ctl.run("zone", "reload", ZONE, key=key)
    check(rc == 0 and "reloaded" in out and "serial %d" % (s0 + 11) in out and "added" in out,
          "zone reload table: reloaded, serial, what changed", (rc, out, err))


def edit(action, name, rtype, rdata, ttl=300):
    return {"action": action, "name": name, "ttl": ttl, "type": rtype, "rdata": rdata}


def batch_tests(work, token):
    """POST /v1/zones/{zone}/changes: all changes applied with one serial step, or none."""
    path = "/v1/zones/%s/changes" % ZONE
    s0 = served_serial()
    status, r = post_json(path, {"changes": [
        edit("add", "b1", "A", "192.0.2.101"),
        edit("add", "b1", "TXT", '"batch one"'),
        edit("add", "b2", "MX", "10 b1"),
        edit("delete", "fresh", "A", "192.0.2.55")]}, token)
    ok = check(status == 200, "change batch: 200", (status, r))
    if ok:
        index = r.pop("index", None)
        check(isinstance(index, int) and index > 0, "change batch: the change's index", index)
        check(r == {"zone": ZONE, "result": "applied", "applied": 4, "added": 3, "deleted": 1,
                    "serial": s0 + 1}, "change batch answer: zone, applied, added, deleted, "
              "serial + 1", r)
    for tcp in (False, True):
        # No sleep: the batch is served before the answer is sent.
        check(rdatas("b1." + ZONE, "A", tcp=tcp) == ("NOERROR", ["192.0.2.101"]) and
              rdatas("b1." + ZONE, "TXT", tcp=tcp) == ("NOERROR", ['"batch one"']) and
              rdatas("b2." + ZONE, "MX", tcp=tcp) == ("NOERROR", ["10 b1.%s." % ZONE]) and
              dig_full("fresh." + ZONE, "A", tcp=tcp)[0] == "NXDOMAIN" and
              served_serial(tcp=tcp) == s0 + 1,
              "change batch answered at once over %s, one serial step" % ("TCP" if tcp else
                                                                          "UDP"),
              (rdatas("b1." + ZONE, "A", tcp=tcp), served_serial(tcp=tcp)))

    # One bad change among good ones: refused as a whole, the change named, nothing changed.
    s1 = served_serial()
    good = [edit("add", "g1", "A", "192.0.2.111"), edit("delete", "b1", "A", "192.0.2.101")]
    for bad, code, at, words, what in (
            (edit("add", "www", "CNAME", "b1"), 422, 2, "CNAME", "CNAME beside data"),
            (edit("add", "b1", "CNAME", "www"), 422, 2, "CNAME", "CNAME beside data (TXT left)"),
            (edit("add", "www.example.org.", "A", "192.0.2.1"), 400, 2, "not inside zone",
             "a name outside the zone"),
            (edit("add", "g2", "A", "192.0.2.300"), 400, 2, "does not parse", "bad rdata"),
            (edit("add", "g2", "SOA", "a b 1 2 3 4 5"), 400, 2, "SOA", "an SOA"),
            (edit("delete", "nothing", "A", "192.0.2.1"), 404, 2, "no such record",
             "a delete of a missing record"),
            (edit("add", "www", "A", "192.0.2.10"), 409, 2, "exists", "an add of a present record"),
            (edit("add", "g1", "A", "192.0.2.111"), 409, 2, "exists",
             "the same add twice in one batch")):
        status, r = post_json(path, {"changes": good + [bad]}, token)
        msg = r.get("error", "") if isinstance(r, dict) else ""
        check(status == code and r.get("change") == at and ("changes[%d]" % at) in msg and
              words in msg, "batch with %s: %d naming changes[%d]" % (what, code, at),
              (status, r))
        check(dig_full("g1." + ZONE, "A")[0] == "NXDOMAIN" and
              rdatas("b1." + ZONE, "A") == ("NOERROR", ["192.0.2.101"]) and
              rdatas("www." + ZONE, "A") == ("NOERROR", ["192.0.2.10"]) and
              served_serial() == s1, "batch with %s changed nothing (dig)" % what,
              (dig_full("g1." + ZONE, "A")[0], rdatas("b1." + ZONE, "A"), served_serial()))

    # Bodies refused before any change is looked at.
    for body, code, words, what in (
            ({"changes": []}, 400, "empty", "an empty list"),
            ({"changes": "add"}, 400, "array", "changes not an array"),
            ({"change": []}, 400, "unknown field", "a misspelt field"),
            ({"changes": [edit("add", "g1", "A", "192.0.2.111"), 5]}, 400, "changes[1]",
             "a change that is not an object")):
        status, r = post_json(path, body, token)
        check(status == code and words in r.get("error", ""), "batch with %s: %d" % (what, code),
              (status, r))
    status, r = post_json("/v1/zones/example.net/changes",
                          {"changes": [edit("add", "x", "A", "192.0.2.1")]}, token)
    check(status == 404, "batch for an unknown zone: 404", (status, r))
    status, r = post_json(path, {"changes": [edit("add", "g1", "A", "192.0.2.111")]}, None)
    check(status == 401, "batch without a token: 401", (status, r))
    status, r = post_json(path, {"changes": [edit("add", "g1", "A", "192.0.2.111")]},
                          "0" * 64)
    check(status == 401, "batch with a wrong token: 401", (status, r))

    # Over 64 KiB: 413 with a JSON error, whether the length is announced or chunked.
    big = os.path.join(work, "big-batch.json")
    many = [edit("add", "h%d" % i, "A", "10.1.%d.%d" % (i >> 8, i & 255)) for i in range(1200)]
    write(big, json.dumps({"changes": many}))
    check(os.path.getsize(big) > 65536, "the oversized batch is over 64 KiB",
          os.path.getsize(big))
    for extra, what in (([], "announced"), (["-H", "Transfer-Encoding: chunked"], "chunked")):
        code, body = curl(["-X", "POST", "-H", "Authorization: Bearer " + token] + extra +
                          ["--data-binary", "@" + big, URL + path])
        try:
            err = json.loads(body).get("error", "")
        except ValueError:
            err = ""
        check(code == 413 and "larger than 65536 bytes" in err,
              "oversized batch (%s): 413 with a JSON error" % what, (code, body[:200]))
    check(dig_full("h1." + ZONE, "A")[0] == "NXDOMAIN" and dig_full("g1." + ZONE, "A")[0] ==
          "NXDOMAIN" and served_serial() == s1, "refused batches changed nothing")

    # The largest batch that fits is applied in one step.
    fits = many[:600]
    text = json.dumps({"changes": fits})
    check(len(text) < 65536, "600 changes fit in 64 KiB", len(text))
    code, body = curl(["-X", "POST", "-H", "Authorization: Bearer " + token, "--data-binary",
                       text, URL + path])
    check(code == 200 and json.loads(body).get("applied") == 600 and served_serial() == s1 + 1
          and rdatas("h599." + ZONE, "A") == ("NOERROR", ["10.1.2.87"]),
          "a batch of 600 changes by curl: applied, one serial step", (code, body[:300]))
    code, body = curl(["-X", "POST", "-H", "Authorization: Bearer " + token, "--data-binary",
                       json.dumps({"changes": [dict(e, action="delete") for e in fits]}),
                       URL + path])
    check(code == 200 and dig_full("h0." + ZONE, "A")[0] == "NXDOMAIN" and
          served_serial() == s1 + 2, "the same 600 deleted in one batch", (code, body[:300]))


def apply_tests(ctl, work, key):
    """fennecctl zone apply: a file or stdin sent as one batch."""
    s0 = served_serial()
    changes = os.path.join(work, "changes.txt")
    write(changes, "# a change file\n\nadd   z1 300 A 192.0.2.121\n"
                   "\tadd z1 300 TXT \"two  spaces\" \"#not a comment\"  \n"
                   "   # an indented comment\n"
                   "delete b1 300 TXT \"batch one\"\n")
    rc, out, err = ctl.run("zone", "apply", ZONE, changes, key=key)
    lines = out.splitlines()
    check(rc == 0 and len(lines) == 2 and lines[0].split() == ["ZONE", "APPLIED", "ADDED",
                                                               "DELETED", "SERIAL", "INDEX"] and
          lines[1].split()[:5] == [ZONE, "3", "2", "1", str(s0 + 1)],
          "zone apply FILE: a table of what was applied", (rc, out, err))
    for tcp in (False, True):
        check(rdatas("z1." + ZONE, "A", tcp=tcp) == ("NOERROR", ["192.0.2.121"]) and
              rdatas("z1." + ZONE, "TXT", tcp=tcp) == ("NOERROR",
                                                       ['"two  spaces" "#not a comment"']) and
              rdatas("b1." + ZONE, "TXT", tcp=tcp) == ("NOERROR", []) and
              served_serial(tcp=tcp) == s0 + 1,
              "zone apply FILE answered at once over %s" % ("TCP" if tcp else "UDP"),
              (rdatas("z1." + ZONE, "TXT", tcp=tcp), served_serial(tcp=tcp)))
    rc, out, err = ctl.run("--json", "zone", "apply", ZONE, "-", key=key,
                           stdin="delete z1 300 A 192.0.2.121\nadd z2 60 AAAA 2001:db8::2\n")
    ok = check(rc == 0, "zone apply - (stdin) --json exits 0", (rc, out, err))
    if ok:
        j = json.loads(out)
        check(j.get("applied") == 2 and j.get("added") == 1 and j.get("deleted") == 1 and
              j.get("serial") == s0 + 2 and isinstance(j.get("index"), int),
              "zone apply --json: the server's answer", j)
    check(dig_full("z1." + ZONE, "A")[0] == "NOERROR" and not dig_full("z1." + ZONE, "A")[1]
          and rdatas("z2." + ZONE, "AAAA") == ("NOERROR", ["2001:db8::2"]),
          "zone apply from stdin answered at once", rdatas("z2." + ZONE, "AAAA"))

    # Lines that are not changes: exit 2 naming the line, nothing sent.
    s1 = served_serial()
    for text, words, what in (
            ("add z3 300 A 192.0.2.1\nreplace z3 300 A 192.0.2.2\n", ":2: the action", "action"),
            ("add z3 300 A 192.0.2.1\n\n# c\nadd z3 300 A\n", ":4: expected", "missing rdata"),
            ("add z3 soon A 192.0.2.1\n", ":1: the TTL", "a bad TTL"),
            ("# nothing\n\n", "no changes", "no changes")):
        rc, out, err = ctl.run("zone", "apply", ZONE, "-", key=key, stdin=text)
        check(rc == 2 and words in err and "nothing was sent" in err,
              "zone apply with %s: exit 2 naming the line" % what, (rc, err))
    rc, out, err = ctl.run("zone", "apply", ZONE, os.path.join(work, "missing.txt"), key=key)
    check(rc == 2 and "missing.txt" in err, "zone apply of a missing file: exit 2", (rc, err))
    big = "".join("add h%d 300 A 10.2.%d.%d\n" % (i, i >> 8, i & 255) for i in range(1500))
    rc, out, err = ctl.run("zone", "apply", ZONE, "-", key=key, stdin=big)
    check(rc == 2 and "split" in err, "zone apply of a batch over 64 KiB: exit 2, split it",
          (rc, err))
    check(served_serial() == s1 and dig_full("z3." + ZONE, "A")[0] == "NXDOMAIN",
          "zone apply usage errors sent nothing")

    # Changes the server refuses: exit 1 naming the file's line, nothing changed.
    bad = os.path.join(work, "bad-changes.txt")
    write(bad, "# one good, one bad\nadd z3 300 A 192.0.2.131\n\nadd www 300 CNAME z3\n")
    rc, out, err = ctl.run("zone", "apply", ZONE, bad, key=key)
    check(rc == 1 and "bad-changes.txt:4:" in err and "CNAME" in err and "HTTP 422" in err,
          "zone apply with a CNAME beside data: exit 1 naming the line", (rc, err))
    rc, out, err = ctl.run("--json", "zone", "apply", ZONE, "-", key=key,
                           stdin="add z3 300 A 192.0.2.131\nadd z4 300 A 192.0.2.300\n")
    check(rc == 1 and json.loads(out or "{}").get("http_status") == 400 and
          "<stdin>:2:" in json.loads(out or "{}").get("error", ""),
          "zone apply --json with bad rdata: 400 naming the line", (rc, out, err))
    rc, out, err = ctl.run("zone", "apply", ZONE, "-", key=key,
                           stdin="add z3 300 A 192.0.2.131\nadd x.example.org. 300 A 192.0.2.1\n")
    check(rc == 1 and "<stdin>:2:" in err and "HTTP 400" in err,
          "zone apply with a name outside the zone: exit 1", (rc, err))
    rc, out, err = ctl.run("zone", "apply", ZONE, changes)
    check(rc == 1 and "not authorized" in err, "zone apply without key: exit 1", (rc, err))
    check(served_serial() == s1 and dig_full("z3." + ZONE, "A")[0] == "NXDOMAIN" and
          rdatas("www." + ZONE, "A") == ("NOERROR", ["192.0.2.10"]),
          "refused zone apply changed nothing (dig)", (served_serial(), s1))


def post_json(path, obj, token, base=URL):
    return http("POST", path, body=json.dumps(obj).encode(), token=token,
                headers={"Content-Type": "application/json"}, base=base)


def concurrency_tests(work, key, token):
    """Every connection has its own thread: reads answer while a slow write runs, and writers
    on eight connections at once lose nothing."""
    import threading
    big_path = os.path.join(work, "zones", BIG + ".zone")
    write(big_path, big_zone_text(300000))
    result = {}

    def slow_reload():
        t0 = time.time()
        result["answer"] = http("POST", "/v1/zones/%s/reload" % BIG, token=token)
        result["seconds"] = time.time() - t0

    th = threading.Thread(target=slow_reload)
    th.start()
    during = 0
    while th.is_alive():
        status, _ = http("GET", "/v1/status")
        code, _ = curl([URL + "/metrics"])
        if th.is_alive() and status == 200 and code == 200:
            during += 1
    th.join()
    status, r = result["answer"]
    check(status == 200 and r.get("result") == "reloaded" and
          r.get("added", 0) - r.get("deleted", 0) == 299999,
          "a 300k-record reload through the API", (status, r, result.get("seconds")))
    check(during >= 3, "status and /metrics answer while a slow write runs",
          "%d answers in %.2f s" % (during, result.get("seconds", 0)))

    # Eight writers at once: every edit applied once, with its own index, and served.
    s0 = served_serial()
    answers = [None] * 8

    def writer(i):
        got = []
        for k in range(5):
            got.append(post_json("/v1/zones/%s/records" % ZONE,
                                 {"action": "add", "name": "c%d-%d" % (i, k), "ttl": 60,
                                  "type": "A", "rdata": "198.51.100.%d" % (i * 5 + k)}, token))
        answers[i] = got

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [a for got in answers for a in (got or [])]
    check(len(flat) == 40 and all(st == 200 for st, _ in flat),
          "eight concurrent writers: every edit answered 200",
          [a for a in flat if a[0] != 200][:3])
    indexes = sorted(b.get("index") for st, b in flat if st == 200)
    check(len(indexes) == 40 and indexes == list(range(indexes[0], indexes[0] + 40)),
          "eight concurrent writers: forty consecutive indexes, none twice", indexes)
    check(served_serial() == s0 + 40, "eight concurrent writers: forty serial steps",
          (served_serial(), s0))
    missing = [(i, k) for i in range(8) for k in range(5)
               if rdatas("c%d-%d.%s" % (i, k, ZONE), "A") !=
               ("NOERROR", ["198.51.100.%d" % (i * 5 + k)])]
    check(not missing, "eight concurrent writers: every record answered", missing[:5])

    # The same with batches of ten: eight indexes, eight serial steps, eighty records.
    s0 = served_serial()
    results = [None] * 8

    def batch_writer(i):
        results[i] = post_json("/v1/zones/%s/changes" % ZONE, {"changes": [
            edit("add", "cb%d" % i, "A", "203.0.113.%d" % (i * 10 + k), ttl=60)
            for k in range(10)]}, token)

    threads = [threading.Thread(target=batch_writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = all(r is not None and r[0] == 200 and r[1].get("applied") == 10 for r in results)
    check(ok, "eight concurrent batches: every batch applied", results)
    indexes = sorted(r[1].get("index") for r in results if r and r[0] == 200)
    check(len(indexes) == 8 and indexes == list(range(indexes[0], indexes[0] + 8)),
          "eight concurrent batches: eight consecutive indexes", indexes)
    check(served_serial() == s0 + 8, "eight concurrent batches: one serial step each",
          (served_serial(), s0))
    check(all(len(rdatas("cb%d.%s" % (i, ZONE), "A")[1]) == 10 for i in range(8)),
          "eight concurrent batches: every record answered")



def replication_views(ctl):
    """A lone primary: its replication object, its own row in the node list, the lag table and
    the status page's replication section."""
    status, st = http("GET", "/v1/status")
    r = st.get("replication") if status == 200 else None
    check(isinstance(r, dict) and r.get("role") == "primary" and isinstance(r.get("index"), int)
          and r.get("nodes") == [] and "commit_time" in r,
          "status: replication object of a primary without secondaries", r)
    status, body = http("GET", "/v1/nodes")
    rows = body.get("nodes") if status == 200 else None
    check(isinstance(rows, list) and len(rows) == 1 and rows[0]["id"] == "ctl1"
          and rows[0]["role"] == "primary" and rows[0]["self"] is True
          and rows[0]["address"] == "127.0.0.1:%d" % CONTROL_PORT
          and rows[0]["entries_behind"] == 0 and rows[0]["connected"] is True,
          "GET /v1/nodes: the primary's own row", body)
    rc, out, err = ctl.run("nodes")
    check(rc == 0 and out.startswith("NODE") and "ctl1 (this node)" in out and "primary" in out,
          "nodes table", (rc, out, err))
    rc, out, err = ctl.run("--json", "lag")
    check(rc == 0 and json.loads(out)["nodes"][0]["id"] == "ctl1", "lag --json", (rc, out, err))
    rc, out, err = ctl.run("lag")
    check(rc == 0 and "SECONDS_BEHIND" in out and "LAST_CONTACT" in out, "lag table",
          (rc, out, err))
    rc, out, err = ctl.run("status")
    check(rc == 0 and "secondaries connected" in out, "status table: replication line", out)
    status, page = http("GET", "/")
    check(status == 200 and "<h2>Replication</h2>" in page and "<svg " in page
          and "<script" not in page, "status page: replication table and lag chart, no script")


def wait_tests(ctl, work, key, token):
    """?wait=all on a primary without connected secondaries answers at once; the query string
    is parsed strictly."""
    rec = {"action": "add", "name": "waited", "ttl": 300, "type": "A", "rdata": "192.0.2.77"}
    t = time.time()
    status, body = post_json("/v1/zones/%s/records?wait=all" % ZONE, rec, token)
    check(status == 200 and isinstance(body.get("index"), int) and time.time() - t < 2,
          "?wait=all without connected secondaries: 200 at once with the index", (status, body))
    check(rdatas("waited." + ZONE, "A")[1] == ["192.0.2.77"], "?wait=all: the record is served")
    rec["action"] = "delete"
    status, body = post_json("/v1/zones/%s/records?wait=all&timeout_ms=500" % ZONE, rec, token)
    check(status == 200, "?wait=all&timeout_ms=500: 200", (status, body))
    for query, says in (("wait=any", 'must be "all"'), ("wait=all&wait=all", "twice"),
                        ("timeout_ms=500", "needs wait=all"),
                        ("wait=all&timeout_ms=60001", "from 1 to 60000"),
                        ("wait=all&timeout_ms=0", "from 1 to 60000"),
                        ("wait=all&verbose=1", "unknown query parameter")):
        status, body = post_json("/v1/zones/%s/records?%s" % (ZONE, query), rec, token)
        check(status == 400 and says in body.get("error", ""), "?%s: 400" % query,
              (status, body))
    status, body = http("GET", "/v1/status?wait=all")
    check(status == 400 and "no query parameters" in body.get("error", ""),
          "a read with a query parameter: 400", (status, body))
    code, text = curl([URL + "/metrics?cachebuster=1"])
    check(code == 200 and "fennec_replication_index" in text,
          "/metrics ignores its query string and has the replication families", code)
    rc, out, err = ctl.run("--wait", "record", "add", ZONE, "waited2", "300", "A", "192.0.2.78",
                           key=key)
    check(rc == 0 and "added" in out, "record add --wait: exit 0", (rc, out, err))
    rc, out, err = ctl.run("--wait", "record", "delete", ZONE, "waited2", "300", "A",
                           "192.0.2.78", key=key)
    check(rc == 0, "record delete --wait: exit 0", (rc, out, err))
    rc, out, err = ctl.run("--wait", "zone", "reload", ZONE, key=key)
    check(rc == 0, "zone reload --wait: exit 0", (rc, out, err))
    rc, out, err = ctl.run("--wait", "status")
    check(rc == 2 and "--wait only applies" in err, "--wait on a read: usage error", (rc, err))


def cluster_config(node, role, control_port, dns_port, repl_port, zones):
    text = ("node:\n  id: %s\n  role: %s\n  data_dir: ./data-%s\n"
            "listen:\n  dns: [\"127.0.0.1:%d\"]\n  control: \"127.0.0.1:%d\"\n"
            % (node, role, node, dns_port, control_port))
    if role == "primary":
        text += "  replication: \"127.0.0.1:%d\"\n" % repl_port
    text += "cluster:\n  key_file: cluster.key\n"
    if role == "secondary":
        text += "  primary: \"127.0.0.1:%d\"\n" % repl_port
    text += "workers: 1\n"
    if zones:
        text += "zones:\n  - name: example.com\n    file: zones/example.com.zone\n"
    return text


def node_row(base, node_id):
    try:
        status, body = http("GET", "/v1/nodes", base=base)
    except (urllib.error.URLError, ConnectionError, OSError) as e:
        check(False, "GET /v1/nodes on %s answers" % base, e)
        return None
    if status != 200:
        return None
    for row in body.get("nodes", []):
        if row.get("id") == node_id:
            return row
    return None


def port_listens(port):
    import socket
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def cluster_main(fennecd, fennecctl):
    """Two real nodes: membership, replication views and ?wait=all with a stopped secondary.
    Returns 0, 1 (a check failed) or SKIP (a part of the cluster this build does not have)."""
    work = tempfile.mkdtemp(prefix="fennec-cluster-")
    os.makedirs(os.path.join(work, "zones"))
    write(os.path.join(work, "zones", "example.com.zone"), zone_text(SERIAL))
    key_path = os.path.join(work, "cluster.key")
    key = subprocess.run(["openssl", "rand", "-hex", "32"], capture_output=True, text=True,
                         check=True).stdout.strip()
    write(key_path, key + "\n")
    os.chmod(key_path, 0o600)
    token = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", key],
                           input="fennec-control", capture_output=True, text=True,
                           check=True).stdout.split()[-1]
    write(os.path.join(work, "p.yaml"),
          cluster_config("cp1", "primary", CONTROL_PORT_P, DNS_PORT_P, REPL_PORT_P, True))
    write(os.path.join(work, "s.yaml"),
          cluster_config("cs2", "secondary", CONTROL_PORT_S, DNS_PORT_S, REPL_PORT_P, False))
    pbase = "http://127.0.0.1:%d" % CONTROL_PORT_P
    sbase = "http://127.0.0.1:%d" % CONTROL_PORT_S
    ctl = Ctl(fennecctl)
    skipped = []
    primary = start_daemon(fennecd, work, "p.yaml", "p.log", CONTROL_PORT_P)
    secondary = None
    try:
        # The primary serves only members: the secondary is added before it starts, as an
        # operator would (docs/cli.md).
        rc, out, err = ctl.run("-s", pbase, "--json", "node", "add", "cs2",
                               "127.0.0.1:%d" % CONTROL_PORT_S, key=key_path)
        membership = not (rc == 1 and "not a valid change" in err)
        if not membership:
            skipped.append("membership: the write path of this build does not apply "
                           "membership changes yet (node add answered: %s)" % err.strip())
        elif check(rc == 0 and isinstance(json.loads(out).get("index"), int),
                   "node add on the primary: exit 0 with an index", (rc, out, err)):
            row = node_row(pbase, "cs2")
            check(row is not None and row["address"] == "127.0.0.1:%d" % CONTROL_PORT_S
                  and row["role"] == "secondary" and row["state"] == "never_connected"
                  and row["connected"] is False and row["last_contact_seconds"] is None,
                  "primary: the new member has a row, never connected", row)
        secondary = start_daemon(fennecd, work, "s.yaml", "s.log", CONTROL_PORT_S)
        secondary_tests(token, sbase)
        if membership and not failures:
            skipped += cluster_tests(ctl, key_path, token, pbase, secondary)
    finally:
        if secondary and secondary.poll() is None:  # the test may have killed it
            secondary.send_signal(signal.SIGCONT)
            stop_daemon(secondary, work, "s.log", "secondary")
        stop_daemon(primary, work, "p.log", "primary")
    if failures:
        print("\n%d check(s) failed: %s\n(work folder kept: %s)" % (len(failures),
                                                                    ", ".join(failures), work))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    if skipped:
        print("\nSKIPPED (the checks above passed): %s" % "; ".join(skipped))
        return SKIP
    print("\nall checks passed")
    return 0


def secondary_tests(token, sbase):
    """A secondary's views, and its refusal of membership changes."""
    # ---- a secondary refuses membership changes and says where to send them
    status, body = http("POST", "/v1/nodes", body=b'{"id":"cs3","address":"127.0.0.1:1"}',
                        token=token, base=sbase)
    check(status == 409 and "primary" in body.get("error", "")
          and "127.0.0.1:%d" % REPL_PORT_P in body.get("error", ""),
          "secondary: node add is a 409 pointing at the primary", (status, body))
    status, body = http("DELETE", "/v1/nodes/cs2", token=token, base=sbase)
    check(status == 409 and "primary" in body.get("error", ""),
          "secondary: node remove is a 409", (status, body))
    status, body = http("DELETE", "/v1/nodes/cs2", base=sbase)
    check(status == 401, "secondary: node remove without a token is a 401 first", status)
    status, st = http("GET", "/v1/status", base=sbase)
    r = st.get("replication", {}) if status == 200 else {}
    check(r.get("role") == "secondary" and r.get("primary") == "127.0.0.1:%d" % REPL_PORT_P
          and {"connected", "state", "applied_index", "primary_index", "entries_behind",
               "seconds_behind", "last_contact_seconds"} <= set(r),
          "secondary: replication object of the status contract", r)
    status, body = http("GET", "/v1/nodes", base=sbase)
    rows = body.get("nodes", []) if status == 200 else []
    check(rows and rows[0]["id"] == "cs2" and rows[0]["role"] == "secondary"
          and rows[0]["self"] is True, "secondary: its own row first", body)
    code, text = curl([sbase + "/metrics"])
    check(code == 200 and 'fennec_replication_connected{node="cs2"}' in text,
          "secondary: /metrics has its own replication samples", text[-600:])


def cluster_tests(ctl, key, token, pbase, secondary):
    """The member cs2 is added and its fennecd runs. Returns the parts skipped, with why."""
    rc, out, err = ctl.run("-s", pbase, "node", "add", "cs2", "127.0.0.1:%d" % CONTROL_PORT_S,
                           key=key)
    check(rc == 1 and "HTTP 409" in err, "node add again with the same address: 409",
          (rc, err))

    # ---- the stream: wait until the secondary follows
    if not port_listens(REPL_PORT_P):
        return ["replication stream: nothing listens on the primary's replication port %d in "
                "this build" % REPL_PORT_P]
    deadline = time.time() + 15
    while time.time() < deadline:
        row = node_row(pbase, "cs2")
        if row and row["connected"] and row["entries_behind"] == 0:
            break
        time.sleep(0.2)
    if not check(row and row["connected"] and row["entries_behind"] == 0,
                 "primary: the secondary connects and catches up", row):
        return []
    rec = {"action": "add", "name": "w1", "ttl": 300, "type": "A", "rdata": "192.0.2.91"}
    status, body = post_json("/v1/zones/%s/records?wait=all" % ZONE, rec, token, base=pbase)
    check(status == 200, "?wait=all with a following secondary: 200", (status, body))

    # ---- a stopped secondary: the wait times out, reads go on meanwhile
    import threading
    secondary.send_signal(signal.SIGSTOP)
    result = {}

    def waiting_write():
        r2 = {"action": "add", "name": "w2", "ttl": 300, "type": "A", "rdata": "192.0.2.92"}
        t0 = time.time()
        result["answer"] = post_json("/v1/zones/%s/records?wait=all&timeout_ms=3000" % ZONE,
                                     r2, token, base=pbase)
        result["took"] = time.time() - t0

    th = threading.Thread(target=waiting_write)
    th.start()
    time.sleep(0.5)
    t0 = time.time()
    code, text = curl([pbase + "/metrics"])
    took = time.time() - t0
    check(code == 200 and took < 1.5 and "answer" not in result,
          "/metrics answers while a ?wait=all write waits", (code, took, result))
    status, st = http("GET", "/v1/status", base=pbase)
    check(status == 200, "/v1/status answers while a ?wait=all write waits", status)
    th.join(15)
    status, body = result.get("answer", (None, {}))
    check(status == 504 and body.get("lagging") == ["cs2"]
          and "applied and durable" in body.get("error", "") and isinstance(body.get("index"),
                                                                             int)
          and 2.5 < result.get("took", 0) < 10,
          "?wait=all with a stopped secondary: 504 naming it, the change applied",
          (status, body, result.get("took")))
    check("192.0.2.92" in dig("w2." + ZONE, port=DNS_PORT_P),
          "the change a 504 names is served by the primary")
    secondary.send_signal(signal.SIGCONT)
    rc, out, err = ctl.run("-s", pbase, "--wait", "record", "add", ZONE, "w3", "300", "A",
                           "192.0.2.93", key=key)
    check(rc == 0, "record add --wait once the secondary is back: exit 0", (rc, out, err))

    # ---- a secondary that is gone: it keeps its lag, and waits no longer count it
    secondary.kill()
    secondary.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        row = node_row(pbase, "cs2")
        if row and not row["connected"]:
            break
        time.sleep(0.2)
    check(row and not row["connected"] and row["state"] == "disconnected",
          "primary: a killed secondary shows disconnected", row)
    t0 = time.time()
    status, body = post_json("/v1/zones/%s/records?wait=all" % ZONE,
                             {"action": "add", "name": "w4", "ttl": 300, "type": "A",
                              "rdata": "192.0.2.94"}, token, base=pbase)
    check(status == 200 and time.time() - t0 < 2,
          "?wait=all does not wait for a disconnected node", (status, body))
    time.sleep(1.2)
    row = node_row(pbase, "cs2")
    check(row and row["entries_behind"] >= 1 and row["seconds_behind"] >= 1
          and row["last_contact_seconds"] >= 1,
          "a disconnected node is never shown as caught up", row)
    code, text = curl([pbase + "/metrics"])
    m = metrics_families(text)
    check(metric(m, "fennec_replication_connected", node="cs2") == 0
          and (metric(m, "fennec_replication_entries_behind", node="cs2") or 0) >= 1,
          "/metrics: the disconnected node's samples", text[-800:])

    # ---- removal
    rc, out, err = ctl.run("-s", pbase, "--wait", "node", "remove", "cs2", key=key)
    check(rc == 0, "node remove --wait: exit 0", (rc, out, err))
    check(node_row(pbase, "cs2") is None, "a removed member's row disappears")
    rc, out, err = ctl.run("-s", pbase, "node", "remove", "cs2", key=key)
    check(rc == 1 and "HTTP 404" in err, "node remove of a non-member: 404", (rc, err))
    return []

def run_tests(ctl, work, zone_file, key, token, proc):
    # ---- CLI basics
    rc, out, err = ctl.run("--version")
    check(rc == 0 and out.startswith("fennecctl "), "--version", (rc, out, err))
    rc, out, err = ctl.run("--help")
    check(rc == 0 and "record add" in out and "lag" in out and "exit codes" in out, "--help",
          (rc, out))
    rc, out, err = ctl.run("record", "add", "--help")
    check(rc == 0 and "record add ZONE NAME TTL TYPE RDATA" in out, "record add --help",
          (rc, out))
    rc, out, err = ctl.run("--help")
    check(rc == 0 and "zone apply ZONE FILE|-" in out, "--help lists zone apply", (rc, out))
    rc, out, err = ctl.run("zone", "apply", "--help")
    check(rc == 0 and "all of them" in out and "#" in out, "zone apply --help", (rc, out))
    rc, out, err = ctl.run("zone", "apply", ZONE)
    check(rc == 2 and "missing arguments" in err, "zone apply without FILE exits 2", (rc, err))
    rc, out, err = ctl.run("frobnicate")
    check(rc == 2 and "unknown command" in err, "unknown verb exits 2", (rc, err))
    rc, out, err = ctl.run("node", "add", "ns9")
    check(rc == 2 and "missing arguments" in err, "missing argument exits 2", (rc, err))
    rc, out, err = ctl.run("status", "--bogus")
    check(rc == 2 and "unknown option" in err, "unknown option exits 2", (rc, err))
    rc, out, err = ctl.run("record", "add", ZONE, "x", "soon", "A", "192.0.2.1", key=key)
    check(rc == 2 and "TTL" in err, "bad TTL exits 2", (rc, err))
    rc, out, err = ctl.run("health", "override", "web1", "sideways", key=key)
    check(rc == 2, "bad override state exits 2", (rc, err))
    rc, out, err = ctl.run("zone", "reload", "/" * 400, key=key)
    check(rc == 2 and "too long" in err, "an argument too long for the path exits 2", (rc, err))

    # ---- status
    rc, out, err = ctl.run("--json", "status")
    ok = check(rc == 0, "status --json exits 0", (rc, err))
    if ok:
        st = json.loads(out)
        check(st["node_id"] == "ctl1" and st["role"] == "primary", "status: node and role", st)
        check(st["workers"] == 2, "status: workers", st.get("workers"))
        check(st["version"] and isinstance(st["uptime_seconds"], int), "status: version, uptime")
        zones = {z["name"]: z for z in st["zones"]}
        check(ZONE in zones and zones[ZONE]["serial"] == SERIAL and zones[ZONE]["records"] == 5,
              "status: zone with serial and record count", st["zones"])
        check({"total", "udp", "tcp", "responses"} <= set(st["queries"]), "status: queries")
    rc, out, err = ctl.run("status")
    check(rc == 0 and "ctl1" in out and "example.com" in out and str(SERIAL) in out,
          "status table", out)
    rc, out, err = ctl.run("status", env_extra={"FENNEC_URL": URL})
    check(rc == 0, "FENNEC_URL is honoured", err)
    status, page = http("GET", "/")
    check(status == 200 and "<html" in page and "example.com" in page, "status page")

    # ---- health on a node without a health section: nothing to show, nothing to override
    rc, out, err = ctl.run("health")
    check(rc == 0 and "no health checks configured" in out, "health: none configured, exit 0",
          (rc, out, err))
    rc, out, err = ctl.run("--json", "health")
    check(rc == 0 and json.loads(out) == {"checks": [], "pools": []},
          "health --json: empty checks and pools", out)
    rc, out, err = ctl.run("health", "override", "web1", "down", key=key)
    check(rc == 1 and "HTTP 404" in err and "web1" in err,
          "health override of an unknown check: 404, exit 1", (rc, out, err))
    rc, out, err = ctl.run("--wait", "health")
    check(rc == 2, "--wait on health (a read) is a usage error", (rc, err))
    rc, out, err = ctl.run("--all-nodes", "status")
    check(rc == 2 and "--all-nodes" in err, "--all-nodes on another verb is a usage error",
          (rc, err))

    replication_views(ctl)

    # ---- record edits that are refused before they reach the zone
    rc, out, err = ctl.run("record", "add", ZONE, "www", "300", "A", "192.0.2.300", key=key)
    check(rc == 1 and "does not parse" in err and "HTTP 400" in err,
          "record add: bad rdata is a 400", (rc, err))
    rc, out, err = ctl.run("record", "add", ZONE, "www.example.org.", "300", "A", "192.0.2.3",
                           key=key)
    check(rc == 1 and "not inside zone" in err, "record add: name outside the zone", (rc, err))
    rc, out, err = ctl.run("record", "add", "example.net", "www", "300", "A", "192.0.2.3",
                           key=key)
    check(rc == 1 and "HTTP 404" in err, "record add: unknown zone is a 404", (rc, err))
    rc, out, err = ctl.run("record", "add", ZONE, "@", "300", "SOA",
                           "ns1 hostmaster 1 7200 3600 1209600 300", key=key)
    check(rc == 1 and "HTTP 400" in err and "SOA" in err, "record add: SOA refused (400)",
          (rc, err))
    check(served_serial() == SERIAL, "invalid record requests changed nothing")

    # ---- authorization: writes without or with a wrong token change nothing
    write(zone_file, zone_text(SERIAL + 1))
    rc, out, err = ctl.run("zone", "reload", ZONE)
    check(rc == 1 and "not authorized" in err and "--key-file" in err,
          "zone reload without key: exit 1, says how to authorize", (rc, err))
    code, body = curl(["-X", "POST", URL + "/v1/zones/example.com/reload"])
    check(code == 401, "curl reload without token: 401", (code, body))
    code, body = curl(["-X", "POST", "-H", "Authorization: Bearer " + "0" * 64,
                       URL + "/v1/zones/example.com/reload"])
    check(code == 401 and "not valid" in body, "curl reload with wrong token: 401", (code, body))
    code, body = curl(["-X", "POST", "-H", "Authorization: Bearer " + token[:-1],
                       URL + "/v1/zones/example.com/reload"])
    check(code == 401, "curl reload with a truncated token: 401", (code, body))
    wrong_key = os.path.join(work, "wrong.key")
    write(wrong_key, "not-the-cluster-key\n")
    rc, out, err = ctl.run("zone", "reload", ZONE, key=wrong_key)
    check(rc == 1 and "not authorized" in err, "zone reload with the wrong key: exit 1",
          (rc, err))
    check(served_serial() == SERIAL, "refused reloads changed nothing (SOA serial)")
    code, body = curl(["-X", "POST", "-H", "Authorization: Bearer " + token, "-d",
                       '{"action":"add"}', URL + "/v1/zones/example.com/records"])
    check(code == 400 and "missing field" in body, "curl with token: body validated", (code,
                                                                                       body))

    # ---- zone reload with the right key
    rc, out, err = ctl.run("--json", "zone", "reload", ZONE, key=key)
    ok = check(rc == 0, "zone reload --json exits 0", (rc, out, err))
    if ok:
        check(json.loads(out)["serial"] == SERIAL + 1, "zone reload: new serial reported", out)
    check(served_serial() == SERIAL + 1, "zone reload: new serial served")
    rc, out, err = ctl.run("zone", "reload", "EXAMPLE.com.", key=key,
                           env_extra={})
    check(rc == 0 and "serial %d" % (SERIAL + 1) in out, "zone reload table, name folded",
          (rc, out, err))
    write(zone_file, zone_text(SERIAL + 2, "bad IN A 999.0.0.1\n"))
    rc, out, err = ctl.run("zone", "reload", ZONE, key=key,
                           env_extra={"FENNEC_KEY_FILE": key})
    check(rc == 1 and "example.com.zone:8" in err and "previous version" in err,
          "zone reload of a broken file: exit 1 with file:line", (rc, err))
    check(served_serial() == SERIAL + 1, "broken reload keeps serving the previous version")
    write(zone_file, zone_text(SERIAL + 3))
    rc, out, err = ctl.run("zone", "reload", ZONE, env_extra={"FENNEC_KEY_FILE": key})
    check(rc == 0, "FENNEC_KEY_FILE is honoured", (rc, err))
    check(served_serial() == SERIAL + 3, "fixed file reloads")
    rc, out, err = ctl.run("zone", "reload", "example.net", key=key)
    check(rc == 1 and "HTTP 404" in err, "reload of an unknown zone: 404", (rc, err))

    record_tests(ctl, work, zone_file, key, token, proc)
    wait_tests(ctl, work, key, token)
    reload_tests(ctl, zone_file, key, token)
    batch_tests(work, token)
    apply_tests(ctl, work, key)
    concurrency_tests(work, key, token)

    # ---- hostile bodies: refused, and the daemon keeps serving DNS
    big = os.path.join(work, "big.json")
    write(big, '{"action":"add","rdata":"' + "a" * 70000 + '"}')
    code, body = curl(["-X", "POST", "-H", "Authorization: Bearer " + token, "--data-binary",
                       "@" + big, URL + "/v1/zones/example.com/records"])
    check(code == 413, "oversized body: 413", (code, body[:200]))
    code, body = curl(["-X", "POST", "-H", "Authorization: Bearer " + token, "-H",
                       "Transfer-Encoding: chunked", "--data-binary", "@" + big,
                       URL + "/v1/zones/example.com/records"])
    check(code == 413, "oversized chunked body: 413", (code, body[:200]))
    garbage_file = os.path.join(work, "garbage.bin")
    for garbage in (b"garbage{", b"[1,2,3]", b"{\"action\":", b"\x00\x01\x02\xff{",
                    b'{"action":"add","name":"w","ttl":"300","type":"A","rdata":"1.2.3.4"}'):
        with open(garbage_file, "wb") as f:
            f.write(garbage)
        code, body = curl(["-X", "POST", "-H", "Authorization: Bearer " + token,
                           "--data-binary", "@" + garbage_file,
                           URL + "/v1/zones/example.com/records"])
        check(code == 400 and "error" in json.loads(body), "garbage body %r: 400" % garbage[:20],
              (code, body))
    code, body = curl(["-X", "POST", "-H", "Authorization: Bearer " + token, "--data-binary",
                       '{"id":"ns2","address":"nowhere"}', URL + "/v1/nodes"])
    check(code == 400 and "address" in body, "node add with a bad address: 400", (code, body))
    code, body = curl(["-X", "PUT", URL + "/v1/status"])
    check(code == 405, "wrong method: 405", (code, body))
    code, body = curl([URL + "/v1/nothing"])
    check(code == 404, "unknown path: 404", (code, body))
    out = dig("www.example.com")
    check("192.0.2.10" in out, "DNS still answered after hostile requests", out)
    status, st = http("GET", "/v1/status")
    check(status == 200, "control endpoint still answers")

    # ---- metrics: a real parser, and counters that move with real queries
    serial_now = served_serial()
    code, text = curl([URL + "/metrics"])
    check(code == 200, "/metrics: 200")
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 0, "promtool check metrics", p.stdout + p.stderr)
    before = metrics_families(text)
    check(metric(before, "fennec_zone_serial", zone=ZONE) == serial_now,
          "fennec_zone_serial is the served serial", metric(before, "fennec_zone_serial",
                                                            zone=ZONE))
    check(metric(before, "fennec_build_info", version=st["version"], node="ctl1",
                 role="primary") == 1, "fennec_build_info")
    start = metric(before, "process_start_time_seconds")
    check(start is not None and abs(time.time() - start) < 600, "process_start_time_seconds",
          start)
    for _ in range(5):
        dig("www.example.com")
    dig("nothing-here.example.com")
    dig("www.example.com", "AAAA", tcp=True)
    dig("www.example.com", "MX", tcp=True)
    expect = {
        ("fennec_dns_queries_total", (("transport", "udp"),)): 6,
        ("fennec_dns_queries_total", (("transport", "tcp"),)): 2,
        ("fennec_dns_responses_total", (("rcode", "NOERROR"),)): 7,
        ("fennec_dns_responses_total", (("rcode", "NXDOMAIN"),)): 1,
        ("fennec_dns_queries_by_qtype_total", (("qtype", "A"),)): 6,
        ("fennec_dns_queries_by_qtype_total", (("qtype", "AAAA"),)): 1,
        ("fennec_dns_queries_by_qtype_total", (("qtype", "MX"),)): 1,
        ("fennec_udp_received_total", ()): 6,
        ("fennec_udp_answered_total", ()): 6,
        ("fennec_udp_ignored_total", ()): 0,
        ("fennec_udp_send_dropped_total", ()): 0,
        ("fennec_udp_send_errors_total", ()): 0,
        ("fennec_tcp_connections_accepted_total", ()): 2,
        ("fennec_tcp_connections_refused_total", ()): 0,
        ("fennec_tcp_connections_open", ()): 0,
        ("fennec_tcp_messages_received_total", ()): 2,
        ("fennec_tcp_answers_total", ()): 2,
        ("fennec_overload_shed_total", (("reason", "codel"),)): 0,
        # every UDP answer lands in the latency histogram; on an idle loopback all within 1 s
        ("fennec_dns_answer_latency_seconds_count", ()): 6,
        ("fennec_dns_answer_latency_seconds_bucket", (("le", "1"),)): 6,
    }
    missing = [k for k in expect if k not in before]
    check(not missing, "/metrics has the UDP, TCP and overload families", missing)
    deltas = {}
    deadline = time.time() + 3
    while True:
        code, text = curl([URL + "/metrics"])
        after = metrics_families(text)
        deltas = {k: (after.get(k) or 0) - (before.get(k) or 0) for k in expect}
        if deltas == expect or time.time() > deadline:
            break
        time.sleep(0.1)
    for k, want in expect.items():
        check(deltas[k] == want, "metric %s%s moved by %d" % (k[0], dict(k[1]), want),
              "moved by %r" % deltas[k])
    status, st2 = http("GET", "/v1/status")
    check(st2["queries"]["total"] >= 8, "status query totals move", st2["queries"])


if __name__ == "__main__":
    sys.exit(main())
