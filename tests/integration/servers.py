#!/usr/bin/python3
"""fennec integration tests: start and stop real name servers on loopback.

Knot DNS (the reference), NSD (an optional third opinion) and fennecd, each serving every
zone file of a folder (file name = zone name + ".zone"), each from a generated config in a
temporary folder. Every process started here is killed when the script exits (atexit and
SIGINT/SIGTERM/SIGHUP handlers). A missing binary is an error, never a skip.

Ports (this suite owns 15600-15699): Knot 15601, NSD 15602, fennecd 15603 and up.
"""

import atexit
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

KNOT_PORT = 15601
NSD_PORT = 15602
FENNEC_PORT = 15603

_started = []  # Server objects still to be stopped at exit
_problems = []  # what stopping a fennecd found wrong (exit status, sanitizer reports)
_handlers_installed = False


class HarnessError(Exception):
    """A problem with the test setup (missing binary, server that does not come up)."""


def need_binary(name, hint):
    """Returns the path of NAME or raises HarnessError naming the package to install."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None)
    if not path:
        raise HarnessError(f"required binary '{name}' not found: {hint}")
    return path


def zones_in(zonedir):
    """Zone names served from ZONEDIR, main zone (the one named example.test) first."""
    names = sorted(f[:-5] for f in os.listdir(zonedir) if f.endswith(".zone"))
    if not names:
        raise HarnessError(f"no *.zone files in {zonedir}")
    names.sort(key=lambda n: (n != "example.test", n))
    return names


def _stop_all():
    for srv in list(_started):
        srv.stop()


def _on_signal(signum, _frame):
    _stop_all()
    sys.stderr.write(f"servers: stopped by signal {signum}\n")
    os._exit(128 + signum)


def _install_handlers():
    global _handlers_installed
    if _handlers_installed:
        return
    atexit.register(_stop_all)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    _handlers_installed = True


def soa_query(zone, port, host="127.0.0.1", timeout=0.5):
    """Sends one SOA query over UDP; returns the rcode or None when nothing came back."""
    qid = os.getpid() & 0xFFFF
    wire = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in zone.rstrip(".").split("."):
        wire += bytes([len(label)]) + label.encode()
    wire += b"\x00" + struct.pack("!HH", 6, 1)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(wire, (host, port))
            data = s.recv(65535)
        except OSError:
            return None
    if len(data) < 12 or struct.unpack("!H", data[:2])[0] != qid:
        return None
    return data[3] & 0x0F


class Server:
    """One server process, started in its own session so that its children die with it."""

    def __init__(self, name, port, argv, workdir, logfile, hosts=("127.0.0.1",)):
        self.name = name
        self.port = port
        self.argv = argv
        self.workdir = workdir
        self.logfile = logfile
        self.hosts = hosts
        self.proc = None

    def start(self, probe_zone, timeout=15.0):
        _install_handlers()
        log = open(self.logfile, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir,
                                     start_new_session=True)
        log.close()
        _started.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"{self.name} exited with status {self.proc.returncode} "
                                   f"while starting:\n{self.log_tail()}")
            if all(soa_query(probe_zone, self.port, h) == 0 for h in self.hosts):
                return self
            time.sleep(0.1)
        self.stop()
        raise HarnessError(f"{self.name} did not answer '{probe_zone} SOA' with NOERROR on port "
                           f"{self.port} within {timeout:.0f} s:\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40):
        try:
            with open(self.logfile, "r", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self):
        """SIGTERM (SIGKILL after 20 s). For fennecd, what is wrong is kept for run_main():
        an exit status other than 0 on SIGTERM, a sanitizer report in its log."""
        if self.proc is None:
            return
        was_running = self.proc.poll() is None
        killed = False
        if was_running:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                killed = True
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        if self in _started:
            _started.remove(self)
            if self.name == "fennecd":
                rc = self.proc.returncode
                if killed:
                    _problems.append(f"fennecd on port {self.port}: still running 20 s after "
                                     "SIGTERM, killed")
                elif rc != 0:
                    _problems.append(f"fennecd on port {self.port}: exit status {rc} "
                                     f"{'on SIGTERM' if was_running else 'before the end'}")
                try:
                    with open(self.logfile, "r", errors="replace") as f:
                        bad = [line for line in f if "Sanitizer" in line or "runtime error" in line]
                except OSError:
                    bad = []
                if bad:
                    _problems.append(f"fennecd on port {self.port}: sanitizer report in its log: "
                                     f"{bad[0].strip()}")


def make_tmp(prefix):
    d = tempfile.mkdtemp(prefix=f"fennec-integ-{prefix}-")
    atexit.register(shutil.rmtree, d, True)
    return d


def peer_setup(binary, package, name, zonedir, with_v6):
    """What starting a peer needs: its binary, the zone folder (absolute) and its zones, a
    work folder and the addresses it listens on."""
    path = need_binary(binary, f"apt-get install {package}")
    zonedir = os.path.abspath(zonedir)
    hosts = ("127.0.0.1", "::1") if with_v6 else ("127.0.0.1",)
    return path, zonedir, zones_in(zonedir), make_tmp(name), hosts


def start_knot(zonedir, port=KNOT_PORT, with_v6=True, identity="", nsid=""):
    """knotd serving every zone of ZONEDIR; IDENTITY (CH TXT id.server) and NSID are off
    unless given."""
    knotd, zonedir, zones, tmp, hosts = peer_setup("knotd", "knot", "knot", zonedir, with_v6)
    listen = ", ".join(f"{h}@{port}" for h in hosts)
    conf = f"""server:
  listen: [ {listen} ]
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
  rundir: {tmp}
  pidfile: {tmp}/knot.pid
  user: root
  identity: "{identity}"
  version: ""
  nsid: "{nsid}"
log:
  - target: stdout
    any: info
database:
  storage: {tmp}
template:
  - id: default
    storage: {zonedir}
    file: "%s.zone"
    semantic-checks: on
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
""" + "".join(f"  - domain: {z}\n" for z in zones)
    with open(os.path.join(tmp, "knot.conf"), "w") as f:
        f.write(conf)
    srv = Server("knotd", port, [knotd, "-c", os.path.join(tmp, "knot.conf")], tmp,
                 os.path.join(tmp, "knotd.out"), hosts)
    return srv.start(zones[0])


def start_nsd(zonedir, port=NSD_PORT, with_v6=True, identity="", nsid=""):
    """nsd serving every zone of ZONEDIR; IDENTITY and NSID as for start_knot."""
    nsd, zonedir, zones, tmp, hosts = peer_setup("nsd", "nsd", "nsd", zonedir, with_v6)
    ident = (f'  identity: "{identity}"\n  hide-identity: no\n' if identity
             else "  hide-identity: yes\n") + (f'  nsid: "ascii_{nsid}"\n' if nsid else "")
    conf = "server:\n" + "".join(f"  ip-address: {h}@{port}\n" for h in hosts) + f"""  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "{zonedir}"
  database: ""
  pidfile: "{tmp}/nsd.pid"
  xfrdfile: "{tmp}/xfrd.state"
  zonelistfile: "{tmp}/zone.list"
  xfrdir: "{tmp}"
  verbosity: 1
  hide-version: yes
{ident}  minimal-responses: yes
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
""" + "".join(f"zone:\n  name: {z}\n  zonefile: {z}.zone\n" for z in zones)
    with open(os.path.join(tmp, "nsd.conf"), "w") as f:
        f.write(conf)
    srv = Server("nsd", port, [nsd, "-d", "-c", os.path.join(tmp, "nsd.conf")], tmp,
                 os.path.join(tmp, "nsd.out"), hosts)
    return srv.start(zones[0])


def fennecd_path(argv_value=None):
    """The fennecd binary: an explicit argument, else $FENNECD. Raises when unusable."""
    path = argv_value or os.environ.get("FENNECD")
    if not path:
        raise HarnessError("fennecd not given: pass --fennecd PATH or set FENNECD")
    if not os.access(path, os.X_OK):
        raise HarnessError(f"fennecd '{path}' is not an executable file")
    return os.path.abspath(path)


def fennec_config(zonedir, port, data_dir, workers=2, control_port=None, with_v6=True,
                  extra=""):
    """The YAML text of a fennecd config serving every zone of ZONEDIR (see docs/config.md)."""
    zonedir = os.path.abspath(zonedir)
    dns = [f'"127.0.0.1:{port}"'] + ([f'"[::1]:{port}"'] if with_v6 else [])
    lines = [
        "node:",
        "  id: integration",
        "  role: primary",
        f"  data_dir: {data_dir}",
        "listen:",
        f"  dns: [{', '.join(dns)}]",
    ]
    if control_port:
        lines.append(f'  control: "127.0.0.1:{control_port}"')
    lines += [f"workers: {workers}", "log_level: info"]
    if extra:
        lines += extra.rstrip("\n").split("\n")
    lines += ["zones:"]
    for z in zones_in(zonedir):
        lines += [f"  - name: {z}", f"    file: {os.path.join(zonedir, z + '.zone')}"]
    return "\n".join(lines) + "\n"


def start_fennecd(binary, zonedir, port=FENNEC_PORT, workers=2, control_port=None,
                  with_v6=True, env=None, extra=""):
    binary = fennecd_path(binary)
    tmp = make_tmp("fennecd")
    data_dir = os.path.join(tmp, "data")
    os.makedirs(data_dir)
    conf = os.path.join(tmp, "fennecd.yaml")
    if control_port is None:
        control_port = port + 50
    with open(conf, "w") as f:
        f.write(fennec_config(zonedir, port, data_dir, workers, control_port, with_v6, extra))
    hosts = ("127.0.0.1", "::1") if with_v6 else ("127.0.0.1",)
    if env:
        os.environ.update(env)
    # Sanitizer builds: fail hard and loudly on the first error.
    os.environ.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1")
    os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    srv = Server("fennecd", port, [binary, "-c", conf], tmp, os.path.join(tmp, "fennecd.out"),
                 hosts)
    return srv.start(zones_in(zonedir)[0], timeout=30.0)


def run_main(name, main, failure=()):
    """Runs MAIN and exits with its code. A harness problem (a missing peer, a server that
    would not start) exits 2, an exception of the class FAILURE exits 1; each prints one
    line naming the test."""
    try:
        rc = main()
    except HarnessError as e:
        print(f"{name}: FAIL: {e}", file=sys.stderr)
        sys.exit(2)
    except failure as e:
        print(f"{name}: FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    # Every fennecd still running is stopped here; each must exit 0 with a clean log.
    _stop_all()
    for p in _problems:
        print(f"{name}: FAIL: {p}", file=sys.stderr)
    sys.exit(rc if rc else (1 if _problems else 0))


if __name__ == "__main__":
    # Manual use: servers.py ZONEDIR [FENNECD] starts everything and waits for Ctrl-C.
    zd = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "zones")
    running = [start_knot(zd), start_nsd(zd)]
    if len(sys.argv) > 2:
        running.append(start_fennecd(sys.argv[2], zd))
    for s in running:
        print(f"{s.name}: pid {s.proc.pid}, port {s.port}, log {s.logfile}")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
