#!/usr/bin/python3
"""fennec benchmark: write the example.com zone and a dnsperf query mix.

usage: genzone.py OUTDIR HOSTS [--no-queries]

OUTDIR/example.com.zone: the apex (SOA, 2 NS, A, MX, TXT), a wildcard, a delegation
(sub.example.com) and HOSTS hosts hN with an A record; every 4th host also has an AAAA
record and every 10th host an alias wwwN (CNAME to hN). About 1.35 records per host:
740000 hosts give ~999,000 records.

OUTDIR/queries.txt (unless --no-queries): 200,000 dnsperf lines, a fixed mix (seeded):
70% A of an existing host, 10% AAAA, 5% CNAME, 5% NXDOMAIN, 3% wildcard, 3% MX at the
apex, 2% referral below the delegation, 2% NODATA (TXT of a host).
"""

import os
import random
import sys


def write_zone(path, hosts):
    head = [
        "$ORIGIN example.com.",
        "$TTL 3600",
        "@ IN SOA ns1.example.com. hostmaster.example.com. 2026010101 7200 3600 1209600 300",
        "@ IN NS ns1",
        "@ IN NS ns2",
        "@ IN A 192.0.2.10",
        "@ IN MX 10 mail",
        '@ IN TXT "v=spf1 mx -all"',
        "ns1 IN A 192.0.2.1",
        "ns2 IN A 192.0.2.2",
        "mail IN A 192.0.2.25",
        "*.wild IN A 192.0.2.99",
        "sub IN NS ns.sub",
        "ns.sub IN A 192.0.2.53",
    ]
    records = len(head) - 2
    with open(path, "w", buffering=1 << 20) as f:
        f.write("\n".join(head) + "\n")
        for i in range(hosts):
            lines = [f"h{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n"]
            if i % 4 == 0:
                lines.append(f"h{i} IN AAAA 2001:db8::{i >> 16:x}:{i & 0xFFFF:x}\n")
            if i % 10 == 0:
                lines.append(f"www{i} IN CNAME h{i}\n")
            records += len(lines)
            f.write("".join(lines))
    return records


def write_queries(path, hosts, count=200000):
    rnd = random.Random(20260101)
    out = []
    for _ in range(count):
        r = rnd.random()
        i = rnd.randrange(hosts)
        if r < 0.70:
            out.append(f"h{i}.example.com A")
        elif r < 0.80:
            out.append(f"h{i - i % 4}.example.com AAAA")
        elif r < 0.85:
            out.append(f"www{i - i % 10}.example.com A")
        elif r < 0.90:
            out.append(f"nx{i}.example.com A")
        elif r < 0.93:
            out.append(f"q{i}.wild.example.com A")
        elif r < 0.96:
            out.append("example.com MX")
        elif r < 0.98:
            out.append(f"w{i}.sub.example.com A")
        else:
            out.append(f"h{i}.example.com TXT")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2 or not args[1].isdigit() or int(args[1]) < 10:
        sys.stderr.write("usage: genzone.py OUTDIR HOSTS(>=10) [--no-queries]\n")
        return 2
    out, hosts = args[0], int(args[1])
    os.makedirs(out, exist_ok=True)
    n = write_zone(os.path.join(out, "example.com.zone"), hosts)
    if "--no-queries" not in sys.argv:
        write_queries(os.path.join(out, "queries.txt"), hosts)
    print(f"zone example.com: {hosts} hosts, {n} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
