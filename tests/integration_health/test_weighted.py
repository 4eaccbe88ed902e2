#!/usr/bin/python3
"""Health 2: weighted pools follow their weights; all down gives each all_down choice.

A primary and two secondaries.
- Pool wt.example.com, `weighted`, members of weight 1, 3 and 6 whose servers are up: 10,000
  answers from one node (a secondary, through dnspython over UDP) carry exactly one address
  each, and the counts pass a chi-square test against 1:3:6 (2 degrees of freedom, p = 0.001:
  chi2 < 13.82). With the weight-6 member's server stopped, 4,000 answers follow 1:3 among the
  two left (1 degree of freedom: chi2 < 10.83) and never hold the stopped one.
- Three pools whose two members' servers never ran (connect refused, fall 1): once every node
  sees both checks down, on every node `serve_all` serves both members, `serve_first` the
  first, `empty` NODATA (NOERROR, no answer, the SOA in authority), at degraded_ttl 5.

usage: test_weighted.py FENNECD [FENNECCTL]
Ports: 16620-16639 (slot 1 of 16600-16799); servers on 127.0.101.1-5:16638.
"""
import collections
import socket
import sys

import dns.message
import dns.query
import dns.rdatatype

import hc

WEIGHTS = {1: 1, 2: 3, 3: 6}


def draw(node, name, count):
    """COUNT answers for NAME from NODE over one UDP socket: a Counter of answer address tuples,
    and the number of answers that did not come."""
    counts = collections.Counter()
    lost = 0
    q = dns.message.make_query(hc.repl.fqdn(name), "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(count):
            try:
                r = dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=1, sock=s)
            except Exception:  # noqa: BLE001 - a lost answer is counted, not fatal
                lost += 1
                continue
            addrs = tuple(sorted(x.to_text() for rs in r.answer if rs.rdtype == dns.rdatatype.A
                                 for x in rs))
            counts[addrs] += 1
    return counts, lost


def chi2(observed, expected):
    return sum((observed.get(k, 0) - e) ** 2 / e for k, e in expected.items())


def body(c):
    servers = {k: c.server(k) for k in WEIGHTS}
    checks = [c.http_check("w%d" % k, k, interval="1s", timeout="500ms", rise=1, fall=1)
              for k in WEIGHTS]
    # Servers 4 and 5 never run.
    checks += [c.http_check("d%d" % k, k, interval="500ms", timeout="200ms", rise=1, fall=1)
               for k in (4, 5)]
    d4, d5 = c.address(4), c.address(5)
    down = [{"address": d4, "check": "d4"}, {"address": d5, "check": "d5"}]
    pools = [{"name": "wt.example.com", "policy": "weighted", "ttl": 60, "degraded_ttl": 5,
              "members": [{"address": c.address(k), "check": "w%d" % k, "weight": w}
                          for k, w in WEIGHTS.items()]},
             {"name": "ad-all.example.com", "policy": "all", "degraded_ttl": 5,
              "all_down": "serve_all", "members": down},
             {"name": "ad-first.example.com", "policy": "failover", "degraded_ttl": 5,
              "all_down": "serve_first", "members": down},
             {"name": "ad-empty.example.com", "policy": "failover", "degraded_ttl": 5,
              "all_down": "empty", "members": down}]
    nodes = c.start_cluster(checks, pools)
    c.check(c.wait_states(nodes, {"w1": "up", "w2": "up", "w3": "up", "d4": "down",
                                  "d5": "down"}, 10),
            "w1-w3 up and d4, d5 down on every node within 10 s")

    c.phase("all down: each all_down choice, on every node")
    for n in nodes:
        a = hc.ask(n, "ad-all")
        c.check(a and a.rcode == "NOERROR" and a.addrs == {d4, d5} and a.ttl == 5,
                "%s: serve_all serves both members at degraded_ttl 5" % n.id, a)
        a = hc.ask(n, "ad-first")
        c.check(a and a.rcode == "NOERROR" and a.addrs == {d4} and a.ttl == 5,
                "%s: serve_first serves the first member at degraded_ttl 5" % n.id, a)
        a = hc.ask(n, "ad-empty")
        c.check(a and a.rcode == "NOERROR" and not a.addrs and a.authority == ["SOA"],
                "%s: empty answers NODATA (NOERROR, no answer, the SOA in authority)" % n.id, a)

    c.phase("10,000 answers from ns2 against weights 1:3:6")
    s2 = nodes[1]
    counts, lost = draw(s2, "wt", 10000)
    c.check(lost == 0, "every one of the 10,000 queries is answered", lost)
    c.check(all(len(k) == 1 for k in counts), "every answer carries exactly one address",
            dict(counts))
    total = sum(WEIGHTS.values())
    n_ans = sum(counts.values())
    expected = {(c.address(k),): n_ans * w / total for k, w in WEIGHTS.items()}
    x2 = chi2(counts, expected)
    print("   counts %s, expected %s, chi2 %.2f" % (
        {k[0]: v for k, v in counts.items()}, {k[0]: v for k, v in expected.items()}, x2))
    c.check(x2 < 13.82, "the counts follow 1:3:6 (chi2 %.2f < 13.82, df 2, p 0.001)" % x2)
    a = hc.ask(s2, "wt")
    c.check(a and a.ttl == 60, "the weighted pool is answered at its TTL 60 while all are up", a)

    c.phase("the weight-6 member's server stops")
    servers[3].stop()
    c.check(c.wait_states(nodes, {"w3": "down"}, 5), "w3 is down on every node within 5 s")
    counts, lost = draw(s2, "wt", 4000)
    n_ans = sum(counts.values())
    expected = {(c.address(k),): n_ans * WEIGHTS[k] / 4 for k in (1, 2)}
    x2 = chi2(counts, expected)
    print("   counts %s, chi2 %.2f" % ({k[0]: v for k, v in counts.items()}, x2))
    c.check(set(counts) <= set(expected) and lost == 0,
            "no answer holds the stopped member; none lost", (dict(counts), lost))
    c.check(x2 < 10.83, "the counts follow 1:3 (chi2 %.2f < 10.83, df 1, p 0.001)" % x2)
    a = hc.ask(s2, "wt")
    c.check(a and a.ttl == 5, "at degraded_ttl 5 while a member is down", a)


if __name__ == "__main__":
    sys.exit(hc.Health("weighted", 1, sys.argv).run(body))
