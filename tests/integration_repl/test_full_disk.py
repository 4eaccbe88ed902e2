#!/usr/bin/python3
"""Replication 7: a full disk under the journal, on the primary and on a secondary.

Needs root: each of ns1 (the primary) and ns3 (a secondary) keeps its data_dir on a tmpfs of
its own (mount -t tmpfs -o size=2m), unmounted at the end; ns2 is a secondary on the normal
disk. A disk is made full by a filler file that takes every free byte.

The primary's disk full: a write is refused, not answered 200, with an error that names the
journal and says the disk is full (DESIGN: "a full disk is a clear error, not a crash"); the
refused change is served nowhere, everything acknowledged before stays served by every
node, fennecd keeps running and answering. Once the filler is deleted, the next write is
answered 200 and reaches the secondaries; after a restart the primary serves exactly what was
acknowledged (the journal was not damaged by the failed commits).

A secondary's disk full: the primary's writes go on (200); ns3 keeps serving what it had,
the primary shows it behind (never "0 behind"); it retries with backoff (not in a tight
loop); once the filler is deleted, ns3 catches up on its own within CATCH_UP seconds.

usage: test_full_disk.py FENNECD [FENNECCTL]
Ports: 127.0.0.1:16120-16139 (slot 6 of 16000-16199).
"""
import os
import subprocess
import sys
import time

import repl

CATCH_UP = 15.0
# A secondary's disk stays full FULL_FOR seconds. Retrying with exponential backoff from
# 50 ms (STREAM_BACKOFF_MIN), jittered to half, it tries about log2(FULL_FOR / 0.025) + 1
# times (8 in 3 s): MAX_TRIES leaves room for twice as many.
FULL_FOR = 3.0
MAX_TRIES = 16


def mount_tmpfs(c, path):
    os.makedirs(path)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", path],
                       capture_output=True, text=True)
    if not c.check(p.returncode == 0, "mount a 2 MiB tmpfs on %s (needs root)" %
                   os.path.basename(path), p.stderr):
        raise RuntimeError("no tmpfs")

    def umount():
        r = subprocess.run(["umount", path], capture_output=True, text=True)
        c.check(r.returncode == 0, "umount %s" % os.path.basename(path), r.stderr)
    umount.__name__ = "umount " + os.path.basename(path)
    c.cleanups.append(umount)


def fill(path):
    """Takes every free byte of the filesystem of PATH with the file PATH."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\xa5" * 4096)
    except OSError:
        pass
    try:
        while True:
            os.write(fd, b"\xa5")
    except OSError:
        pass
    os.close(fd)


def body(c):
    pdisk = os.path.join(c.work, "pdisk")
    sdisk = os.path.join(c.work, "sdisk")
    mount_tmpfs(c, pdisk)
    mount_tmpfs(c, sdisk)
    p = c.primary(data_dir=os.path.join(pdisk, "ns1"))
    s2 = c.secondary("ns2")
    s3 = c.secondary("ns3", data_dir=os.path.join(sdisk, "ns3"))
    p.start()
    for s in (s2, s3):
        c.register(s)
        s.start()
    acked = {}
    for i in range(50):
        st, b = c.add("r%d" % i, repl.addr_of(i))
        if st == 200:
            acked["r%d" % i] = repl.addr_of(i)
    c.check(len(acked) == 50 and c.wait_converged([s2, s3]) is not None,
            "50 changes made and followed by both secondaries")
    c.phase("cluster up on the tmpfs disks")

    # ---- the primary's disk full
    filler = os.path.join(pdisk, "filler")
    fill(filler)
    serial_before = p.serial()
    refused = None
    n = 50
    for _ in range(300):
        name = "r%d" % n
        st, b = c.add(name, repl.addr_of(n))
        n += 1
        if st == 200:
            acked[name] = repl.addr_of(n - 1)
            serial_before = b.get("serial")
        else:
            refused = (name, st, b)
            break
    print("   %d writes went through on the full disk, then: %r" % (n - 51 if refused else
                                                                      n - 50, refused))
    c.check(refused is not None, "with the primary's disk full a write is refused (within 300)")
    if refused:
        name, st, b = refused
        err = b.get("error", "") if isinstance(b, dict) else str(b)
        c.check(isinstance(st, int) and st >= 400, "the refusal is an HTTP error, not 200",
                (st, b))
        c.check("journal" in err, "the error names the journal", err)
        c.check(any(w in err.lower() for w in ("no space", "disk", "full")),
                "the error says the disk is full (not a bare I/O error)", err)
        c.check(p.running() and p.status() is not None, "the primary keeps running and answering")
        c.check(p.query(name)[0] == "NXDOMAIN", "the refused change is not served", p.query(name))
        c.check(p.serial() == serial_before, "the serial stays that of the last acknowledged "
                "change (%r)" % serial_before, p.serial())
        st2, b2 = c.add("again", "192.0.2.77")
        c.check(st2 != 200, "a second write on the full disk is refused too", (st2, b2))
        time.sleep(0.5)
        for node in (p, s2, s3):
            lost = [nm for nm, a in acked.items() if node.query(nm) != ("NOERROR", [a])]
            c.check(not lost, "%s still serves all %d acknowledged changes" % (node.id,
                                                                             len(acked)),
                    lost[:5])
            c.check(node.query(name)[0] == "NXDOMAIN" and node.query("again")[0] == "NXDOMAIN",
                    "%s does not serve the refused changes" % node.id)
    c.phase("primary's disk full")

    os.unlink(filler)
    st, b = c.add("freed", "192.0.2.78")
    c.check(st == 200, "the first write after the space is freed is answered 200", (st, b))
    if st == 200:
        acked["freed"] = "192.0.2.78"
    for i in range(20):
        st, b = c.add("after%d" % i, repl.addr_of(i))
        if st == 200:
            acked["after%d" % i] = repl.addr_of(i)
    c.check(len([k for k in acked if k.startswith("after")]) == 20,
            "writes work again once the space is freed")
    c.check(c.wait_converged([s2, s3]) is not None, "the secondaries follow again")
    c.compare([s2, s3], sorted(acked), "after the primary's disk was freed")
    p.stop()
    p.start()
    lost = [nm for nm, a in acked.items() if p.query(nm) != ("NOERROR", [a])]
    c.check(not lost, "restarted, the primary serves every acknowledged change", lost[:5])
    c.check(p.query("again")[0] == "NXDOMAIN", "restarted, the primary does not serve a "
            "refused change")
    c.check(c.wait_converged([s2, s3]) is not None, "the secondaries follow the restarted "
            "primary")
    c.phase("primary's disk freed, primary restarted")

    # ---- a secondary's disk full
    filler = os.path.join(sdisk, "filler")
    log_from = len(s3.log_text())
    fill(filler)
    t_full = time.monotonic()
    before = dict(acked)
    refused = []
    for i in range(100):
        st, b = c.add("s%d" % i, repl.addr_of(i))
        if st == 200:
            acked["s%d" % i] = repl.addr_of(i)
        else:
            refused.append((st, b))
    c.check(not refused, "the primary's writes go on while a secondary's disk is full",
            refused[:3])
    time.sleep(1.0)
    c.check(s3.running() and s3.status() is not None, "ns3 keeps running and answering")
    lost = [nm for nm, a in before.items() if s3.query(nm) != ("NOERROR", [a])]
    c.check(not lost, "ns3 still serves all it had", lost[:5])
    row = (p.nodes() or {}).get("ns3") or {}
    c.check((row.get("entries_behind") or 0) > 0, "the primary shows ns3 behind, not 0 behind",
            row)
    c.check("journal" in s3.log_text(), "ns3's log names the journal error")
    c.check(c.wait_converged([s2], timeout=10) is not None, "ns2 is unaffected")
    time.sleep(max(0.0, FULL_FOR - (time.monotonic() - t_full)))
    full_for = time.monotonic() - t_full
    tries = s3.log_text()[log_from:].count("entries from the primary not applied")
    print("   ns3 tried to apply the entries %d times in %.1f s on its full disk" %
          (tries, full_for))
    c.check(1 <= tries <= MAX_TRIES, "ns3 retries with backoff while its disk is full (at "
            "most %d tries in %.1f s)" % (MAX_TRIES, full_for), tries)
    c.phase("secondary's disk full")
    os.unlink(filler)
    t0 = time.monotonic()
    idx = c.wait_converged([s2, s3], timeout=CATCH_UP)
    c.check(idx is not None, "once its space is freed ns3 catches up on its own within %.0f s"
            % CATCH_UP, (s3.index(), p.index()))
    if idx is not None:
        print("   ns3 caught up %.2f s after the space was freed" % (time.monotonic() - t0))
    c.compare([s2, s3], sorted(acked), "after the secondary's disk was freed")
    c.phase("secondary's disk freed")


if __name__ == "__main__":
    sys.exit(repl.Cluster("full_disk", 6, sys.argv).run(body))
