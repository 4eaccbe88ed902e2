#!/usr/bin/python3
"""Integration test of zone files: real fennecd processes driven by the real fennecctl, queried
with dnspython and dig, with Knot DNS and NSD as oracles.

usage: test_zonefile.py FENNECD [FENNECCTL]   (fennecctl defaults to the one next to fennecd)

What it checks (docs/zone-files.md):
  - a change three $INCLUDEs down (same size, same mtime) is seen by `fennecctl zone reload`
    ("reloaded", dig sees it), no change answers "unchanged", --force reloads anyway, SIGHUP
    uses the same detection;
  - the inputs of tests/cases (or $FENNEC_CASES) 12-include-reload and 16-ttl-high-bit
    behave as their expected.txt says;
  - a CRLF / mixed-line-end zone answers as Knot DNS answers for the same zone with LF line
    ends (Knot refuses CR bytes) and as NSD answers for the CRLF file itself;
  - a zone without $TTL: RFC 1035 5.1 TTLs and one warning;
  - TTLs above 2147483647 through the API and `fennecctl zone apply`: capped, with a warning.

Needs dnspython (python3-dnspython), dig (bind9-dnsutils), knotd (knot) and nsd (nsd); a
missing one fails the test, naming the package. Listens on 127.0.0.1 ports 17200-17299 only
(FENNEC_ZONEFILE_PORT_BASE moves them).
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

PORT_BASE = int(os.environ.get("FENNEC_ZONEFILE_PORT_BASE", "17200"))
KNOT_PORT = PORT_BASE + 90
NSD_PORT = PORT_BASE + 91
CASES = os.environ.get("FENNEC_CASES", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cases"))
MAX_TTL = 2147483647

failures = []
daemons = []  # every fennecd started, stopped at the end whatever happened


def check(cond, what, detail=""):
    if cond:
        print("ok   %s" % what)
    else:
        print("FAIL %s %s" % (what, detail))
        failures.append(what)
    return cond


def write(path, text, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(text)


try:
    import dns.exception
    import dns.message
    import dns.query
    import dns.rdatatype
except ImportError:
    print("FAIL python3 module dns is missing: install the Debian package python3-dnspython")
    sys.exit(1)


def ask(port, name, qtype="A"):
    """(rcode, sorted [(owner, ttl, type, rdata text)] of the answer section)."""
    q = dns.message.make_query(name, qtype)
    q.flags &= ~0x0100  # no RD
    for _ in range(3):
        try:
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=2)
            break
        except dns.exception.Timeout:
            r = None
    if r is None:
        return None, []
    ans = []
    for rrset in r.answer:
        for rd in rrset:
            ans.append((rrset.name.to_text().lower(), rrset.ttl,
                        dns.rdatatype.to_text(rrset.rdtype), rd.to_text()))
    return r.rcode(), sorted(ans)


def rdata(port, name, qtype="A"):
    return sorted(a[3] for a in ask(port, name, qtype)[1])


def dig_ttl(port, name, qtype="A"):
    out = subprocess.run(["dig", "+noall", "+answer", "+norec", "-p", str(port), "@127.0.0.1",
                          name, qtype], capture_output=True, text=True, timeout=10).stdout
    ttls = [int(l.split()[1]) for l in out.splitlines() if l.strip() and not l.startswith(";")]
    return ttls


def wait_for(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


class Daemon:
    """One fennecd on DNS port PORT and control port PORT + 1, serving ZONES {name: file}."""

    def __init__(self, fennecd, fennecctl, work, name, port, zones):
        self.fennecd, self.fennecctl, self.port = fennecd, fennecctl, port
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.key = os.path.join(self.dir, "cluster.key")
        write(self.key, os.urandom(32).hex() + "\n")
        os.chmod(self.key, 0o600)
        self.url = "http://127.0.0.1:%d" % (port + 1)
        cfg = ("node:\n  id: %s\n  role: primary\n  data_dir: ./data\n"
               "listen:\n  dns: [\"127.0.0.1:%d\"]\n  control: \"127.0.0.1:%d\"\n"
               "cluster:\n  key_file: cluster.key\nworkers: 1\nzones:\n"
               % (name, port, port + 1))
        for zname, zfile in zones.items():
            cfg += "  - name: %s\n    file: %s\n" % (zname, zfile)
        write(os.path.join(self.dir, "fennec.yaml"), cfg)
        self.log_path = os.path.join(self.dir, "fennecd.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([fennecd, "-c", "fennec.yaml"], cwd=self.dir,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        daemons.append(self)
        deadline = time.time() + 15
        while time.time() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(self.url + "/v1/status", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("fennecd %s did not start:\n%s" % (name, self.log_text()))

    def ctl(self, *args):
        p = subprocess.run([self.fennecctl, "-s", self.url, "--key-file", self.key] + list(args),
                           capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def reload(self, zone, *extra):
        """fennecctl --json zone reload: (exit code, parsed JSON or None)."""
        rc, out, err = self.ctl("--json", "zone", "reload", *extra, zone)
        try:
            return rc, json.loads(out)
        except ValueError:
            return rc, {"stdout": out, "stderr": err}

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log.closed:
            return
        self.log.close()
        bad = [l for l in self.log_text().splitlines()
               if "Sanitizer" in l or "runtime error" in l]
        check(not bad, "fennecd %s: no sanitizer reports" % os.path.basename(self.dir),
              "\n".join(bad[:10]))


# ---- nested includes, reload, --force, SIGHUP -------------------------------------------------

def test_nested(fennecd, fennecctl, work):
    zdir = os.path.join(work, "nested", "zones")
    write(os.path.join(zdir, "example.com.zone"),
          "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 100 7200 3600 86400 300\n"
          "@ NS ns1\nns1 A 192.0.2.53\n$INCLUDE inc/a.inc\n")
    write(os.path.join(zdir, "inc", "a.inc"), "a A 192.0.2.10\n$INCLUDE b/b.inc\n")
    write(os.path.join(zdir, "inc", "b", "b.inc"), "b A 192.0.2.11\n$INCLUDE c/c.inc\n")
    deepest = os.path.join(zdir, "inc", "b", "c", "c.inc")
    write(deepest, "deep A 192.0.2.1\n")
    d = Daemon(fennecd, fennecctl, work, "nested", PORT_BASE + 0,
               {"example.com": os.path.join(zdir, "example.com.zone")})
    try:
        check(rdata(d.port, "deep.example.com") == ["192.0.2.1"], "nested: the deepest include "
              "is served", rdata(d.port, "deep.example.com"))
        rc, j = d.reload("example.com")
        check(rc == 0 and j.get("result") == "unchanged" and j.get("serial") == 100,
              "nested: reload without a change answers unchanged", j)
        rc, out, _ = d.ctl("zone", "reload", "example.com")
        check(rc == 0 and "unchanged" in out and "reloaded" not in out,
              "nested: fennecctl prints unchanged", out)

        # Same size, same mtime: only the content digest can see it.
        st = os.stat(deepest)
        write(deepest, "deep A 192.0.2.2\n")
        os.utime(deepest, ns=(st.st_atime_ns, st.st_mtime_ns))
        rc, out, err = d.ctl("zone", "reload", "example.com")
        check(rc == 0 and "reloaded" in out, "nested: fennecctl reports reloaded after the "
              "deepest include changed (same size and mtime)", out + err)
        check(rdata(d.port, "deep.example.com") == ["192.0.2.2"],
              "nested: dig sees the new record", rdata(d.port, "deep.example.com"))
        rc, j = d.reload("example.com")
        check(j.get("result") == "unchanged", "nested: then unchanged again", j)
        serial = j.get("serial")
        rc, j = d.reload("example.com", "--force")
        check(rc == 0 and j.get("result") == "reloaded" and j.get("serial") == serial + 1
              and j.get("index", 0) > 0, "nested: --force reloads (new serial and index)", j)
        rc, out, _ = d.ctl("zone", "reload", "--force", "example.com")
        check(rc == 0 and "reloaded" in out, "nested: fennecctl --force prints reloaded", out)
        rc, out, err = d.ctl("--force", "status")
        check(rc == 2, "nested: --force on another command is a usage error", (rc, err))

        # The API itself: distinct answers, bad force value refused.
        token = subprocess.run(["openssl", "dgst", "-sha256", "-hmac",
                                open(d.key).read().strip()], input="fennec-control",
                               capture_output=True, text=True).stdout.split()[-1]
        for q, want in (("", "unchanged"), ("?force=1", "reloaded"), ("?force=0", "unchanged")):
            req = urllib.request.Request(d.url + "/v1/zones/example.com/reload" + q, data=b"",
                                         method="POST",
                                         headers={"Authorization": "Bearer " + token})
            with urllib.request.urlopen(req, timeout=10) as r:
                body = json.loads(r.read())
            check(body.get("result") == want, "nested: POST reload%s answers %s" % (q, want),
                  body)
        req = urllib.request.Request(d.url + "/v1/zones/example.com/reload?force=yes", data=b"",
                                     method="POST", headers={"Authorization": "Bearer " + token})
        try:
            urllib.request.urlopen(req, timeout=10)
            code = 200
        except urllib.error.HTTPError as e:
            code = e.code
        check(code == 400, "nested: force=yes is refused with 400", code)

        # An include that appears, then is replaced by rename, then SIGHUP.
        write(deepest, "deep A 192.0.2.2\n$INCLUDE new.inc\n")
        write(os.path.join(os.path.dirname(deepest), "new.inc"), "new A 192.0.2.30\n")
        d.hup()
        check(wait_for(lambda: rdata(d.port, "new.example.com") == ["192.0.2.30"]),
              "nested: SIGHUP sees an include that appeared four deep")
        tmp = deepest + ".tmp"
        write(tmp, "deep A 192.0.2.3\n")
        os.rename(tmp, deepest)
        d.hup()
        check(wait_for(lambda: rdata(d.port, "deep.example.com") == ["192.0.2.3"]),
              "nested: SIGHUP sees the deepest include replaced by rename")
        check(wait_for(lambda: ask(d.port, "new.example.com")[0] == 3),
              "nested: the record of the include that went is gone (NXDOMAIN)")
        log = d.log_text()
        served, reloaded = log.count("reload: serving"), log.count("example.com: reloaded")
        d.hup()
        check(wait_for(lambda: d.log_text().count("reload: serving") == served + 1),
              "nested: SIGHUP without a change is handled")
        check(d.log_text().count("example.com: reloaded") == reloaded,
              "nested: SIGHUP without a change applies nothing")

        # TTLs above 2^31 - 1 through the API and zone apply: capped with a warning.
        rc, out, err = d.ctl("record", "add", "example.com", "big", "4294967295", "A", "192.0.2.40")
        check(rc == 0 and "capped to 2147483647" in err, "api: record add with TTL 4294967295 "
              "is capped with a warning", (rc, out, err))
        check(dig_ttl(d.port, "big.example.com") == [MAX_TTL],
              "api: dig sees TTL 2147483647", dig_ttl(d.port, "big.example.com"))
        batch = os.path.join(work, "nested", "batch.txt")
        write(batch, "# two changes\nadd huge 2147483648 A 192.0.2.41\n\nadd fine 60 A 192.0.2.42\n")
        rc, out, err = d.ctl("zone", "apply", "example.com", batch)
        check(rc == 0 and ("%s:2:" % batch) in err and "capped" in err and "fine" not in err,
              "api: zone apply names FILE:LINE of the capped TTL", (rc, out, err))
        check(dig_ttl(d.port, "huge.example.com") == [MAX_TTL] and
              dig_ttl(d.port, "fine.example.com") == [60], "api: batch TTLs served capped")
        rc, out, err = d.ctl("record", "add", "example.com", "bad", "4294967296", "A",
                             "192.0.2.43")
        check(rc == 2, "api: TTL 4294967296 is refused", (rc, err))
    finally:
        d.stop()


# ---- the shared cases -----------------------------------------------------------------------

def copy_case(name, work):
    src = os.path.join(CASES, name)
    if not os.path.isdir(src):
        check(False, "case %s: not found in %s (set FENNEC_CASES)" % (name, CASES))
        return None
    dst = os.path.join(work, name)
    shutil.copytree(src, dst)
    for root, dirs, files in os.walk(dst):
        for n in dirs + files:
            os.chmod(os.path.join(root, n), 0o755 if n in dirs else 0o644)
    return dst


def test_case12(fennecd, fennecctl, work):
    c = copy_case("12-include-reload", work)
    if not c:
        return
    d = Daemon(fennecd, fennecctl, work, "case12", PORT_BASE + 10,
               {"example.com": os.path.join(c, "example.com.zone")})
    try:
        hosts = os.path.join(c, "inc", "hosts.inc")
        check(rdata(d.port, "www.example.com") == ["192.0.2.1"], "case 12: before")
        write(hosts, open(hosts).read().replace("192.0.2.1", "192.0.2.2"))
        rc, out, err = d.ctl("zone", "reload", "example.com")
        check(rc == 0 and "reloaded" in out, "case 12: fennecctl zone reload says reloaded",
              out + err)
        check(rdata(d.port, "www.example.com") == ["192.0.2.2"],
              "case 12: www.example.com A answers 192.0.2.2", rdata(d.port, "www.example.com"))
        rc, j = d.reload("example.com")
        check(j.get("result") == "unchanged", "case 12: a second reload says unchanged", j)
        log = d.log_text()
        check("file unchanged" not in log, "case 12: no \"file unchanged\" in the log")
        # SIGHUP takes the same way.
        write(hosts, open(hosts).read().replace("192.0.2.2", "192.0.2.3"))
        d.hup()
        check(wait_for(lambda: rdata(d.port, "www.example.com") == ["192.0.2.3"]),
              "case 12: SIGHUP reloads the changed include")
    finally:
        d.stop()


def test_case16(fennecd, fennecctl, work):
    c = copy_case("16-ttl-high-bit", work)
    if not c:
        return
    zfile = os.path.join(c, "example.com.zone")
    d = Daemon(fennecd, fennecctl, work, "case16", PORT_BASE + 20, {"example.com": zfile})
    try:
        for name, want in (("big", MAX_TTL), ("max", MAX_TTL), ("ok", MAX_TTL)):
            got = dig_ttl(d.port, "%s.example.com" % name)
            check(got == [want], "case 16: %s.example.com A TTL %d" % (name, want), got)
        log = d.log_text()
        check(("%s:4:" % zfile) in log and ("%s:5:" % zfile) in log and "capped" in log,
              "case 16: warnings name FILE:4 and FILE:5", log[-2000:])
        check(("%s:6:" % zfile) not in log, "case 16: no warning for the largest legal TTL")
    finally:
        d.stop()


# ---- CRLF against Knot and NSD --------------------------------------------------------------

CRLF_ZONE = (
    "$ORIGIN crlf.test.\n"
    "$TTL 300\n"
    "@ IN SOA ns1 hostmaster ( 2024010101 ; serial\n"
    "  7200 3600 ; refresh, retry\n"
    "  1209600 300 ) ; expire, minimum\n"
    "@ IN NS ns1\n"
    "ns1 IN A 192.0.2.53 ; a comment\n"
    "; a comment line\n"
    "\n"
    "txt IN TXT \"at the end\"\n"
    "txt2 IN TXT \"one\" \"two;three\"\n"
    "multi IN TXT ( \"first\"\n"
    "  \"second\" )\n"
    "bare IN TXT word\n"
    "mx IN MX ( 10\n"
    "  mail )\n"
    "$INCLUDE crlf.inc\n"
    "$ORIGIN sub.crlf.test.\n"
    "host 60 IN A 192.0.2.7\n"
    "alias IN CNAME host\n")
CRLF_INC = "inc IN A 192.0.2.8\ninc IN AAAA 2001:db8::8\n"
CRLF_QUERIES = [("crlf.test", "SOA"), ("crlf.test", "NS"), ("ns1.crlf.test", "A"),
                ("txt.crlf.test", "TXT"), ("txt2.crlf.test", "TXT"), ("multi.crlf.test", "TXT"),
                ("bare.crlf.test", "TXT"), ("mx.crlf.test", "MX"), ("inc.crlf.test", "A"),
                ("inc.crlf.test", "AAAA"), ("host.sub.crlf.test", "A"),
                ("alias.sub.crlf.test", "CNAME")]


def crlf(text, every=1):
    out, line = [], 0
    for ch in text:
        if ch == "\n":
            if line % every == 0:
                out.append("\r")
            line += 1
        out.append(ch)
    return "".join(out)


def test_crlf(fennecd, fennecctl, work):
    import servers
    lf_dir = os.path.join(work, "crlf-lf")
    crlf_dir = os.path.join(work, "crlf-crlf")
    mixed_dir = os.path.join(work, "crlf-mixed")
    write(os.path.join(lf_dir, "crlf.test.zone"), CRLF_ZONE)
    write(os.path.join(lf_dir, "crlf.inc"), CRLF_INC)
    write(os.path.join(crlf_dir, "crlf.test.zone"), crlf(CRLF_ZONE), "w")
    write(os.path.join(crlf_dir, "crlf.inc"), crlf(CRLF_INC))
    write(os.path.join(mixed_dir, "crlf.test.zone"), crlf(CRLF_ZONE, 2))
    write(os.path.join(mixed_dir, "crlf.inc"), crlf(CRLF_INC, 2))
    for d in (crlf_dir, mixed_dir):  # open() in text mode would not write \r\n on Linux anyway
        with open(os.path.join(d, "crlf.test.zone"), "rb") as f:
            assert b"\r\n" in f.read()

    knot = servers.start_knot(lf_dir, port=KNOT_PORT, with_v6=False)
    nsd = servers.start_nsd(crlf_dir, port=NSD_PORT, with_v6=False)
    f_crlf = Daemon(fennecd, fennecctl, work, "crlf", PORT_BASE + 30,
                    {"crlf.test": os.path.join(crlf_dir, "crlf.test.zone")})
    f_mixed = Daemon(fennecd, fennecctl, work, "mixed", PORT_BASE + 40,
                     {"crlf.test": os.path.join(mixed_dir, "crlf.test.zone")})
    try:
        for name, qtype in CRLF_QUERIES:
            k = ask(KNOT_PORT, name, qtype)
            n = ask(NSD_PORT, name, qtype)
            c = ask(f_crlf.port, name, qtype)
            m = ask(f_mixed.port, name, qtype)
            check(k[1] != [] and c == k and m == k,
                  "crlf: %s %s as Knot answers for the LF file" % (name, qtype),
                  "knot %r fennec crlf %r mixed %r" % (k, c, m))
            check(c == n, "crlf: %s %s as NSD answers for the CRLF file" % (name, qtype),
                  "nsd %r fennec %r" % (n, c))
    finally:
        f_crlf.stop()
        f_mixed.stop()
        knot.stop()
        nsd.stop()


# ---- no $TTL --------------------------------------------------------------------------------

def test_no_ttl(fennecd, fennecctl, work):
    zfile = os.path.join(work, "nottl", "zones", "example.com.zone")
    write(zfile, "$ORIGIN example.com.\n"
                 "@ IN SOA ns1 hostmaster 1 7200 3600 86400 300\n"
                 "@ 600 IN NS ns1\n"
                 "ns1 IN A 192.0.2.1\n"
                 "x 700 IN A 192.0.2.2\n"
                 "y IN A 192.0.2.3\n")
    d = Daemon(fennecd, fennecctl, work, "nottl", PORT_BASE + 50, {"example.com": zfile})
    try:
        check(dig_ttl(d.port, "example.com", "SOA") == [3600], "no $TTL: the first record "
              "without a TTL takes 3600", dig_ttl(d.port, "example.com", "SOA"))
        check(dig_ttl(d.port, "ns1.example.com") == [600], "no $TTL: ns1 takes the NS TTL 600")
        check(dig_ttl(d.port, "y.example.com") == [700], "no $TTL: y takes 700")
        log = d.log_text()
        check(log.count("no $TTL") == 1 and ("%s:2:" % zfile) in log,
              "no $TTL: one warning naming FILE:2", log[-1500:])
    finally:
        d.stop()


def main():
    args = sys.argv[1:]
    fennecd = (args[0] if args else None) or os.environ.get("FENNECD")  # the command line wins
    if not fennecd:
        print("usage: test_zonefile.py FENNECD [FENNECCTL]")
        return 2
    fennecctl = (args[1] if len(args) > 1 else None) or os.environ.get("FENNECCTL") or \
        os.path.join(os.path.dirname(fennecd), "fennecctl")
    fennecd, fennecctl = os.path.abspath(fennecd), os.path.abspath(fennecctl)
    for tool, package in (("dig", "bind9-dnsutils"), ("openssl", "openssl")):
        if not shutil.which(tool):
            print("FAIL %s is missing: install the Debian package %s" % (tool, package))
            return 1
    work = tempfile.mkdtemp(prefix="fennec-zonefile-")
    try:
        for t in (test_nested, test_case12, test_case16, test_crlf, test_no_ttl):
            print("---- %s" % t.__name__)
            try:
                t(fennecd, fennecctl, work)
            except Exception as e:  # a harness problem fails the test, loudly
                check(False, "%s raised %s: %s" % (t.__name__, type(e).__name__, e))
    finally:
        for d in daemons:
            d.stop()
        if not failures:
            shutil.rmtree(work, True)
        else:
            print("work folder kept: %s" % work)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
