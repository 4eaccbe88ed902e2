#!/usr/bin/python3
"""Replication 4: a secondary whose journal (data_dir/data.mdb, LMDB) was damaged while it
was stopped.

ns2 follows the primary through 200 changes and is stopped (SIGTERM). Then, each time on a
fresh copy of that journal, bytes of data.mdb are overwritten: its two meta pages with random
bytes, every page after them with zeros, and each page on its own with zeros (LMDB pages are
4 KiB). Started on such a file, ns2 must either refuse to start, with a non-zero exit status
(an exit, not a crash by signal) and a message in its log (stderr) that names --reseed, or,
when the damaged page was not in use, start and serve exactly the primary's data. Finally,
with damaged meta pages and 50 more changes made meanwhile, `fennecd --reseed` sets the
journal aside, fetches everything from the primary and converges.

usage: test_damaged_journal.py FENNECD [FENNECCTL]
Ports: 127.0.0.1:16060-16079 (slot 3 of 16000-16199).
"""
import os
import random
import shutil
import subprocess
import sys
import time

import repl

PAGE = 4096
FIRST = 200
LATER = 50


def damage(path, orig, how, rng):
    shutil.copyfile(orig, path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        if how == "meta":
            f.write(rng.randbytes(2 * PAGE))
        elif how == "all":
            f.seek(2 * PAGE)
            f.write(b"\0" * (size - 2 * PAGE))
        else:
            f.seek(how * PAGE)
            f.write(b"\0" * PAGE)


def start_damaged(c, s2, label, names):
    """Starts ns2 on a damaged journal; returns "refused", "ran" or "crashed"."""
    log_before = len(s2.log_text())
    s2.start(wait=False)
    deadline = time.monotonic() + 10
    up = False
    while time.monotonic() < deadline and s2.proc.poll() is None:
        if s2.get("/v1/status") is not None:
            up = True
            break
        time.sleep(0.05)
    if not up:
        try:
            rc = s2.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            rc = None
    log = s2.log_text()[log_before:]
    if up:
        # It took the journal: then what it serves must be the primary's, exactly.
        ok = c.wait_converged([s2], timeout=10) is not None
        diff = [nm for nm in names if s2.query(nm) != c.the_primary.query(nm)]
        c.check(ok and not diff and s2.serial() == c.the_primary.serial() and
                s2.zone_records() == c.the_primary.zone_records(),
                "%s: ns2 started, so it must serve exactly the primary's data" % label,
                (ok, diff[:5], s2.serial(), s2.zone_records()))
        s2.stop("%s: ns2 exits 0 on SIGTERM" % label)
        return "ran"
    s2.proc = None
    lines = [line for line in log.splitlines() if not line.startswith("====")]
    clean = isinstance(rc, int) and rc > 0
    c.check(clean and "--reseed" in log,
            "%s: ns2 refuses to start: exit status > 0 and a message naming --reseed" % label,
            "exit status %r (negative: killed by that signal), last lines: %r" %
            (rc, lines[-3:]))
    return "refused" if clean else "crashed (%r)" % rc


def body(c):
    rng = random.Random(4)
    p = c.primary()
    s2 = c.secondary("ns2")
    p.start()
    c.register(s2)
    s2.start()
    names = []
    for i in range(FIRST):
        st, _ = c.add("r%d" % i, repl.addr_of(i))
        if st == 200:
            names.append("r%d" % i)
    c.check(len(names) == FIRST, "%d changes written" % FIRST, len(names))
    c.check(c.wait_converged([s2]) is not None, "ns2 follows the primary")
    s2.stop()
    path = os.path.join(s2.data_dir, "data.mdb")
    orig = os.path.join(c.work, "data.mdb.orig")
    shutil.copyfile(path, orig)
    pages = os.path.getsize(orig) // PAGE
    c.phase("ns2 stopped with a journal of %d pages" % pages)

    outcome = {}
    for how in ["meta", "all"] + list(range(2, pages)):
        label = ("damaged meta pages" if how == "meta" else
                 "every data page zeroed" if how == "all" else "page %d zeroed" % how)
        damage(path, orig, how, rng)
        outcome[label] = start_damaged(c, s2, label, names)
    summary = {}
    for label, what in outcome.items():
        summary.setdefault(what.split(" ")[0], []).append(label)
    for what, labels in sorted(summary.items()):
        print("   %s: %d case(s): %s" % (what, len(labels), ", ".join(labels)))
    c.check(outcome["damaged meta pages"] == "refused" and
            outcome["every data page zeroed"] == "refused",
            "the two whole-file damages are refused", outcome)
    c.check("crashed" not in summary, "no damaged journal crashes fennecd",
            summary.get("crashed"))
    c.phase("damage cases run")

    # --reseed: the damaged journal is set aside and the data comes from the primary.
    damage(path, orig, "meta", rng)
    for i in range(FIRST, FIRST + LATER):
        st, _ = c.add("r%d" % i, repl.addr_of(i))
        if st == 200:
            names.append("r%d" % i)
    log_before = len(s2.log_text())
    s2.start(wait=False)
    try:
        rc = s2.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        rc = None
    s2.proc = None if rc is not None else s2.proc
    c.check(rc is not None and rc > 0 and "--reseed" in s2.log_text()[log_before:],
            "without --reseed ns2 still refuses the damaged journal", rc)
    if s2.running():
        s2.kill_quietly()
        s2.proc = None
    s2.start("--reseed")
    c.check(c.wait_converged([s2], timeout=20) is not None,
            "ns2 started with --reseed reaches the primary's index")
    c.compare([s2], names, "after --reseed")
    aside = [d for d in os.listdir(s2.data_dir) if d.startswith("aside-")]
    c.check(len(aside) == 1 and os.path.exists(os.path.join(s2.data_dir, aside[0],
                                                            "data.mdb")),
            "the damaged journal is kept aside in data_dir/aside-*", os.listdir(s2.data_dir))
    c.check("set aside" in s2.log_text()[log_before:], "the log says the journal was set aside")
    st, _ = c.add("after-reseed", "192.0.2.99")
    c.check(st == 200 and repl.wait_for(lambda: s2.query("after-reseed") ==
                                        ("NOERROR", ["192.0.2.99"]), 5),
            "ns2 follows new changes after the reseed")
    c.phase("reseeded")


if __name__ == "__main__":
    sys.exit(repl.Cluster("damaged_journal", 3, sys.argv).run(body))
