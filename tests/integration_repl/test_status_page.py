#!/usr/bin/python3
"""Replication 9: the primary's status page (http://CONTROL/) as a browser renders it.

A primary and two secondaries; once the lag history has a sample of every node (a 5 s grid),
headless Chromium (package chromium) loads the page and dumps the DOM it built. The DOM must
hold the replication table with one row per node (ns1 primary, ns2 and ns3 secondaries,
connected, streaming, at the primary's index) and an <svg> chart with exactly one polyline
per node, each titled with the node's id.

usage: test_status_page.py FENNECD [FENNECCTL]
Ports: 127.0.0.1:16160-16179 (slot 8 of 16000-16199).
"""
import html.parser
import os
import shutil
import subprocess
import sys
import time

import repl

IDS = ["ns1", "ns2", "ns3"]


class Dom(html.parser.HTMLParser):
    """Collects table rows (lists of cell texts) and the polylines of every <svg>."""

    def __init__(self):
        super().__init__()
        self.rows, self.svgs, self.polylines = [], 0, []
        self._row = self._cell = None
        self._in_svg = 0
        self._poly = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""
        elif tag == "svg":
            self.svgs += 1
            self._in_svg += 1
        elif tag == "polyline" and self._in_svg:
            self._poly = {"points": dict(attrs).get("points", ""), "title": ""}
        elif tag == "title" and self._poly is not None:
            self._poly["in_title"] = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "svg":
            self._in_svg -= 1
        elif tag == "title" and self._poly is not None:
            self._poly.pop("in_title", None)
        elif tag == "polyline" and self._poly is not None:
            self.polylines.append(self._poly)
            self._poly = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._poly is not None and self._poly.get("in_title"):
            self._poly["title"] += data


def parse(text):
    d = Dom()
    d.feed(text)
    return d


def body(c):
    chromium = shutil.which("chromium")
    if not c.check(chromium is not None, "chromium is installed (Debian package chromium)"):
        return
    p = c.primary()
    s2, s3 = c.secondary("ns2"), c.secondary("ns3")
    p.start()
    for s in (s2, s3):
        c.register(s)
        s.start()
    for i in range(10):
        c.add("r%d" % i, repl.addr_of(i))
    index = c.wait_converged([s2, s3])
    c.check(index is not None, "both secondaries follow the primary")

    # The history samples on a 5 s grid: wait for a polyline of every node (plain HTTP).
    def sampled():
        try:
            st, text = p.http("GET", "/")
        except OSError:
            return None
        d = parse(text) if st == 200 else None
        return d and sorted(pl["title"] for pl in d.polylines) == IDS
    c.check(repl.wait_for(sampled, 12, step=0.5), "the page has a lag sample of every node "
            "within 12 s")
    c.phase("cluster up, history sampled")

    profile = os.path.join(c.work, "chromium-profile")
    t0 = time.monotonic()
    r = subprocess.run([chromium, "--headless", "--disable-gpu", "--no-sandbox",
                        "--user-data-dir=" + profile, "--dump-dom", p.url + "/"],
                       capture_output=True, text=True, timeout=90)
    print("   chromium took %.1f s, exit %d, %d bytes of DOM" % (time.monotonic() - t0,
                                                                 r.returncode, len(r.stdout)))
    c.check(r.returncode == 0 and "<html" in r.stdout, "chromium renders the page",
            (r.returncode, r.stderr[-500:]))
    dom = parse(r.stdout)
    header = next((row for row in dom.rows if row[:2] == ["node", "address"]), None)
    c.check(header is not None and "entries behind" in header,
            "the page has the replication table", header)
    rows = {row[0]: dict(zip(header, row)) for row in dom.rows
            if header and len(row) == len(header) and row[0] in IDS}
    c.check(sorted(rows) == IDS, "one row per node (%s)" % ", ".join(IDS), dom.rows)
    want_index = str(p.index())
    for nid in IDS:
        row = rows.get(nid, {})
        c.check(row.get("role") == ("primary" if nid == "ns1" else "secondary") and
                row.get("state") == "streaming" and row.get("connected") == "yes" and
                row.get("applied") == want_index and row.get("entries behind") == "0",
                "%s's row: role, streaming, connected, applied %s, 0 behind" %
                (nid, want_index), row)
    c.check(dom.svgs == 1, "the page holds one <svg> chart", dom.svgs)
    titles = sorted(pl["title"] for pl in dom.polylines)
    c.check(titles == IDS, "the chart has exactly one polyline per node, titled with its id",
            titles)
    c.check(all(len(pl["points"].split()) >= 2 for pl in dom.polylines),
            "every polyline has points", [pl["points"] for pl in dom.polylines])


if __name__ == "__main__":
    sys.exit(repl.Cluster("status_page", 8, sys.argv).run(body))
