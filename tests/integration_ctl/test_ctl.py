#!/usr/bin/python3
"""Integration test of the control plane: a real fennecd driven by the real fennecctl and curl.

usage: test_ctl.py [FENNECD [FENNECCTL]]   (or env FENNECD / FENNECCTL; fennecctl defaults to
the fennecctl next to fennecd)

Needs curl, dig (bind9-dnsutils), promtool (package prometheus) and the python3 module
prometheus_client (package python3-prometheus-client); a missing one fails the test, naming
the package. Listens on 127.0.0.1 ports 15710-15713 only.
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

CONTROL_PORT = 15710
DNS_PORT = 15711
CONTROL_PORT_NOKEY = 15712
DNS_PORT_NOKEY = 15713
URL = "http://127.0.0.1:%d" % CONTROL_PORT
ZONE = "example.com"
SERIAL = 2024010101

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
        "@ IN NS ns1\nns1 IN A 127.0.0.1\nwww IN A 192.0.2.10\n%s" % (serial, extra)
    )


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def config(node, control_port, dns_port, key_file):
    text = (
        "node:\n  id: %s\n  role: primary\n  data_dir: ./data-%s\n"
        "listen:\n  dns: [\"127.0.0.1:%d\"]\n  control: \"127.0.0.1:%d\"\n"
        "workers: 2\nzones:\n  - name: example.com\n    file: zones/example.com.zone\n"
        % (node, node, dns_port, control_port)
    )
    if key_file:
        text += "cluster:\n  key_file: %s\n" % key_file
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


def served_serial():
    out = dig(ZONE, "SOA")
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 7 and not line.startswith(";") and parts[3] == "SOA":
            return int(parts[6])
    return None


class Ctl:
    def __init__(self, binary):
        self.binary = binary

    def run(self, *args, key=None, env_extra=None):
        env = dict(os.environ)
        env.pop("FENNEC_KEY_FILE", None)
        env.pop("FENNEC_URL", None)
        env.update(env_extra or {})
        cmd = [self.binary, "-s", URL]
        if key:
            cmd += ["--key-file", key]
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, env=env,
                           timeout=30)
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
    fennecd = os.environ.get("FENNECD") or (sys.argv[1] if len(sys.argv) > 1 else None)
    if not fennecd:
        print("usage: test_ctl.py FENNECD [FENNECCTL]")
        return 2
    fennecctl = os.environ.get("FENNECCTL") or (sys.argv[2] if len(sys.argv) > 2 else
                                                os.path.join(os.path.dirname(fennecd),
                                                             "fennecctl"))
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

    work = tempfile.mkdtemp(prefix="fennec-ctl-")
    os.makedirs(os.path.join(work, "zones"))
    zone_file = os.path.join(work, "zones", "example.com.zone")
    write(zone_file, zone_text(SERIAL))
    key_path = os.path.join(work, "cluster.key")
    key = subprocess.run(["openssl", "rand", "-hex", "32"], capture_output=True, text=True,
                         check=True).stdout.strip()
    write(key_path, key + "\n")
    os.chmod(key_path, 0o600)
    token = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", key],
                           input="fennec-control", capture_output=True, text=True,
                           check=True).stdout.split()[-1]
    write(os.path.join(work, "fennec.yaml"),
          config("ctl1", CONTROL_PORT, DNS_PORT, "cluster.key"))
    write(os.path.join(work, "nokey.yaml"),
          config("ctl2", CONTROL_PORT_NOKEY, DNS_PORT_NOKEY, None))

    ctl = Ctl(fennecctl)
    proc = start_daemon(fennecd, work, "fennec.yaml", "fennecd.log", CONTROL_PORT)
    try:
        run_tests(ctl, work, zone_file, key_path, token)
    finally:
        stop_daemon(proc, work, "fennecd.log", "fennecd")

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


def run_tests(ctl, work, zone_file, key, token):
    # ---- CLI basics
    rc, out, err = ctl.run("--version")
    check(rc == 0 and out.startswith("fennecctl "), "--version", (rc, out, err))
    rc, out, err = ctl.run("--help")
    check(rc == 0 and "record add" in out and "lag" in out and "exit codes" in out, "--help",
          (rc, out))
    rc, out, err = ctl.run("record", "add", "--help")
    check(rc == 0 and "record add ZONE NAME TTL TYPE RDATA" in out, "record add --help",
          (rc, out))
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

    # ---- status
    rc, out, err = ctl.run("--json", "status")
    ok = check(rc == 0, "status --json exits 0", (rc, err))
    if ok:
        st = json.loads(out)
        check(st["node_id"] == "ctl1" and st["role"] == "primary", "status: node and role", st)
        check(st["workers"] == 2, "status: workers", st.get("workers"))
        check(st["version"] and isinstance(st["uptime_seconds"], int), "status: version, uptime")
        zones = {z["name"]: z for z in st["zones"]}
        check(ZONE in zones and zones[ZONE]["serial"] == SERIAL and zones[ZONE]["records"] == 4,
              "status: zone with serial and record count", st["zones"])
        check({"total", "udp", "tcp", "responses"} <= set(st["queries"]), "status: queries")
    rc, out, err = ctl.run("status")
    check(rc == 0 and "ctl1" in out and "example.com" in out and str(SERIAL) in out,
          "status table", out)
    rc, out, err = ctl.run("status", env_extra={"FENNEC_URL": URL})
    check(rc == 0, "FENNEC_URL is honoured", err)
    status, page = http("GET", "/")
    check(status == 200 and "<html" in page and "example.com" in page, "status page")

    # ---- features this version does not have: exit 1, clearly said
    for args, need_key in ((("nodes",), False), (("health",), False), (("lag",), False),
                           (("lag", "--watch", "--interval", "0.2"), False),
                           (("node", "add", "ns2", "127.0.0.1:5380"), True),
                           (("node", "remove", "ns2"), True),
                           (("health", "override", "web1", "down"), True)):
        rc, out, err = ctl.run(*args, key=key if need_key else None)
        check(rc == 1 and "not available in this version" in err,
              "%s: exit 1, not available" % " ".join(args), (rc, out, err))
    rc, out, err = ctl.run("--json", "nodes")
    check(rc == 1 and json.loads(out).get("http_status") == 501, "nodes --json: 501 as JSON",
          out)

    # ---- record edits: validated fully, then 501 (no zone edit engine yet)
    rc, out, err = ctl.run("record", "add", ZONE, "mail", "300", "MX", "10", "mx1", key=key)
    check(rc == 1 and "not available in this version" in err and "request is valid" in err,
          "record add: valid request, not available", (rc, err))
    rc, out, err = ctl.run("record", "delete", ZONE, "www", "300", "A", "192.0.2.10", key=key)
    check(rc == 1 and "not available in this version" in err, "record delete: not available",
          (rc, err))
    rc, out, err = ctl.run("record", "add", ZONE, "www", "300", "A", "192.0.2.300", key=key)
    check(rc == 1 and "does not parse" in err and "HTTP 400" in err,
          "record add: bad rdata is a 400", (rc, err))
    rc, out, err = ctl.run("record", "add", ZONE, "www.example.org.", "300", "A", "192.0.2.3",
                           key=key)
    check(rc == 1 and "not inside zone" in err, "record add: name outside the zone", (rc, err))
    rc, out, err = ctl.run("record", "add", "example.net", "www", "300", "A", "192.0.2.3",
                           key=key)
    check(rc == 1 and "HTTP 404" in err, "record add: unknown zone is a 404", (rc, err))
    check(served_serial() == SERIAL, "record requests changed nothing")

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
    check(rc == 1 and "example.com.zone:7" in err and "previous version" in err,
          "zone reload of a broken file: exit 1 with file:line", (rc, err))
    check(served_serial() == SERIAL + 1, "broken reload keeps serving the previous version")
    write(zone_file, zone_text(SERIAL + 3))
    rc, out, err = ctl.run("zone", "reload", ZONE, env_extra={"FENNEC_KEY_FILE": key})
    check(rc == 0, "FENNEC_KEY_FILE is honoured", (rc, err))
    check(served_serial() == SERIAL + 3, "fixed file reloads")
    rc, out, err = ctl.run("zone", "reload", "example.net", key=key)
    check(rc == 1 and "HTTP 404" in err, "reload of an unknown zone: 404", (rc, err))

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
    code, text = curl([URL + "/metrics"])
    check(code == 200, "/metrics: 200")
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 0, "promtool check metrics", p.stdout + p.stderr)
    before = metrics_families(text)
    check(metric(before, "fennec_zone_serial", zone=ZONE) == SERIAL + 3,
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
    }
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
