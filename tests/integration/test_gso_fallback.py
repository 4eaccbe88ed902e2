#!/usr/bin/python3
"""fennec integration test: segmented sends where the route refuses them.

fennecd groups equal-size answers to one client into one segmented send (UDP_SEGMENT,
docs/transport.md). A route whose MTU is below the answer size makes the kernel refuse such
a send (EINVAL); every answer of the group must then still go out, one by one (fragmented by
the kernel as usual), and grouping must go on for the answers that fit.

The test makes its own network namespace with a loopback MTU of 1000 bytes, runs fennecd and
the client inside it, sends bursts of queries whose answers are about 1060 bytes (refused
groups) and then bursts with small answers (segmented), and checks every answer and the
counters in /metrics. Needs root (ip netns) and dnspython.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import servers  # noqa: E402

PORT = 15591
CONTROL = 15592
MTU = 1000
BURST = 64
ROUNDS = 20

ZONE = """$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.10
""" + "".join(f'big TXT "{i}{"x" * 238}"\n' for i in range(4))


class Failure(Exception):
    pass


def metric(name):
    with urllib.request.urlopen(f"http://127.0.0.1:{CONTROL}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
    raise Failure(f"{name} missing from /metrics")


def burst(name, rdtype, base):
    """BURST queries from one socket; every answer must come back once, whole, NOERROR.
    Returns the size of the answers."""
    import dns.message
    import dns.rcode

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(3)
    wires = []
    for i in range(BURST):
        q = dns.message.make_query(name, rdtype, use_edns=0, payload=1232)
        q.id = base + i
        wires.append(q.to_wire())
    for w in wires:
        sock.sendto(w, ("127.0.0.1", PORT))
    seen, size = set(), None
    while len(seen) < BURST:
        try:
            data = sock.recv(65535)
        except socket.timeout:
            raise Failure(f"{name}: {BURST - len(seen)} of {BURST} answers missing")
        m = dns.message.from_wire(data)
        if m.id in seen or not base <= m.id < base + BURST:
            raise Failure(f"{name}: unexpected or repeated id {m.id}")
        if m.rcode() != dns.rcode.NOERROR or not m.answer or m.flags & 0x0200:
            raise Failure(f"{name}: answer {m.id} not a whole NOERROR answer")
        seen.add(m.id)
        size = len(data)
    sock.close()
    return size


def inside(fennecd):
    """Runs in the namespace: fennecd, the bursts, the checks."""
    subprocess.run(["ip", "link", "set", "lo", "up", "mtu", str(MTU)], check=True)
    tmp = tempfile.mkdtemp(prefix="fennec-gso-")
    with open(os.path.join(tmp, "example.com.zone"), "w") as f:
        f.write(ZONE)
    conf = os.path.join(tmp, "fennecd.yaml")
    with open(conf, "w") as f:
        f.write(f"""node: {{id: gso, role: primary, data_dir: {tmp}/data}}
listen: {{dns: ["127.0.0.1:{PORT}"], control: "127.0.0.1:{CONTROL}"}}
workers: 1
zones:
  - {{name: example.com, file: {tmp}/example.com.zone}}
""")
    log = open(os.path.join(tmp, "fennecd.out"), "w")
    proc = subprocess.Popen([fennecd, "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                metric("fennec_udp_received_total")
                break
            except (OSError, Failure):
                time.sleep(0.05)
        refused0 = metric("fennec_udp_gso_refused_total")
        for r in range(ROUNDS):
            size = burst("big.example.com", "TXT", 1000 + r * BURST)
            if size <= MTU - 28:
                raise Failure(f"big answers are {size} bytes: they fit the MTU, nothing tested")
            if metric("fennec_udp_gso_refused_total") > refused0:
                break
        refused = metric("fennec_udp_gso_refused_total") - refused0
        if refused == 0:
            raise Failure(f"no group refused in {ROUNDS} bursts: the fallback was not reached")
        seg0 = metric("fennec_udp_segmented_total")
        for r in range(ROUNDS):
            burst("www.example.com", "A", 30000 + r * BURST)
            if metric("fennec_udp_segmented_total") > seg0:
                break
        if metric("fennec_udp_segmented_total") == seg0:
            raise Failure("small answers no longer segmented after a refused group")
        errors = metric("fennec_udp_send_errors_total")
        dropped = metric("fennec_udp_send_dropped_total")
        if errors or dropped:
            raise Failure(f"send errors {errors}, send drops {dropped}")
        if proc.poll() is not None:
            raise Failure(f"fennecd exited with {proc.returncode}")
        print(f"gso_fallback: OK ({refused} refused groups sent one by one, every answer "
              f"arrived; small answers still segmented)")
        return 0
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "still running 10 s after SIGTERM"
        log.close()
        with open(os.path.join(tmp, "fennecd.out"), errors="replace") as f:
            bad = [line for line in f if "Sanitizer" in line or "runtime error" in line]
        shutil.rmtree(tmp, ignore_errors=True)
        # A fennecd that did not stop cleanly fails the test, whatever happened before.
        if rc != 0 or bad:
            raise Failure(f"fennecd on SIGTERM: exit {rc}" + (f"; {bad[0].strip()}" if bad else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fennecd", required=True)
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--source-dir", default=None)
    args = ap.parse_args()
    fennecd = servers.fennecd_path(args.fennecd)
    if args.inside:
        return inside(fennecd)
    if os.geteuid() != 0:
        raise servers.HarnessError("needs root to create a network namespace (ip netns)")
    servers.need_binary("ip", "apt-get install iproute2")
    try:
        import dns.message  # noqa: F401
    except ImportError:
        raise servers.HarnessError("needs dnspython: apt-get install python3-dnspython")
    ns = f"fennec-gso-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                            "--inside", "--fennecd", fennecd], timeout=120)
        return r.returncode
    finally:
        subprocess.run(["ip", "netns", "delete", ns])


if __name__ == "__main__":
    servers.run_main("gso_fallback", main, Failure)
