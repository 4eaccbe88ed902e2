#!/usr/bin/python3
"""`fennecd --check` refuses exactly what a start refuses (one validation, not two).

For each configuration below, `fennecd --check` runs, then fennecd itself: a start that is
refused exits at once with a message; an accepted one is still running after a second, is
stopped with SIGTERM and must exit 0 with a log free of sanitizer reports. The one intended
difference: a zone that fails to load makes --check fail (exit 1, naming the zone) while a
start serves the other zones (docs/operations.md). Listens on 127.0.0.1:17410-17411 only.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import servers  # noqa: E402

DNS, CONTROL = 17410, 17411
ZONE = ("$ORIGIN c.test.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n")

# name: (config text with {dir} for the work folder, what a start must do: "runs",
#        "refused" or "runs-without-zone", a word the --check message must hold)
CASES = {
    "valid": ("", "runs", None),
    "key file missing": ("cluster: {{key_file: {dir}/nokey}}\n", "refused", "nokey"),
    "key file empty": ("cluster: {{key_file: {dir}/empty.key}}\n", "refused", "empty.key"),
    "key file good": ("cluster: {{key_file: {dir}/good.key}}\n", "runs", None),
    "data_dir under a file": ("DATA={dir}/afile/data\n", "refused", "not a directory"),
    "yaml syntax": ("zones: [\n", "refused", "yaml"),
    "unknown key": ("colour: blue\n", "refused", "colour"),
    "workers above the bound": ("workers: 65\n", "refused", "workers"),
    "tls_verify on http": ("health:\n  checks:\n    - {{name: a, type: http, target: 192.0.2.1, "
                           "tls_verify: false}}\n", "refused", "tls_verify"),
    "bad tsig secret": ("tsig_keys:\n  - {{name: k, algorithm: hmac-sha256, secret: \"***\"}}\n",
                        "refused", "secret"),
    "nsid empty": ("nsid: \"\"\n", "refused", "nsid"),
    "zone file missing": ("ZONEFILE={dir}/missing.zone\n", "runs-without-zone", "missing.zone"),
}


def config(work, extra):
    """The configuration of one case in WORK: two zones, c.test and d.test, and EXTRA (whose
    DATA= and ZONEFILE= lines replace the data_dir and c.test's file)."""
    data = os.path.join(work, "data")
    zonefile = os.path.join(work, "c.test.zone")
    lines = []
    for line in extra.format(dir=work).splitlines(keepends=True):
        if line.startswith("DATA="):
            data = line[5:].strip()
        elif line.startswith("ZONEFILE="):
            zonefile = line[9:].strip()
        else:
            lines.append(line)
    return (f"node: {{id: chk1, data_dir: {data}}}\n"
            f"listen: {{dns: [\"127.0.0.1:{DNS}\"], control: \"127.0.0.1:{CONTROL}\"}}\n"
            + "".join(lines) +
            f"zones:\n  - {{name: c.test, file: {zonefile}}}\n"
            f"  - {{name: d.test, file: {os.path.join(work, 'd.test.zone')}}}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fennecd")
    ap.add_argument("--source-dir")
    args = ap.parse_args()
    fennecd = servers.fennecd_path(args.fennecd)
    work = tempfile.mkdtemp(prefix="fennec-check-")
    failures = 0
    try:
        open(os.path.join(work, "empty.key"), "w").close()
        with open(os.path.join(work, "good.key"), "w") as f:
            f.write("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n")
        open(os.path.join(work, "afile"), "w").close()
        for name, (extra, want, word) in CASES.items():
            case_dir = os.path.join(work, name.replace(" ", "-"))
            os.makedirs(case_dir)
            for fn in ("empty.key", "good.key", "afile"):
                shutil.copy(os.path.join(work, fn), case_dir)
            with open(os.path.join(case_dir, "c.test.zone"), "w") as f:
                f.write(ZONE)
            with open(os.path.join(case_dir, "d.test.zone"), "w") as f:
                f.write(ZONE.replace("c.test.", "d.test."))
            conf = config(case_dir, extra)
            path = os.path.join(case_dir, "fennec.yaml")
            with open(path, "w") as f:
                f.write(conf)
            chk = subprocess.run([fennecd, "-c", path, "--check"], capture_output=True,
                                 text=True, timeout=30)
            out = open(os.path.join(case_dir, "fennecd.out"), "w")
            proc = subprocess.Popen([fennecd, "-c", path], stdout=out, stderr=subprocess.STDOUT)
            try:
                rc = proc.wait(timeout=1.5)
                ran = False
            except subprocess.TimeoutExpired:
                ran = True
                proc.send_signal(signal.SIGTERM)
                rc = proc.wait(timeout=20)
            out.close()
            log = open(os.path.join(case_dir, "fennecd.out"), errors="replace").read()
            problems = []
            if want == "refused":
                if ran:
                    problems.append("fennecd started, a refusal was expected")
                elif rc == 0:
                    problems.append("fennecd exited 0 at once")
                if chk.returncode == 0:
                    problems.append(f"--check accepted what a start refuses: {chk.stdout!r}")
            else:
                if not ran:
                    problems.append(f"fennecd did not start (exit {rc}): {log[-400:]!r}")
                elif rc != 0:
                    problems.append(f"fennecd exited {rc} after SIGTERM")
                want_check = 0 if want == "runs" else 1
                if chk.returncode != want_check:
                    problems.append(f"--check exited {chk.returncode}, {want_check} expected: "
                                    f"{(chk.stdout + chk.stderr)[-300:]!r}")
            if word and word.lower() not in (chk.stdout + chk.stderr).lower():
                problems.append(f"--check does not name the problem ({word!r}): "
                                f"{(chk.stdout + chk.stderr)[-300:]!r}")
            if "Sanitizer" in log or "runtime error" in log:
                problems.append("sanitizer report in the log")
            print(f"  {'ok  ' if not problems else 'FAIL'} {name}: check exit {chk.returncode}, "
                  f"start {'ran' if ran else 'refused'} (exit {rc})")
            for p in problems:
                print(f"       {p}")
            failures += bool(problems)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"check: {len(CASES)} configurations, {failures} failures")
    print("check: PASS" if failures == 0 else "check: FAIL")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    servers.run_main("check", main)
