#!/usr/bin/python3
"""TSIG (RFC 8945) and AXFR out (RFC 5936) against real clients and real peers.

- The case of a signed query with a key the server does not know: NOTAUTH and an unsigned
  TSIG record with BADKEY, over UDP and TCP, read by dig and by dnspython.
- Signed queries with a configured key (good, wrong secret, skewed clock) answered by
  fennecd, Knot DNS and NSD configured with the same key; fennec must give the expected
  answer, and the answer Knot gives where Knot and NSD agree.
- AXFR: dig and kdig accept fennec's transfer; a 100,000-record zone arrives complete in
  several messages; an address the rule does not name is REFUSED; a zone's own rule
  overrides the global one; a TSIG-signed transfer has every message signed (dnspython
  checks the chain); a wrong secret gets NOTAUTH. Knot and NSD follow fennec as secondaries
  (Knot with the key from an address only the key allows) and serve exactly fennec's records.
- /metrics counts the transfers and the signed queries.

Ports: this test uses 17000-17199 only (PORT_BASE below).
"""

import argparse
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servers  # noqa: E402

import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdataclass  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.tsig  # noqa: E402
import dns.tsigkeyring  # noqa: E402
import dns.zone  # noqa: E402

PORT_BASE = 17000  # the range 17000-17199 is this test's
FENNEC = PORT_BASE          # fennecd with keys and rules; control at +1
FENNEC_NOKEYS = PORT_BASE + 2
KNOT_REF = PORT_BASE + 10   # Knot and NSD as primaries with the same key: reference answers
NSD_REF = PORT_BASE + 11
KNOT_SEC = PORT_BASE + 20   # Knot and NSD as secondaries of fennecd
NSD_SEC = PORT_BASE + 21

KEY = "xfr-key."
SECRET = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="
WRONG = "d3JvbmdzZWNyZXR3cm9uZ3NlY3JldHdyb25nc2VjcmV0"
BIG_RECORDS = 100000

CASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cases", "11-tsig-unknown-key")
SMALL_ZONE = """example.com. 500 IN SOA ns1.outside.example. root.example.com. 3 604800 86400 2419200 604800
example.com. 500 IN NS  ns1.outside.example.
www.example.com. 500 IN A 192.0.2.1
"""

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def keyring(secret=SECRET, alg="hmac-sha256"):
    return dns.tsigkeyring.from_text({KEY: (alg, secret)})


def write_zones(folder):
    with open(os.path.join(folder, "example.com.zone"), "w") as f:
        f.write(SMALL_ZONE)
    with open(os.path.join(folder, "big.test.zone"), "w") as f:
        f.write("$ORIGIN big.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n"
                "@ NS ns1\nns1 A 192.0.2.53\n")
        for i in range(BIG_RECORDS - 3):
            f.write(f"h{i} A 10.{i >> 16}.{(i >> 8) & 255}.{i & 255}\n")
    with open(os.path.join(folder, "closed.test.zone"), "w") as f:
        f.write("$ORIGIN closed.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n"
                "@ NS ns1\nns1 A 192.0.2.53\n")


def zone_records(path, origin):
    z = dns.zone.from_file(path, origin=origin, relativize=False)
    out = set()
    for name, ttl, rd in z.iterate_rdatas():
        out.add((name.to_text().lower(), ttl, dns.rdatatype.to_text(rd.rdtype), rd.to_text()))
    return out


def xfr_records(msgs):
    """Records of an AXFR (list of messages), SOA counted once; and the SOA positions."""
    rrs = []
    for m in msgs:
        for rrset in m.answer:
            for rd in rrset:
                rrs.append((rrset.name.to_text().lower(), rrset.ttl,
                            dns.rdatatype.to_text(rd.rdtype), rd.to_text()))
    return rrs


def axfr_messages(port, zone, source="127.0.0.1", kr=None, timeout=30):
    """Every message of an AXFR read with dnspython; with KR, each message's TSIG is
    verified (dns.query.xfr keeps the multi-message chain)."""
    return list(dns.query.xfr("127.0.0.1", zone, port=port, source=source, keyring=kr,
                              keyname=KEY if kr else None, lifetime=timeout, timeout=timeout,
                              relativize=False))


def raw(wire, port, tcp, source="127.0.0.1", timeout=3):
    if tcp:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                      source_address=(source, 0)) as s:
            s.sendall(struct.pack("!H", len(wire)) + wire)
            hdr = b""
            while len(hdr) < 2:
                hdr += s.recv(2 - len(hdr))
            n = struct.unpack("!H", hdr)[0]
            data = b""
            while len(data) < n:
                chunk = s.recv(n - len(data))
                if not chunk:
                    break
                data += chunk
            return data
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.settimeout(timeout)
        s.sendto(wire, ("127.0.0.1", port))
        return s.recv(65535)


def last_rr(wire):
    """(rcode, type of the last record, TSIG error, MAC size, Other Len) of an answer."""
    qd, an, ns, ar = struct.unpack("!HHHH", wire[4:12])
    pos = 12
    for _ in range(qd):
        _, used = dns.name.from_wire(wire, pos)
        pos += used + 4
    last = None
    for _ in range(an + ns + ar):
        _, used = dns.name.from_wire(wire, pos)
        pos += used
        t, _, _, rdlen = struct.unpack("!HHIH", wire[pos:pos + 10])
        last = (t, pos + 10, rdlen)
        pos += 10 + rdlen
    rcode = wire[3] & 15
    if not last or last[0] != 250:
        return rcode, last[0] if last else None, None, None, None
    rd = last[1]
    _, used = dns.name.from_wire(wire, rd)
    o = rd + used + 8
    mac_size = struct.unpack("!H", wire[o:o + 2])[0]
    o += 2 + mac_size + 2
    err, olen = struct.unpack("!HH", wire[o:o + 4])
    return rcode, 250, err, mac_size, olen


def signed_query(name, rdtype, kr, skew=0, qid=None):
    q = dns.message.make_query(name, rdtype, use_edns=False)
    if qid is not None:
        q.id = qid
    q.use_tsig(kr, keyname=KEY, fudge=300)
    real = time.time
    time.time = lambda: real() + skew
    try:
        wire = q.to_wire()
    finally:
        time.time = real
    return q, wire


# ---- servers ----

def start_fennec(binary, folder, tmp):
    data = os.path.join(tmp, "data")
    os.makedirs(data, exist_ok=True)
    conf = os.path.join(tmp, "fennecd.yaml")
    with open(conf, "w") as f:
        f.write(f"""node: {{id: tsig1, role: primary, data_dir: {data}}}
listen:
  dns: ["127.0.0.1:{FENNEC}"]
  control: "127.0.0.1:{FENNEC + 1}"
workers: 2
tsig_keys:
  - {{ name: {KEY}, algorithm: hmac-sha256, secret: "{SECRET}" }}
transfer:
  allow: ["127.0.0.1", "::1/128"]
  tsig: [{KEY}]
zones:
  - name: example.com
    file: {folder}/example.com.zone
  - name: big.test
    file: {folder}/big.test.zone
  - name: closed.test
    file: {folder}/closed.test.zone
    transfer: {{ allow: ["127.0.0.3"] }}
""")
    os.environ.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1")
    srv = servers.Server("fennecd", FENNEC, [binary, "-c", conf], tmp,
                         os.path.join(tmp, "fennecd.out"))
    return srv.start("example.com", timeout=60)


def start_fennec_nokeys(binary, folder, tmp):
    data = os.path.join(tmp, "data2")
    os.makedirs(data, exist_ok=True)
    conf = os.path.join(tmp, "fennecd2.yaml")
    with open(conf, "w") as f:
        f.write(f"""node: {{id: tsig2, role: primary, data_dir: {data}}}
listen:
  dns: ["127.0.0.1:{FENNEC_NOKEYS}"]
workers: 1
zones:
  - name: example.com
    file: {CASE}/example.com.zone
""")
    srv = servers.Server("fennecd-nokeys", FENNEC_NOKEYS, [binary, "-c", conf], tmp,
                         os.path.join(tmp, "fennecd2.out"))
    return srv.start("example.com", timeout=30)


def start_knot_ref(folder, tmp):
    knotd = servers.need_binary("knotd", "apt-get install knot")
    d = os.path.join(tmp, "knot-ref")
    os.makedirs(d)
    conf = os.path.join(d, "knot.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
  listen: 127.0.0.1@{KNOT_REF}
  rundir: {d}
  pidfile: {d}/knot.pid
  user: root
log:
  - target: stdout
    any: info
database:
  storage: {d}
key:
  - id: {KEY}
    algorithm: hmac-sha256
    secret: {SECRET}
acl:
  - id: addr
    address: 127.0.0.1
    action: transfer
  - id: bykey
    key: {KEY}
    action: transfer
template:
  - id: default
    storage: {folder}
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: example.com
    acl: [addr, bykey]
""")
    return servers.Server("knotd-ref", KNOT_REF, [knotd, "-c", conf], d,
                          os.path.join(d, "out")).start("example.com")


def start_nsd_ref(folder, tmp):
    nsd = servers.need_binary("nsd", "apt-get install nsd")
    d = os.path.join(tmp, "nsd-ref")
    os.makedirs(d)
    conf = os.path.join(d, "nsd.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
  ip-address: 127.0.0.1@{NSD_REF}
  server-count: 1
  username: ""
  zonesdir: "{folder}"
  database: ""
  pidfile: "{d}/nsd.pid"
  xfrdfile: "{d}/xfrd.state"
  zonelistfile: "{d}/zone.list"
  xfrdir: "{d}"
remote-control:
  control-enable: no
key:
  name: {KEY}
  algorithm: hmac-sha256
  secret: "{SECRET}"
zone:
  name: example.com
  zonefile: example.com.zone
  provide-xfr: 127.0.0.1 NOKEY
  provide-xfr: 0.0.0.0/0 {KEY}
""")
    return servers.Server("nsd-ref", NSD_REF, [nsd, "-d", "-c", conf], d,
                          os.path.join(d, "out")).start("example.com")


def start_knot_secondary(tmp):
    """Knot follows fennec with the key, from 127.0.0.2, which only the key lets in."""
    knotd = servers.need_binary("knotd", "apt-get install knot")
    d = os.path.join(tmp, "knot-sec")
    os.makedirs(d)
    conf = os.path.join(d, "knot.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
  listen: 127.0.0.1@{KNOT_SEC}
  rundir: {d}
  pidfile: {d}/knot.pid
  user: root
  # the test reads the 100k-record zone back with dnspython, which can be slower than
  # Knot's default 500 ms TCP I/O timeout on a loaded machine
  tcp-io-timeout: 30000
  tcp-idle-timeout: 60
log:
  - target: stdout
    any: info
database:
  storage: {d}
key:
  - id: {KEY}
    algorithm: hmac-sha256
    secret: {SECRET}
remote:
  - id: fennec
    address: 127.0.0.1@{FENNEC}
    key: {KEY}
    via: 127.0.0.2
acl:
  - id: out
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: {d}
    master: fennec
    acl: out
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
zone:
  - domain: example.com
  - domain: big.test
""")
    return servers.Server("knotd-secondary", KNOT_SEC, [knotd, "-c", conf], d,
                          os.path.join(d, "out"))


def start_nsd_secondary(tmp):
    nsd = servers.need_binary("nsd", "apt-get install nsd")
    d = os.path.join(tmp, "nsd-sec")
    os.makedirs(d)
    conf = os.path.join(d, "nsd.conf")
    zones = "".join(f"""zone:
  name: {z}
  request-xfr: AXFR 127.0.0.1@{FENNEC} NOKEY
  allow-notify: 127.0.0.1 NOKEY
  provide-xfr: 127.0.0.1 NOKEY
""" for z in ("example.com", "big.test"))
    with open(conf, "w") as f:
        f.write(f"""server:
  ip-address: 127.0.0.1@{NSD_SEC}
  server-count: 1
  username: ""
  zonesdir: "{d}"
  database: ""
  pidfile: "{d}/nsd.pid"
  xfrdfile: "{d}/xfrd.state"
  zonelistfile: "{d}/zone.list"
  xfrdir: "{d}"
  verbosity: 2
remote-control:
  control-enable: no
{zones}""")
    return servers.Server("nsd-secondary", NSD_SEC, [nsd, "-d", "-c", conf], d,
                          os.path.join(d, "out"))


def wait_serving(srv, zone, timeout=60):
    srv.proc = None
    deadline = time.monotonic() + timeout
    sp = subprocess
    log = open(srv.logfile, "ab")
    srv.proc = sp.Popen(srv.argv, stdout=log, stderr=sp.STDOUT, stdin=sp.DEVNULL,
                        cwd=srv.workdir, start_new_session=True)
    log.close()
    servers._install_handlers()
    servers._started.append(srv)
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            raise servers.HarnessError(f"{srv.name} exited:\n{srv.log_tail()}")
        if all(servers.soa_query(z, srv.port) == 0 for z in zone):
            return srv
        time.sleep(0.2)
    raise servers.HarnessError(f"{srv.name} did not load {zone} from fennec within {timeout} s:"
                               f"\n{srv.log_tail()}")


# ---- the checks ----

def test_case11(nokeys_port):
    kr = dns.tsigkeyring.from_text({"unknown-key.example.": ("hmac-sha256", SECRET)})
    for tcp in (False, True):
        q = dns.message.make_query("www.example.com.", "A", use_edns=False)
        q.use_tsig(kr, keyname="unknown-key.example.")
        w = raw(q.to_wire(), nokeys_port, tcp)
        rcode, t, err, mac, _ = last_rr(w)
        an = struct.unpack("!H", w[6:8])[0]
        tr = "tcp" if tcp else "udp"
        check(rcode == dns.rcode.NOTAUTH and an == 0 and t == 250 and err == 17 and mac == 0,
              f"case 11 ({tr}): NOTAUTH, no answer, unsigned TSIG with BADKEY "
              f"(rcode {rcode}, an {an}, tsig error {err}, mac size {mac})")
        try:
            dns.message.from_wire(w, keyring=kr, request_mac=q.mac)
            check(False, f"case 11 ({tr}): dnspython sees a TSIG error")
        except dns.tsig.PeerBadKey:
            check(True, f"case 11 ({tr}): dnspython reports PeerBadKey")
    dig = servers.need_binary("dig", "apt-get install bind9-dnsutils")
    with open(os.path.join(CASE, "queries.txt")) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split()
            args = [dig, "@127.0.0.1", "-p", str(nokeys_port), parts[0], parts[1]]
            rest = parts[2:]
            if rest and rest[0] == "tcp":
                args.append("+tcp")
                rest = rest[1:]
            out = subprocess.run(args + rest, capture_output=True, text=True, timeout=20).stdout
            check("status: NOTAUTH" in out and "BADKEY" in out,
                  f"case 11 with dig {' '.join(parts)}: NOTAUTH and BADKEY")


def outcome(port, wire, tcp, source="127.0.0.1"):
    try:
        w = raw(wire, port, tcp, source)
    except OSError as e:
        return ("no answer", str(e))
    rcode, t, err, mac, olen = last_rr(w)
    return (dns.rcode.to_text(rcode), "tsig" if t == 250 else "no tsig", err,
            "signed" if mac else "unsigned", olen)


def test_signed_queries():
    cases = [
        ("good key", keyring(), 0, ("NOERROR", "tsig", 0, "signed", 0)),
        ("wrong secret", keyring(WRONG), 0, ("NOTAUTH", "tsig", 16, "unsigned", 0)),
        ("clock 1000 s ahead", keyring(), 1000, ("NOTAUTH", "tsig", 18, "signed", 6)),
        ("unknown key", dns.tsigkeyring.from_text({"other.": ("hmac-sha256", SECRET)}), 0,
         ("NOTAUTH", "tsig", 17, "unsigned", 0)),
    ]
    for what, kr, skew, expect in cases:
        for tcp in (False, True):
            if list(kr.keys())[0] == dns.name.from_text(KEY):
                q, wire = signed_query("www.example.com.", "A", kr, skew)
            else:
                q = dns.message.make_query("www.example.com.", "A", use_edns=False)
                q.use_tsig(kr, keyname="other.")
                wire = q.to_wire()
            got = {n: outcome(p, wire, tcp) for n, p in
                   (("fennec", FENNEC), ("knot", KNOT_REF), ("nsd", NSD_REF))}
            tr = "tcp" if tcp else "udp"
            check(got["fennec"] == expect,
                  f"signed query, {what} ({tr}): fennec {got['fennec']}, expected {expect}; "
                  f"knot {got['knot']}, nsd {got['nsd']}")
            if got["knot"] == got["nsd"]:
                check(got["fennec"] == got["knot"],
                      f"signed query, {what} ({tr}): fennec agrees with Knot and NSD")
    # The good answer verifies with dnspython's own TSIG code (dns.query does it).
    kr = keyring()
    for f in (dns.query.udp, dns.query.tcp):
        q = dns.message.make_query("www.example.com.", "A")
        q.use_tsig(kr, keyname=KEY)
        r = f(q, "127.0.0.1", port=FENNEC, timeout=3)
        check(r.had_tsig and r.rcode() == 0 and len(r.answer) == 1,
              f"signed query over {f.__name__}: dnspython verified the signed answer")


def test_axfr(folder):
    small = zone_records(os.path.join(folder, "example.com.zone"), "example.com.")
    big = zone_records(os.path.join(folder, "big.test.zone"), "big.test.")

    msgs = axfr_messages(FENNEC, "example.com")
    rrs = xfr_records(msgs)
    check(rrs[0][2] == "SOA" and rrs[-1][2] == "SOA" and set(rrs) == small and
          len(rrs) == len(small) + 1, "AXFR example.com: SOA first and last, every record")

    t0 = time.monotonic()
    msgs = axfr_messages(FENNEC, "big.test")
    took = time.monotonic() - t0
    rrs = xfr_records(msgs)
    sizes = [len(m.to_wire()) for m in msgs]
    check(len(msgs) > 1 and set(rrs) == big and len(rrs) == BIG_RECORDS + 1 and
          rrs[0][2] == "SOA" and rrs[-1][2] == "SOA",
          f"AXFR of {BIG_RECORDS} records: complete, {len(msgs)} messages, "
          f"largest {max(sizes)} bytes, {took:.2f} s")

    # dig and kdig accept it.
    dig = servers.need_binary("dig", "apt-get install bind9-dnsutils")
    kdig = servers.need_binary("kdig", "apt-get install knot-dnsutils")
    out = subprocess.run([dig, "@127.0.0.1", "-p", str(FENNEC), "big.test", "AXFR"],
                         capture_output=True, text=True, timeout=120).stdout
    check(f"XFR size: {BIG_RECORDS + 1} records" in out,
          "dig axfr big.test: " + next((ln for ln in out.splitlines() if "XFR size" in ln),
                                       out[-300:]))
    out = subprocess.run([kdig, "@127.0.0.1", "-p", str(FENNEC), "big.test", "AXFR"],
                         capture_output=True, text=True, timeout=120).stdout
    check(f"{BIG_RECORDS + 1} records" in out and ";; ERROR" not in out,
          "kdig axfr big.test: " + next((ln for ln in out.splitlines() if "Received" in ln),
                                        out[-300:]))
    out = subprocess.run([kdig, "@127.0.0.1", "-p", str(FENNEC), "example.com", "AXFR", "-y",
                          f"hmac-sha256:{KEY}:{SECRET}"],
                         capture_output=True, text=True, timeout=60)
    check("4 records" in out.stdout and ";; ERROR" not in out.stdout + out.stderr and "WARN" not in out.stdout + out.stderr,
          "kdig -y axfr example.com: accepted the signed transfer")

    # Refused from an address the rule does not name; allowed with the key from there.
    q = dns.message.make_query("example.com.", "AXFR", use_edns=False)
    got = outcome(FENNEC, q.to_wire(), True, source="127.0.0.2")
    check(got[0] == "REFUSED", f"AXFR from 127.0.0.2 without a key: {got[0]}")
    got = outcome(FENNEC, q.to_wire(), False)
    check(got[0] == "NOTIMP", f"AXFR over UDP: {got[0]} (as Knot and NSD)")
    q = dns.message.make_query("closed.test.", "AXFR", use_edns=False)
    got = outcome(FENNEC, q.to_wire(), True)
    check(got[0] == "REFUSED", f"AXFR closed.test (own rule: 127.0.0.3 only) from 127.0.0.1: "
                               f"{got[0]}")
    msgs = axfr_messages(FENNEC, "closed.test", source="127.0.0.3")
    check(len(xfr_records(msgs)) == 4, "AXFR closed.test from 127.0.0.3: allowed by its rule")

    t0 = time.monotonic()
    msgs = axfr_messages(FENNEC, "big.test", source="127.0.0.2", kr=keyring())
    rrs = xfr_records(msgs)
    check(len(msgs) > 1 and set(rrs) == big and all(m.had_tsig for m in msgs),
          f"TSIG AXFR from 127.0.0.2: {len(msgs)} messages, every one signed and verified "
          f"by dnspython, {time.monotonic() - t0:.2f} s")
    q, wire = signed_query("example.com.", "AXFR", keyring(WRONG))
    got = outcome(FENNEC, wire, True, source="127.0.0.2")
    check(got[0] == "NOTAUTH" and got[2] == 16, f"TSIG AXFR with a wrong secret: {got}")
    # IXFR is answered with a full AXFR over TCP.
    q = dns.message.make_query("example.com.", "IXFR", use_edns=False)
    w = raw(q.to_wire(), FENNEC, True)
    r = dns.message.from_wire(w)
    check(r.rcode() == 0 and len(r.answer) >= 3, "IXFR over TCP: answered as AXFR")
    return small, big


def test_secondaries(tmp, small, big):
    knot = wait_serving(start_knot_secondary(tmp), ["example.com", "big.test"])
    nsd = wait_serving(start_nsd_secondary(tmp), ["example.com", "big.test"])
    for srv in (knot, nsd):
        for zone, want in (("example.com", small), ("big.test", big)):
            got = set(xfr_records(axfr_messages(srv.port, zone)))
            check(got == want, f"{srv.name} serves {zone} as fennec sent it "
                               f"({len(got)} records, {len(want - got)} missing, "
                               f"{len(got - want)} extra)")
    knot.stop()
    nsd.stop()


def test_metrics():
    text = urllib.request.urlopen(f"http://127.0.0.1:{FENNEC + 1}/metrics", timeout=5).read()
    text = text.decode()
    vals = {}
    for line in text.splitlines():
        if line.startswith("fennec_axfr_total") or line.startswith("fennec_tsig_total"):
            k, v = line.rsplit(" ", 1)
            vals[k] = float(v)
    print("     " + ", ".join(f"{k}={v:g}" for k, v in sorted(vals.items())))
    check(vals.get('fennec_axfr_total{result="done"}', 0) >= 6, "metrics: transfers done")
    check(vals.get('fennec_axfr_total{result="refused"}', 0) >= 2, "metrics: transfers refused")
    check(vals.get('fennec_tsig_total{result="badsig"}', 0) >= 2, "metrics: BADSIG counted")
    check(vals.get('fennec_tsig_total{result="badtime"}', 0) >= 2, "metrics: BADTIME counted")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fennecd", required=False)
    ap.add_argument("--source-dir", required=False)
    args = ap.parse_args()
    binary = servers.fennecd_path(args.fennecd)
    tmp = servers.make_tmp("tsig")
    folder = os.path.join(tmp, "zones")
    os.makedirs(folder)
    write_zones(folder)
    start_fennec(binary, folder, tmp)
    nokeys = start_fennec_nokeys(binary, folder, tmp)
    start_knot_ref(folder, tmp)
    start_nsd_ref(folder, tmp)

    test_case11(nokeys.port)
    test_signed_queries()
    small, big = test_axfr(folder)
    test_secondaries(tmp, small, big)
    test_metrics()
    if failures:
        print(f"test_tsig_axfr: {len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("test_tsig_axfr: all checks passed")
    return 0


if __name__ == "__main__":
    servers.run_main("test_tsig_axfr", main)
