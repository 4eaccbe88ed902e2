#!/usr/bin/python3
"""fennec integration tests: DNS message building, exchange and normalisation.

Queries are built byte by byte (so that malformed ones can be sent too) and answers are
parsed with dnspython into a normalised form that two servers' answers can be compared in.
"""

import socket
import struct
import time

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

FLAG_BITS = {"QR": 0x8000, "AA": 0x0400, "TC": 0x0200, "RD": 0x0100, "RA": 0x0080,
             "Z": 0x0040, "AD": 0x0020, "CD": 0x0010}


def name_wire(name):
    """Uncompressed wire form of NAME (text), case preserved."""
    return dns.name.from_text(name).to_wire()


def opt_rr(payload=1232, version=0, do=False, ext_rcode=0, options=(), owner=b"\x00"):
    """An OPT pseudo-RR. OPTIONS: (code, bytes) pairs."""
    rdata = b"".join(struct.pack("!HH", c, len(d)) + d for c, d in options)
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    return owner + struct.pack("!HHIH", 41, payload, ttl, len(rdata)) + rdata


def header(qid, flags=0, opcode=0, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, (flags & 0x87FF) | ((opcode & 0xF) << 11), qd, an, ns, ar)


def build_query(qid, qname, qtype="A", qclass="IN", flags=(), opcode=0, edns=None):
    """A query. FLAGS: names from FLAG_BITS. EDNS: None or dict of opt_rr() arguments."""
    bits = 0
    for f in flags:
        bits |= FLAG_BITS[f]
    t = dns.rdatatype.from_text(qtype) if isinstance(qtype, str) else qtype
    c = dns.rdataclass.from_text(qclass) if isinstance(qclass, str) else qclass
    wire = header(qid, bits, opcode, 1, 0, 0, 1 if edns is not None else 0)
    wire += name_wire(qname) + struct.pack("!HH", t, c)
    if edns is not None:
        wire += opt_rr(**edns)
    return wire


def udp_exchange(wire, host, port, timeout):
    """Sends WIRE over UDP and returns the first answer with the same id, or None."""
    qid = wire[:2]
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        s.send(wire)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            s.settimeout(left)
            try:
                data = s.recv(65535)
            except (socket.timeout, ConnectionRefusedError):
                return None
            if data[:2] == qid:
                return data


def _recv_exact(s, n, deadline):
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            chunk = s.recv(n - len(buf))
        except (socket.timeout, ConnectionResetError):
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def tcp_exchange(wire, host, port, timeout):
    """Sends WIRE with a length prefix on a new TCP connection; returns the answer or None
    (no answer before TIMEOUT, or the server closed the connection)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((host, port))
            s.sendall(struct.pack("!H", len(wire)) + wire)
        except OSError:
            return None
        while True:
            ln = _recv_exact(s, 2, deadline)
            if ln is None:
                return None
            data = _recv_exact(s, struct.unpack("!H", ln)[0], deadline)
            if data is None or data[:2] == wire[:2]:
                return data


def exchange(wire, host, port, transport, timeout):
    if transport == "udp":
        return udp_exchange(wire, host, port, timeout)
    return tcp_exchange(wire, host, port, timeout)


def _rr_key_and_text(rrset, rdata):
    """(comparison key, display text) of one RR: owner and RDATA names case-insensitive."""
    owner = rrset.name.canonicalize().to_text()
    cls = dns.rdataclass.to_text(rrset.rdclass)
    typ = dns.rdatatype.to_text(rrset.rdtype)
    try:
        canon = rdata.to_digestable().hex()
    except Exception:  # pragma: no cover - dnspython cannot canonicalise every type
        canon = rdata.to_text().lower()
    key = (owner, rrset.ttl, cls, typ, canon)
    text = f"{rrset.name} {rrset.ttl} {cls} {typ} {rdata.to_text()}"
    return key, text


def _section(rrsets):
    out = {}
    for rrset in rrsets:
        for rd in rrset:
            k, t = _rr_key_and_text(rrset, rd)
            out[k] = t
    return out


def raw_header(data):
    qid, fl, qd, an, ns, ar = struct.unpack("!HHHHHH", data[:12])
    return {"id": qid, "flags": fl, "opcode": (fl >> 11) & 0xF, "rcode": fl & 0xF,
            "counts": (qd, an, ns, ar)}


def parse_any_opcode(data):
    """dnspython's parse of DATA with the opcode bits cleared: dnspython knows few opcodes
    and reads UPDATE sections differently; the opcode is taken from the raw header."""
    return dns.message.from_wire(data[:2] + bytes([data[2] & 0x87]) + data[3:])


def normalize(data):
    """A dict describing an answer (None = no answer) in comparable form.

    Keys: rcode, opcode, flags, question, answer, authority, additional (dicts key->text),
    edns (None or dict), size, counts, parse_error.
    """
    if data is None:
        return None
    n = {"size": len(data)}
    if len(data) < 12:
        n["parse_error"] = f"answer of {len(data)} bytes, shorter than a header"
        return n
    h = raw_header(data)
    n["counts"] = h["counts"]
    n["flags"] = " ".join(f for f, b in FLAG_BITS.items() if h["flags"] & b)
    n["opcode"] = dns.opcode.to_text(h["opcode"])
    try:
        m = parse_any_opcode(data)
    except (dns.exception.DNSException, ValueError, struct.error) as e:
        n["parse_error"] = f"{type(e).__name__}: {e}"
        n["rcode"] = dns.rcode.to_text(h["rcode"])
        return n
    n["rcode"] = dns.rcode.to_text(m.rcode())
    n["question"] = [f"{q.name.to_text()} {dns.rdataclass.to_text(q.rdclass)} "
                     f"{dns.rdatatype.to_text(q.rdtype)}" for q in m.question]
    n["answer"] = _section(m.answer)
    n["authority"] = _section(m.authority)
    n["additional"] = _section(m.additional)
    if m.edns >= 0:
        n["edns"] = {
            "version": m.edns,
            "do": bool(m.ednsflags & dns.flags.DO),
            "payload": m.payload,
            "options": sorted(f"{o.otype}:{o.to_wire().hex() if hasattr(o, 'to_wire') else ''}"
                              for o in m.options),
        }
    else:
        n["edns"] = None
    return n


def show(n):
    """Multi-line readable rendering of a normalised answer."""
    if n is None:
        return "    (no answer)"
    lines = []
    if "parse_error" in n:
        lines.append(f"    UNPARSEABLE ({n['parse_error']}), {n['size']} bytes")
    lines.append(f"    {n.get('opcode', '?')} {n.get('rcode', '?')} flags [{n.get('flags', '')}] "
                 f"counts {n.get('counts')} size {n['size']}")
    for q in n.get("question", []):
        lines.append(f"    Q  {q}")
    for sec, tag in (("answer", "AN"), ("authority", "NS"), ("additional", "AR")):
        for t in sorted(n.get(sec, {}).values()):
            lines.append(f"    {tag} {t}")
    e = n.get("edns")
    if e:
        lines.append(f"    OPT version {e['version']} do {int(e['do'])} payload {e['payload']} "
                     f"options {e['options']}")
    elif "edns" in n:
        lines.append("    (no OPT)")
    return "\n".join(lines)


def compare(a, b):
    """Differences between normalised answers A (the reference) and B, as (field, a, b) tuples."""
    if a is None or b is None:
        # Neither answering is a difference too: silence is only right for a query marked as
        # one both must drop, which the caller knows and this function does not.
        return [("answered", a is not None, b is not None)]
    diffs = []
    if ("parse_error" in a) != ("parse_error" in b):
        diffs.append(("parseable", "parse_error" not in a, "parse_error" not in b))
    for f in ("opcode", "rcode", "question"):
        if a.get(f) != b.get(f):
            diffs.append((f, a.get(f), b.get(f)))
    fa, fb = set(a.get("flags", "").split()), set(b.get("flags", "").split())
    for f in sorted(fa ^ fb):
        diffs.append((f"flags.{f}", f in fa, f in fb))
    for sec in ("answer", "authority", "additional"):
        sa, sb = a.get(sec, {}), b.get(sec, {})
        if set(sa) != set(sb):
            only_a = sorted(sa[k] for k in set(sa) - set(sb))
            only_b = sorted(sb[k] for k in set(sb) - set(sa))
            diffs.append((sec, only_a, only_b))
    # The same records, spelled differently (RFC 4343: case is kept as written, and the names
    # in the rdata of the RFC 4034 6.2 types are sent lower case by Knot and NSD alike).
    for sec in ("answer", "authority", "additional"):
        sa, sb = a.get(sec, {}), b.get(sec, {})
        if set(sa) == set(sb) and sorted(sa.values()) != sorted(sb.values()):
            diffs.append((f"{sec}.case", sorted(set(sa.values()) - set(sb.values())),
                          sorted(set(sb.values()) - set(sa.values()))))
    ea, eb = a.get("edns"), b.get("edns")
    if (ea is None) != (eb is None):
        diffs.append(("edns.present", ea is not None, eb is not None))
    elif ea and eb:
        for f in ("version", "do", "options", "payload"):
            if ea[f] != eb[f]:
                diffs.append((f"edns.{f}", ea[f], eb[f]))
    # Name compression: with the same records, the answer under test must not be much larger
    # than the reference's (a few bytes are allowed: servers differ in which names they
    # register as compression targets, e.g. the uncompressed SRV target of RFC 2782).
    if not diffs and b["size"] > a["size"] + max(8, a["size"] // 20):
        diffs.append(("size", a["size"], b["size"]))
    return diffs
