#!/usr/bin/python3
"""Which node answered: NSID (RFC 5001) and CH TXT id.server / hostname.bind, compared with
Knot DNS and NSD configured with the same identity and NSID, and off by default.

Listens on 127.0.0.1 ports 17400-17409 only (Knot 17400, NSD 17401, fennecd 17402 with its
control endpoint at 17452, fennecd without the settings 17403/17453).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import servers  # noqa: E402
from dnsutil import compare, exchange, normalize  # noqa: E402
from test_compare import Q  # noqa: E402

KNOT, NSD, FENNEC, FENNEC_OFF = 17400, 17401, 17402, 17403
IDENTITY, NSID = "anycast node 1", "ns-lab-1"


def queries():
    qs = []
    for name in ("id.server.", "hostname.bind.", "ID.Server.", "HostName.BIND."):
        for t in ("TXT", "ANY", "A"):
            qs.append(Q(name, t, "CH"))
    qs.append(Q("version.bind.", "TXT", "CH"))
    qs.append(Q("version.server.", "TXT", "CH"))
    qs.append(Q("id.server.", "TXT", "IN"))
    nsid = {"payload": 1232, "options": [(3, b"")]}
    for name, t in (("www.example.test.", "A"), ("nothere.example.test.", "A"),
                    ("example.test.", "SOA"), ("www.nothere.invalid.", "A"),
                    ("bigtxt.example.test.", "TXT"), ("id.server.", "TXT")):
        qs.append(Q(name, t, "CH" if name == "id.server." else "IN", edns=nsid,
                    label=f"{name} {t} +nsid"))
    qs.append(Q("www.example.test.", "A", edns={"payload": 512, "options": [(3, b"")]},
                label="www.example.test. A +nsid bufsize 512"))
    return qs


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("fennecd_pos", nargs="?", help="path of fennecd")
    ap.add_argument("--fennecd", help="path of fennecd (default: $FENNECD)")
    ap.add_argument("--source-dir", help="ignored (the zones are beside this file)")
    args = ap.parse_args()
    fennecd = servers.fennecd_path(args.fennecd or args.fennecd_pos)
    zonedir = os.path.join(HERE, "zones")
    knot = servers.start_knot(zonedir, port=KNOT, identity=IDENTITY, nsid=NSID)
    nsd = servers.start_nsd(zonedir, port=NSD, identity=IDENTITY, nsid=NSID)
    on = servers.start_fennecd(fennecd, zonedir, port=FENNEC,
                               extra=f'nsid: "{NSID}"\nidentity: "{IDENTITY}"')
    off = servers.start_fennecd(fennecd, zonedir, port=FENNEC_OFF)
    failures = 0
    for q in queries():
        for transport in ("udp", "tcp"):
            wire = q.wire(0x4242)
            k = normalize(exchange(wire, "127.0.0.1", KNOT, transport, 2.0))
            n = normalize(exchange(wire, "127.0.0.1", NSD, transport, 2.0))
            f = normalize(exchange(wire, "127.0.0.1", FENNEC, transport, 2.0))
            d_knot = [d for d in compare(k, f) if d[0] != "size"]
            d_nsd = [d for d in compare(n, f) if d[0] != "size"]
            # Knot is the reference; where it and NSD differ, fennec must match one of them.
            if d_knot and d_nsd:
                failures += 1
                print(f"--- {q.label} over {transport}: fennec differs from Knot and NSD")
                for d in d_knot:
                    print(f"  knot {d}")
                for d in d_nsd:
                    print(f"  nsd  {d}")
            # Off unless configured: no NSID option, CH TXT refused.
            o = normalize(exchange(wire, "127.0.0.1", FENNEC_OFF, transport, 2.0))
            opts = (o.get("edns") or {}).get("options", []) if o else []
            if any(x.startswith("3:") for x in opts):
                failures += 1
                print(f"--- {q.label} over {transport}: NSID sent without nsid configured")
            if q.qclass == "CH" and o and o.get("rcode") != "REFUSED":
                failures += 1
                print(f"--- {q.label} over {transport}: {o.get('rcode')} without identity "
                      f"configured (REFUSED expected)")
    # The NSID option names the node: its bytes are NSID.
    r = normalize(exchange(Q("www.example.test.", "A", edns={"payload": 1232, "options": [(3, b"")]})
                           .wire(7), "127.0.0.1", FENNEC, "udp", 2.0))
    want = "3:" + NSID.encode().hex()
    if want not in r["edns"]["options"]:
        failures += 1
        print(f"--- NSID option {r['edns']['options']}, expected {want}")
    for s in (on, off):
        if not s.alive():
            failures += 1
            print(f"--- fennecd died:\n{s.log_tail()}")
    print(f"identity: {len(queries())} queries over UDP and TCP, {failures} failures")
    print("identity: PASS" if failures == 0 else "identity: FAIL")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    servers.run_main("identity", main)
