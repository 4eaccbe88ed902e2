#!/usr/bin/python3
"""Health 4: HTTPS checks verify the certificate for `host`, unless tls_verify is false.

A test CA and a certificate for web.test signed by it are made here with the openssl CLI,
with a second, unrelated CA; one HTTPS server of the test serves that certificate. Checks,
all of the same server, on every node of a primary and two secondaries:
- good:     host web.test, ca_file the test CA                       -> up
- wrongname: host other.test, ca_file the test CA                    -> down, "TLS: ..."
- unknownca: host web.test, ca_file the unrelated CA                 -> down, "TLS: ..."
- systemca:  host web.test, the system's CAs                         -> down, "TLS: ..."
- wrongname_nv, unknownca_nv: the same two with tls_verify false     -> up
Pool tls.example.com is `failover` [wrongname's member, good's member]: every node serves the
second. The server saw SNI web.test and "Host: web.test" on every handshake and request of
check good (and other.test for wrongname_nv): Host and SNI are the `host` value.

usage: test_tls.py FENNECD [FENNECCTL]
Ports: 16660-16679 (slot 3 of 16600-16799); server on 127.0.103.1:16678.
"""
import os
import sys

import hc


def make_pki(c):
    """Writes ca.pem, other-ca.pem, web.pem and web.key into C's folder; returns their paths."""
    d = os.path.join(c.work, "pki")
    os.makedirs(d)
    for ca, cn in (("ca", "fennec test CA"), ("other-ca", "fennec unrelated CA")):
        hc.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                   "-nodes", "-days", "2",
                   "-subj", "/CN=%s" % cn, "-keyout", "%s.key" % ca, "-out", "%s.pem" % ca,
                   "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    hc.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
               "-subj", "/CN=web.test",
               "-keyout", "web.key", "-out", "web.csr", cwd=d)
    with open(os.path.join(d, "web.ext"), "w") as f:
        f.write("subjectAltName=DNS:web.test\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    hc.openssl("x509", "-req", "-in", "web.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
               "-CAcreateserial", "-days", "2", "-extfile", "web.ext", "-out", "web.pem", cwd=d)
    return {k: os.path.join(d, k) for k in ("ca.pem", "other-ca.pem", "web.pem", "web.key")}


def body(c):
    pki = make_pki(c)
    srv = c.server(1, tls=(pki["web.pem"], pki["web.key"]))

    def https(name, host, ca=None, verify=None):
        chk = {"name": name, "type": "https", "target": c.address(1), "port": c.server_port,
               "host": host, "interval": "2s", "timeout": "1500ms", "rise": 1, "fall": 1}
        if ca:
            chk["ca_file"] = pki[ca]
        if verify is not None:
            chk["tls_verify"] = verify
        return chk

    checks = [https("good", "web.test", "ca.pem"),
              https("wrongname", "other.test", "ca.pem"),
              https("unknownca", "web.test", "other-ca.pem"),
              https("systemca", "web.test"),
              https("wrongname_nv", "other.test", "ca.pem", False),
              https("unknownca_nv", "web.test", "other-ca.pem", False)]
    # Two addresses for the one server are not needed: a pool member's address is only what is
    # served. 192.0.2.1 stands for wrongname's member, 192.0.2.2 for good's.
    pools = [{"name": "tls.example.com", "policy": "failover", "degraded_ttl": 5,
              "members": [{"address": "192.0.2.1", "check": "wrongname"},
                          {"address": "192.0.2.2", "check": "good"}]}]
    nodes = c.start_cluster(checks, pools)
    want = {"good": "up", "wrongname": "down", "unknownca": "down", "systemca": "down",
            "wrongname_nv": "up", "unknownca_nv": "up"}
    c.check(c.wait_states(nodes, want, 15), "every node reaches the expected states in 15 s")
    for n in nodes:
        cs = c.checks_of(n)
        for name, state in want.items():
            got = cs.get(name, {})
            res = got.get("last_result") or ""
            ok = got.get("state") == state and (res == "200" if state == "up"
                                                 else res.startswith("TLS: "))
            c.check(ok, "%s: %s is %s (%s)" % (n.id, name, state, res), got)
        a = hc.ask(n, "tls")
        c.check(a and a.addrs == {"192.0.2.2"} and a.ttl == 5,
                "%s: the pool serves good's member, not wrongname's" % n.id, a)
    seen = srv.seen()
    good = [r for r in seen if r["host"] == "web.test"]
    c.check(len(good) >= 3 and all(r["sni"] == "web.test" for r in good),
            "the server saw SNI web.test with every \"Host: web.test\" request (%d)" % len(good),
            good[:3])
    other = [r for r in seen if r["host"] == "other.test"]
    c.check(len(other) >= 3 and all(r["sni"] == "other.test" for r in other),
            "and SNI other.test with every \"Host: other.test\" request (tls_verify false)",
            other[:3])
    c.check({r["host"] for r in seen} == {"web.test", "other.test"},
            "no request carried another Host", {r["host"] for r in seen})
    print("   handshakes the server saw fail (the prober refusing the certificate): %d" %
          len(srv.tls_errors))
    c.check(len(srv.tls_errors) > 0, "refused certificates ended the handshake, no request",
            srv.tls_errors[:2])


if __name__ == "__main__":
    sys.exit(hc.Health("tls", 3, sys.argv).run(body))
