#!/usr/bin/python3
"""Health 8: the status page shows the checks and the pools, as a browser renders it.

A primary and two secondaries; check a (server up), check b (its server never runs), pool
fo.example.com `failover` [b's member, a's member]. Headless Chromium (package chromium) loads
the status page of the primary and of a secondary and dumps the DOM it built. On both, the
Checks table has a row per check (a: http, its target, up, last result 200; b: down, "connect
refused") whose cells agree with that node's /v1/health, and the Pools table has fo serving
a's member at degraded_ttl 5 with both members and their states.

usage: test_status_page.py FENNECD [FENNECCTL]
Ports: 16720-16739 (slot 6 of 16600-16799); servers on 127.0.106.1-2:16738.
"""
import html.parser
import os
import shutil
import subprocess
import sys
import time

import hc


class Tables(html.parser.HTMLParser):
    """The rows (lists of cell texts) of every <table id=...>, by id."""

    def __init__(self):
        super().__init__()
        self.tables = {}
        self._id = None
        self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._id = dict(attrs).get("id")
            if self._id:
                self.tables[self._id] = []
        elif tag == "tr" and self._id:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._id].append(self._row)
            self._row = None
        elif tag == "table":
            self._id = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def rows_by_first(table):
    """{first cell: {header: cell}} for the rows of TABLE after its header."""
    if not table:
        return {}
    head = table[0]
    return {r[0]: dict(zip(head, r)) for r in table[1:] if len(r) == len(head)}


def body(c):
    chromium = shutil.which("chromium")
    if not c.check(chromium is not None, "chromium is installed (Debian package chromium)"):
        return
    c.server(1)
    a, b = c.address(1), c.address(2)
    checks = [c.http_check("a", 1, interval="500ms", timeout="300ms", rise=1, fall=1),
              c.http_check("b", 2, interval="500ms", timeout="300ms", rise=1, fall=1)]
    pools = [{"name": "fo.example.com", "policy": "failover", "degraded_ttl": 5,
              "members": [{"address": b, "check": "b"}, {"address": a, "check": "a"}]}]
    nodes = c.start_cluster(checks, pools)
    c.check(c.wait_states(nodes, {"a": "up", "b": "down"}, 5), "a up and b down on every node")

    for n in (nodes[0], nodes[1]):
        c.phase("chromium renders %s's page" % n.id)
        profile = os.path.join(c.work, "chromium-profile-" + n.id)
        t0 = time.monotonic()
        r = subprocess.run([chromium, "--headless", "--disable-gpu", "--no-sandbox",
                            "--user-data-dir=" + profile, "--dump-dom", n.url + "/"],
                           capture_output=True, text=True, timeout=90)
        print("   chromium took %.1f s, exit %d, %d bytes of DOM" %
              (time.monotonic() - t0, r.returncode, len(r.stdout)))
        if not c.check(r.returncode == 0 and "<html" in r.stdout,
                       "%s: chromium renders the page" % n.id, (r.returncode, r.stderr[-500:])):
            continue
        t = Tables()
        t.feed(r.stdout)
        cks = t.tables.get("checks", [])
        c.check(cks and cks[0] == ["check", "type", "target", "state", "override", "since",
                                   "last result", "latency", "transitions"],
                "%s: the Checks table and its columns" % n.id, cks[:1])
        rows = rows_by_first(cks)
        api = c.checks_of(n)
        c.check(sorted(rows) == ["a", "b"], "%s: one row per check" % n.id, cks)
        for name, state, result in (("a", "up", "200"), ("b", "down", "connect refused")):
            row = rows.get(name, {})
            c.check(row.get("type") == "http" and row.get("target") == api[name]["target"] and
                    row.get("state") == state and row.get("last result") == result and
                    row.get("override") == "-" and row.get("latency", "").endswith(" ms") and
                    row.get("since", "").endswith(" ago"),
                    "%s: check %s: http, its target, %s, last result %s (as /v1/health says)" %
                    (n.id, name, state, result), row)
        pls = t.tables.get("pools", [])
        c.check(pls and pls[0] == ["pool", "type", "TTL now", "serving", "members"],
                "%s: the Pools table and its columns" % n.id, pls[:1])
        fo = rows_by_first(pls).get("fo.example.com", {})
        c.check(fo.get("type") == "A" and fo.get("TTL now") == "5" and fo.get("serving") == a and
                fo.get("members") == "%s (b: down), %s (a: up)" % (b, a),
                "%s: fo serves a's member at degraded_ttl 5; both members with their state" %
                n.id, fo)


if __name__ == "__main__":
    sys.exit(hc.Health("status_page", 6, sys.argv).run(body))
