#!/usr/bin/python3
"""fennec integration test: fennecd against Knot DNS, query by query.

Starts Knot DNS (the reference) and fennecd on the zones of tests/integration/zones, sends
every query below over UDP and over TCP to both, and compares the normalised answers:
rcode, opcode, header flags, the question (owner name case included), the answer,
authority and additional sections as sets of RRs (TTLs compared, names case-insensitive),
EDNS presence, version, DO bit, options and payload, and the answer size (name compression).
Queries the servers must not answer (QR=1) are checked to get no answer from either.
A sample is also sent with the real clients `dig` and `kdig` and their outputs compared.

Every difference is printed and fails the test unless an entry of allowed_differences.json
matches it; each entry must name a section of docs/differences.md that cites an RFC section.

usage: test_compare.py [--fennecd PATH] [--source-dir DIR] [--peers-only] [--with-nsd]
  --peers-only   compare NSD against Knot (validates the harness without fennecd)
  --with-nsd     also query NSD and show its answer next to every difference
"""

import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import servers  # noqa: E402
from dnsutil import (build_query, compare, exchange, header, name_wire, normalize,  # noqa: E402
                     opt_rr, show)

import struct  # noqa: E402

EX = "example.test."
E0 = {"payload": 1232}  # default EDNS of the queries: version 0, 1232 bytes, DO clear


class Q:
    """One query: either built from fields, or RAW (a function of the id giving the wire)."""

    def __init__(self, qname, qtype="A", qclass="IN", *, flags=(), opcode=0, edns=E0,
                 raw=None, label=None, drop=False, timeout=2.0, hosts=None, point=""):
        self.qname, self.qtype, self.qclass = qname, qtype, qclass
        self.flags, self.opcode, self.edns, self.raw = flags, opcode, edns, raw
        self.drop = drop  # neither server may answer
        self.timeout = timeout
        self.hosts = hosts  # None: IPv4 only
        self.point = point
        if label is None:
            extra = []
            if edns is None:
                extra.append("noedns")
            elif edns is not E0:
                extra.append("edns" + ",".join(f"{k}={v if not isinstance(v, (list, tuple)) else len(v)}"
                                               for k, v in sorted(edns.items())))
            if flags:
                extra.append("+" + "+".join(flags))
            if opcode:
                extra.append(f"opcode{opcode}")
            label = f"{qname} {qclass} {qtype}" + (f" [{' '.join(extra)}]" if extra else "")
        self.label = label

    def wire(self, qid):
        if self.raw is not None:
            return self.raw(qid)
        return build_query(qid, self.qname, self.qtype, self.qclass, self.flags, self.opcode,
                           self.edns)


def ex(rel):
    return EX if rel in ("", "@") else f"{rel}.{EX}"


def queries():
    qs = []
    # 1. The main zone: every name against the common types (AA, CNAME chains and loops,
    # referrals, NXDOMAIN/NODATA with SOA, ENTs, wildcards, RFC 3597, additional records).
    names = [
        "@", "www", "mail", "ns1", "v4only", "mixed", "host-ptr", "hinfo", "sshfp", "naptr",
        "_sip._udp", "_sip._tcp", "_ldap._tcp", "sipserver", "mx2", "unknown", "generic",
        "alias1", "alias3", "extalias", "dangling", "tochild", "todeleg", "towild", "toent",
        "tounknown", "loop1", "loop3", "self", "c1", "c7", "x.y.ent", "y.ent", "ent",
        "deepent", "c.d.deepent", "nothere", "a.b.nothere", "foo.wild", "exists.wild",
        "bar.exists.wild", "*.wild", "a.b.wild", "x.cwild", "y.x.cwild2", "a.wloop", "z.wb",
        "y.wb", "z.y.wb", "x.y.wb", "foo.wdeep", "*.wdeep", "sub.*.wdeep", "x.sub.*.wdeep",
        "sub", "ns1.sub", "host.sub", "a.b.sub", "ext", "x.ext", "mixed", "ns1.mixed",
        "child", "www.child", "up.child", "nothere.child", "a.w.child", "ns1.child",
        "manya", "bigtxt", "medtxt",
    ]
    types = ["A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "DS", "SRV", "TYPE65400"]
    for n in names:
        for t in types:
            qs.append(Q(ex(n), t, point="zone data"))
    for n in ("@", "www", "unknown", "sub", "foo.wild", "child", "nothere", "alias1", "manya"):
        qs.append(Q(ex(n), "ANY", point="RFC 8482 ANY"))
    for n, t in (("unknown", "TYPE65401"), ("unknown", "TYPE65402"), ("www", "TYPE65400"),
                 ("generic", "A"), ("sshfp", "SSHFP"), ("naptr", "NAPTR"), ("hinfo", "HINFO"),
                 ("host-ptr", "PTR"), ("@", "CAA"), ("www", "PTR"), ("www", "RRSIG"),
                 ("www", "NSEC"), ("@", "DNSKEY"), ("@", "NSEC3PARAM")):
        qs.append(Q(ex(n), t, point="types"))

    # 2. The other zones (multiple zones; child served by the same server; negative TTLs).
    for n, ts in (
        ("other.test.", ("SOA", "NS", "A", "MX")), ("www.other.test.", ("A", "AAAA")),
        ("back.other.test.", ("A", "CNAME")), ("ns2.other.test.", ("A",)),
        ("nothere.other.test.", ("A",)),
        ("wild.test.", ("SOA", "NS", "A")), ("host.wild.test.", ("A", "TXT", "AAAA")),
        ("foo.wild.test.", ("A", "AAAA", "TXT", "MX")), ("a.b.foo.wild.test.", ("A",)),
        ("*.wild.test.", ("A", "TXT")), ("deleg.wild.test.", ("A", "NS", "DS")),
        ("x.deleg.wild.test.", ("A",)), ("ns.deleg.wild.test.", ("A",)),
        ("ent.wild.test.", ("A", "TXT")), ("x.ent.wild.test.", ("A",)),
        ("leaf.ent.wild.test.", ("A", "AAAA")), ("ns.wild.test.", ("A", "AAAA")),
        ("negttl.test.", ("SOA", "NS", "MX")), ("host.negttl.test.", ("A", "AAAA")),
        ("nothere.negttl.test.", ("A",)),
        ("child.example.test.", ("SOA", "NS", "DS", "A", "DNSKEY")),
        ("www.child.example.test.", ("A", "AAAA", "MX")),
        ("up.child.example.test.", ("A", "CNAME")),
    ):
        for t in ts:
            qs.append(Q(n, t, point="zones"))

    # 3. REFUSED outside the served zones.
    for n in (".", "test.", "example.", "www.nothere.invalid.", "com.", "xexample.test.",
              "other.test.example.", "child.test."):
        for t in ("A", "SOA", "NS"):
            qs.append(Q(n, t, point="REFUSED"))

    # 4. QNAME case preserved.
    for n, t in (("WwW.ExAmPlE.TeSt.", "A"), ("EXAMPLE.TEST.", "SOA"), ("ALIAS1.Example.Test.", "A"),
                 ("SUB.example.test.", "A"), ("NoThErE.example.test.", "A"),
                 ("FOO.WILD.example.test.", "TXT"), ("MiXeD.example.test.", "A"),
                 ("mixed.EXAMPLE.test.", "A"), ("WWW.CHILD.EXAMPLE.TEST.", "A"),
                 ("Www.Nothere.Invalid.", "A"), ("Y.ENT.example.test.", "A"),
                 ("Mail.Example.Test.", "MX"), ("_SIP._UDP.example.test.", "SRV"),
                 ("x.CWILD.example.test.", "A"), ("Host.Sub.Example.Test.", "AAAA")):
        qs.append(Q(n, t, point="case"))

    # 5. EDNS: payload clamp, small payloads forcing TC, DO echoed, versions, options.
    for n, t in (("medtxt", "TXT"), ("bigtxt", "TXT"), ("manya", "A"), ("www", "A"),
                 ("@", "MX"), ("sub", "A"), ("nothere", "A")):
        for e in (None, {"payload": 512}, {"payload": 100}, {"payload": 1232},
                  {"payload": 1400}, {"payload": 4096}, {"payload": 65535},
                  {"payload": 1232, "do": True}):
            qs.append(Q(ex(n), t, edns=e, point="EDNS/TC"))
    for n, t in (("www", "A"), ("nothere", "A"), ("@", "SOA"), ("sub", "NS")):
        qs.append(Q(ex(n), t, edns={"payload": 1232, "version": 1}, point="BADVERS"))
        qs.append(Q(ex(n), t, edns={"payload": 1232, "version": 255, "do": True},
                    point="BADVERS"))
    qs.append(Q("www.nothere.invalid.", "A", edns={"payload": 1232, "version": 1},
                point="BADVERS"))
    for code, data, what in ((3, b"", "NSID"), (10, bytes(range(8)), "COOKIE"),
                             (65001, b"abc", "unknown"), (8, b"\x00\x01\x18\x00\xc0\x00\x02",
                                                         "ECS"), (12, b"\x00" * 16, "PADDING")):
        qs.append(Q(ex("www"), "A", edns={"payload": 1232, "options": [(code, data)]},
                    label=f"www.example.test. IN A [EDNS option {what}]", point="EDNS options"))
    qs.append(Q(ex("www"), "A", edns={"payload": 1232, "ext_rcode": 1},
                label="www.example.test. IN A [EDNS ext-rcode bits set in query]", point="EDNS"))
    for fl in (("RD",), ("CD",), ("AD",), ("RD", "CD"), ("TC",), ("Z",), ("RA",)):
        qs.append(Q(ex("www"), "A", flags=fl, point="flags"))
        qs.append(Q(ex("nothere"), "A", flags=fl, point="flags"))

    # 6. Opcodes (RFC 8906: always answer; NOTIMP for what is not implemented).
    for op in (1, 2, 3, 4, 5, 6, 7, 15):
        qs.append(Q(ex(""), "SOA", opcode=op, point="opcode"))
        qs.append(Q("www.nothere.invalid.", "A", opcode=op, point="opcode"))

    # 7. CHAOS class, qclass ANY and others.
    for n, t in (("id.server.", "TXT"), ("version.bind.", "TXT"), ("hostname.bind.", "TXT"),
                 ("version.server.", "TXT"), ("www.example.test.", "A"),
                 ("example.test.", "SOA")):
        qs.append(Q(n, t, "CH", point="CHAOS"))
    for c in ("ANY", "NONE", "HS", "CLASS42"):
        qs.append(Q(ex("www"), "A", c, point="qclass"))
        qs.append(Q(ex(""), "SOA", c, point="qclass"))

    # 8. Meta and special query types.
    for t in ("AXFR", "IXFR", "MAILA", "MAILB", "OPT", "TYPE0", "TSIG", "TKEY"):
        qs.append(Q(ex(""), t, point="meta types"))

    # 9. Malformed queries (FORMERR) and responses sent as queries (dropped).
    q1 = name_wire(ex("www")) + struct.pack("!HH", 1, 1)
    q2 = name_wire(ex("mail")) + struct.pack("!HH", 1, 1)
    opt = opt_rr()
    crafted = [
        ("qdcount 0", lambda i: header(i, qd=0)),
        ("qdcount 0 with OPT", lambda i: header(i, qd=0, ar=1) + opt),
        ("qdcount 2", lambda i: header(i, qd=2) + q1 + q2),
        ("qdcount 2 with OPT", lambda i: header(i, qd=2, ar=1) + q1 + q2 + opt),
        ("qdcount 1 but no question", lambda i: header(i, qd=1)),
        ("question cut in the name", lambda i: header(i) + q1[:8]),
        ("question without type/class", lambda i: header(i) + q1[:-4]),
        ("question without class", lambda i: header(i) + q1[:-2]),
        ("trailing garbage after question", lambda i: header(i) + q1 + b"garbage!"),
        ("trailing garbage after OPT", lambda i: header(i, ar=1) + q1 + opt + b"\x01\x02\x03"),
        ("arcount 1 but no OPT", lambda i: header(i, ar=1) + q1),
        ("two OPT records", lambda i: header(i, ar=2) + q1 + opt + opt),
        ("OPT in the answer section", lambda i: header(i, an=1) + q1 + opt),
        ("OPT in the authority section", lambda i: header(i, ns=1) + q1 + opt),
        ("OPT with a non-root owner",
         lambda i: header(i, ar=1) + q1 + opt_rr(owner=name_wire(ex("www")))),
        ("OPT rdlen beyond the packet",
         lambda i: header(i, ar=1) + q1 + opt[:-2] + b"\x00\x10"),
        ("OPT with a truncated option",
         lambda i: header(i, ar=1) + q1 + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x03\x00\x0a\x00"),
        ("ancount 1 (an A record in a query)",
         lambda i: header(i, an=1) + q1 + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x01\x02\x03\x04"),
        ("compression pointer in the question",
         lambda i: header(i) + b"\x03www\xc0\x0c" + struct.pack("!HH", 1, 1)),
        ("compression loop in the question",
         lambda i: header(i) + b"\xc0\x0c" + struct.pack("!HH", 1, 1)),
        ("label of 64 bytes", lambda i: header(i) + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01"),
        ("name over 255 bytes",
         lambda i: header(i) + (b"\x3f" + b"a" * 63) * 4 + b"\x07example\x04test\x00\x00\x01\x00\x01"),
        ("extended label type 0x40", lambda i: header(i) + b"\x41\x00\x00\x01\x00\x01"),
        ("qdcount 65535", lambda i: header(i, qd=65535) + q1),
        ("arcount 65535", lambda i: header(i, ar=65535) + q1 + opt),
        ("header only, 11 bytes", lambda i: header(i)[:11]),
    ]
    for what, fn in crafted:
        # shorter than a header: no ID to answer with, both must drop it (RFC 1035 4.1.1)
        short = what.startswith("header only")
        qs.append(Q(what, raw=fn, label=f"[crafted] {what}", timeout=0.5, drop=short,
                    point="dropped" if short else "FORMERR"))
    for what, fl in (("QR=1", ("QR",)), ("QR=1 AA", ("QR", "AA")), ("QR=1 TC", ("QR", "TC"))):
        qs.append(Q(ex("www"), "A", flags=fl, drop=True, timeout=0.5, point="QR dropped",
                    label=f"www.example.test. IN A [{what}: a response, must be dropped]"))
    qs.append(Q("qr", raw=lambda i: header(i, flags=0x8000 | 0x0003, qd=0),
                label="[crafted] QR=1 NXDOMAIN header only, must be dropped", drop=True,
                timeout=0.5, point="QR dropped"))

    # 10. DNAME (RFC 6672), CNAME chains into other served zones, SVCB/HTTPS additional
    # records (RFC 9460 4.1), referral glue (RFC 9471 3.1): the zone rfc.test.
    def rfc(rel):
        return "rfc.test." if rel == "@" else f"{rel}.rfc.test."
    long_ok = ".".join(["p" * 29, "q" * 29]) + ".dlong"       # 60 octets + 190: fits
    long_bad = ".".join(["p" * 40, "q" * 40]) + ".dlong"      # 82 octets + 190: YXDOMAIN
    for n in ("d", "www.d", "nothere.d", "mx.d", "cn.d", "a.b.d", "www.target", "www.dother",
              "nothere.dother", "back.dother", "x.dext", "www.dd", "a.grow", long_ok, long_bad,
              "tod", "tod2", "www.wd", "x.wd2", "tochild", "toother", "toothernx", "toback"):
        for t in ("A", "AAAA", "MX", "CNAME", "DNAME", "TXT"):
            qs.append(Q(rfc(n), t, point="DNAME and chains"))
    qs.append(Q("WwW.D.Rfc.Test.", "A", point="DNAME and chains"))
    for n, t in (("cased", "MX"), ("cased", "SRV"), ("cased2", "A"), ("CaSeD2", "A"), ("mail", "A")):
        qs.append(Q(rfc(n), t, point="case"))
    qs.append(Q(rfc("www.d"), "ANY", point="DNAME and chains"))
    for n, t in (("_8443._foo", "SVCB"), ("svc2", "HTTPS"), ("alias", "HTTPS"), ("svc3", "HTTPS"),
                 ("nosvc", "HTTPS"), ("extsvc", "HTTPS"), ("svc", "HTTPS")):
        qs.append(Q(rfc(n), t, point="SVCB additional"))
    for n, t in (("www.big", "A"), ("big", "NS"), ("big", "A"), ("www.sib", "A"),
                 ("www.few", "MX")):
        for e in (None, {"payload": 512}, {"payload": 1232}):
            qs.append(Q(rfc(n), t, edns=e, point="referral glue"))

    # 11. IPv6 transport.
    for n, t in (("www", "A"), ("@", "MX"), ("nothere", "AAAA"), ("sub", "A"), ("bigtxt", "TXT")):
        qs.append(Q(ex(n), t, hosts=("::1",), label=f"{ex(n)} IN {t} [over IPv6]", point="IPv6"))
    return qs


# ---------------------------------------------------------------------------------------------
# Allow-list of documented differences.

def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def load_allowed(path, doc_path):
    """Entries of the allow-list, each checked against docs/differences.md."""
    with open(path) as f:
        data = json.load(f)
    entries = data.get("entries")
    if not isinstance(entries, list):
        raise servers.HarnessError(f"{path}: needs {{\"entries\": [...]}}")
    with open(doc_path) as f:
        doc = f.read()
    sections = {}
    cur = None
    for line in doc.splitlines():
        m = re.match(r"^#{2,4}\s+(.*)$", line)
        if m:
            cur = slug(m.group(1))
            sections[cur] = ""
        elif cur:
            sections[cur] += line + "\n"
    for e in entries:
        for k in ("field", "doc", "rfc"):
            if k not in e:
                raise servers.HarnessError(f"{path}: entry {e} lacks '{k}'")
        anchor = e["doc"].split("#", 1)[-1]
        if anchor not in sections:
            raise servers.HarnessError(f"{path}: entry {e} names section '#{anchor}' which "
                                       f"{doc_path} does not have")
        if not re.match(r"^RFC \d+ (section|§) ?[\d.]+", e["rfc"]):
            raise servers.HarnessError(f"{path}: entry {e}: 'rfc' must read like "
                                       f"'RFC 6891 section 6.2.5'")
        if e["rfc"] not in sections[anchor]:
            raise servers.HarnessError(f"{path}: entry {e}: section '#{anchor}' of {doc_path} "
                                       f"does not cite {e['rfc']}")
        if e.get("agree") not in (None, "nsd"):
            raise servers.HarnessError(f"{path}: entry {e}: 'agree' can only be \"nsd\"")
        e["_query"] = re.compile(e.get("query", ".*"))
    return entries


def allowed_by(entries, label, transport, field, value):
    """The entry that allows FIELD to differ for this query; an entry with a "fennec" key
    allows it only when fennec's value, as text, is exactly that."""
    for e in entries:
        if re.fullmatch(e["field"].replace(".", r"\.").replace("*", ".*"), field) and \
                e["_query"].search(label) and e.get("transport", transport) == transport and \
                ("fennec" not in e or str(value) == e["fennec"]):
            return e
    return None


# ---------------------------------------------------------------------------------------------
# dig and kdig.

def run_client(tool, host, port, qname, qtype, tcp):
    args = [servers.need_binary(tool, "apt-get install " +
                                ("knot-dnsutils" if tool == "kdig" else "bind9-dnsutils")),
            f"@{host}", "-p", str(port), "+norec", "+time=2", "+tries=1" if tool == "dig"
            else "+retry=0", qname, qtype]
    if tcp:
        args.append("+tcp")
    r = subprocess.run(args, capture_output=True, text=True, timeout=15)
    return r.returncode, r.stdout


DROP_LINE = re.compile(r"^(; <<>> |;; global options|;; Got answer|;; Query time|;; SERVER|"
                       r";; WHEN|;; MSG SIZE|;; Received|;; Time |;; From |; COOKIE|;; COOKIE|"
                       r"; \(\d server|$)")


def normalize_client(out):
    lines, section = [], []
    for line in out.splitlines():
        if DROP_LINE.match(line):
            continue
        line = re.sub(r"id: \d+", "id: N", line)
        line = re.sub(r"(udp: |UDP size: )\d+( B)?", r"\1N", line)
        if line.startswith(";"):
            lines.extend(sorted(section))
            section = []
            lines.append(line)
        else:
            f = line.split()
            if f:
                f[0] = f[0].lower()
            section.append(" ".join(f))
    lines.extend(sorted(section))
    return lines


def client_sample(ref, test):
    """Sends a sample with dig and kdig over UDP and TCP to both; returns (count, diffs)."""
    sample = [(ex("www"), "A"), (ex(""), "MX"), (ex("alias1"), "A"), (ex("nothere"), "A"),
              (ex("y.ent"), "A"), (ex("host.sub"), "A"), (ex("foo.wild"), "TXT"),
              (ex("unknown"), "TYPE65400"), (ex("bigtxt"), "TXT"), (ex("loop1"), "A"),
              ("WwW.ExAmPlE.TeSt.", "AAAA"), ("www.nothere.invalid.", "A"),
              ("negttl.test.", "TXT"), (ex("sub"), "DS")]
    count, diffs = 0, []
    for tool in ("dig", "kdig"):
        for qname, qtype in sample:
            for tcp in (False, True):
                outs = []
                for srv in (ref, test):
                    rc, out = run_client(tool, "127.0.0.1", srv.port, qname, qtype, tcp)
                    outs.append((rc, normalize_client(out), out))
                count += 1
                ok_status = all(rc == 0 and any("status" in ln for ln in norm)
                                for rc, norm, _ in outs)
                if not ok_status or outs[0][1] != outs[1][1]:
                    diffs.append((f"{tool} {qname} {qtype} {'+tcp' if tcp else 'udp'}",
                                  outs[0], outs[1]))
    return count, diffs


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fennecd", help="path of fennecd (default: $FENNECD)")
    ap.add_argument("--source-dir", default=os.path.normpath(os.path.join(HERE, "..", "..")))
    ap.add_argument("--peers-only", action="store_true", help="compare NSD against Knot")
    ap.add_argument("--with-nsd", action="store_true", help="show NSD's answers too")
    ap.add_argument("--verbose", action="store_true", help="print every query")
    args = ap.parse_args()

    src = os.path.abspath(args.source_dir)
    zonedir = os.path.join(src, "tests", "integration", "zones")
    allowed = load_allowed(os.path.join(src, "tests", "integration", "allowed_differences.json"),
                           os.path.join(src, "docs", "differences.md"))
    for tool, pkg in (("dig", "bind9-dnsutils"), ("kdig", "knot-dnsutils")):
        servers.need_binary(tool, f"apt-get install {pkg}")

    knot = servers.start_knot(zonedir)
    nsd = None
    # NSD is the second oracle: entries with "agree": "nsd" hold only where NSD answers as
    # fennec does, so it runs whenever the allow-list has such an entry.
    needs_nsd = any(e.get("agree") == "nsd" for e in allowed)
    if args.peers_only or args.with_nsd or needs_nsd:
        nsd = servers.start_nsd(zonedir)
    if args.peers_only:
        test = nsd
        nsd = None
    else:
        test = servers.start_fennecd(args.fennecd, zonedir)
    ref = knot
    print(f"compare: reference {ref.name} port {ref.port}, under test {test.name} port "
          f"{test.port}" + (f", third opinion nsd port {nsd.port}" if nsd else ""))

    qs = queries()
    total = ndiff = nallowed = 0
    failed_queries = 0
    by_field = {}
    qid = 0x1000
    for q in qs:
        for transport in ("udp", "tcp"):
            for host in (q.hosts or ("127.0.0.1",)):
                qid = (qid + 7) & 0xFFFF
                wire = q.wire(qid)
                a = normalize(exchange(wire, host, ref.port, transport, q.timeout))
                b = normalize(exchange(wire, host, test.port, transport, q.timeout))
                total += 1
                diffs = compare(a, b)
                if q.drop:
                    diffs = [d for d in diffs if d != ("answered", False, False)]
                    if a is not None:
                        diffs.append(("reference answered a response", None, None))
                    if b is not None:
                        diffs.append(("answered a response (QR=1)", False, True))
                if args.verbose:
                    print(f"  {transport} {host} {q.label}: {len(diffs)} differences")
                if not diffs:
                    continue
                unexplained = []
                third = None
                if nsd and any(e.get("agree") for e in allowed):
                    third = normalize(exchange(wire, host, nsd.port, transport, q.timeout))
                for field, va, vb in diffs:
                    e = allowed_by(allowed, q.label, transport, field, vb)
                    if e and e.get("agree") == "nsd" and any(
                            f == field for f, _, _ in compare(third, b)):
                        e = None  # NSD does not answer as fennec does: not the documented case
                    ndiff += 1
                    by_field[field] = by_field.get(field, 0) + 1
                    if e:
                        nallowed += 1
                    else:
                        unexplained.append((field, va, vb))
                if unexplained:
                    failed_queries += 1
                print(f"--- {q.label} over {transport.upper()} ({host}) [{q.point}]")
                for field, va, vb in diffs:
                    mark = "allowed" if (field, va, vb) not in unexplained else "DIFF"
                    if field in ("answer", "authority", "additional"):
                        print(f"  {mark} {field}: only {ref.name}: {va}\n"
                              f"  {' ' * len(mark)} {field}: only {test.name}: {vb}")
                    else:
                        print(f"  {mark} {field}: {ref.name}={va!r} {test.name}={vb!r}")
                print(f"  {ref.name}:\n{show(a)}\n  {test.name}:\n{show(b)}")
                if nsd:
                    print(f"  nsd:\n{show(normalize(exchange(wire, host, nsd.port, transport, q.timeout)))}")

    ccount, cdiffs = client_sample(ref, test)
    for what, (rca, na, outa), (rcb, nb, outb) in cdiffs:
        print(f"--- client {what}: {ref.name} exit {rca}, {test.name} exit {rcb}")
        for line in sorted(set(na) ^ set(nb)):
            print(f"  {'-' if line in na else '+'} {line}")
        ndiff += 1
        by_field["client output"] = by_field.get("client output", 0) + 1

    alive = test.alive() and ref.alive()
    if not alive:
        print(f"compare: a server died during the run:\n{test.log_tail()}")
    print(f"compare: {len(qs)} queries, each over UDP and TCP: {total} exchanges per server; "
          f"{ccount} dig/kdig runs per server")
    if by_field:
        print("compare: differences by field: " +
              ", ".join(f"{k} {v}" for k, v in sorted(by_field.items())))
    print(f"compare: {total + ccount} queries, {ndiff} differences, {nallowed} allowed")
    if len(qs) < 300:
        print("compare: FAIL: fewer than 300 queries")
        return 1
    ok = alive and ndiff == nallowed
    print("compare: PASS" if ok else f"compare: FAIL ({failed_queries} queries and "
                                     f"{len(cdiffs)} client runs with unexplained differences)")
    return 0 if ok else 1


if __name__ == "__main__":
    servers.run_main("compare", main)
