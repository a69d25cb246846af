"""One POP3 session over TLS that logs in with AUTH, for popa3d's e2e tests.

usage: sasl_tls_client.py MODE TLSVERSION HOST PORT CAFILE USER PASSWORD MECHANISM OUTDIR

MODE is ssl (implicit TLS, poplib.POP3_SSL) or stls (poplib.POP3 then
stls()). TLSVERSION is 1.2 or 1.3: the highest version the client offers
(and the lowest). MECHANISM is PLAIN or SCRAM-SHA-256-PLUS (or SCRAM-SHA-256-PLUS-TAMPERED,
which sends a channel binding with one bit flipped), whose client
side is written here from RFC 5802 and RFC 5929 with hashlib and hmac,
independent of the server's code: on TLS 1.2 the channel binding is
tls-server-end-point, the SHA-256 hash of the server's certificate
(ssl's getpeercert(True)); on TLS 1.3 it is tls-exporter (RFC 9266), which
needs the TLS exporter, which this Python's ssl may lack
(get_channel_binding("tls-exporter")): the session then runs through
`openssl s_client -tls1_3 -keymatexport EXPORTER-Channel-Binding
-keymatexportlen 32` (RFC 9266's label and length, no context), this script
speaking POP3 over its standard input and output and taking the exported
value from what it prints. After a successful login the session retrieves
every message. OUTDIR/session.json gets capa (under
TLS), auth (the final status line), server_signature_ok, binding, version,
stat, octets, quit; OUTDIR/N.retr each message's lines, each followed by LF.
"""

import base64
import hashlib
import hmac
import json
import os
import poplib
import secrets
import ssl
import subprocess
import sys

poplib._MAXLINE = 1 << 24


def b64(b):
    return base64.b64encode(b).decode("ascii")


class OpensslPOP3:
    """Just enough of poplib.POP3 over `openssl s_client` for scram_plus
    and main: the lines it reads skip what s_client prints itself."""

    def __init__(self, mode, host, port, cafile):
        args = ["openssl", "s_client", "-connect", "%s:%s" % (host, port), "-tls1_3", "-CAfile", cafile,
                "-verify_return_error", "-verify_hostname", "localhost", "-ign_eof",
                "-keymatexport", "EXPORTER-Channel-Binding", "-keymatexportlen", "32"]
        if mode == "stls":
            args += ["-starttls", "pop3"]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.exported = None
        self.tls_version = None
        while self.exported is None:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit("openssl s_client ended before the handshake was done")
            text = line.decode("latin-1").strip()
            if text.startswith("New, ") and "," in text[5:]:
                self.tls_version = text.split(",")[1].strip()  # New, TLSv1.3, Cipher is ...
            if text.startswith("Keying material:"):
                self.exported = bytes.fromhex(text.split(":", 1)[1].strip())
        if mode == "ssl":
            self.status()  # the greeting

    def _putcmd(self, line):
        self.proc.stdin.write(line.encode("latin-1") + b"\r\n")
        self.proc.stdin.flush()

    def _getline(self):
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("openssl s_client: connection closed")
        return line.rstrip(b"\r\n"), len(line)

    def status(self):
        """The next status line, after anything s_client printed itself."""
        while True:
            line = self._getline()[0]
            if line.startswith((b"+OK", b"-ERR", b"+ ")):
                return line

    def multi(self):
        lines = []
        while True:
            line = self._getline()[0]
            if line == b".":
                return lines
            lines.append(line[1:] if line.startswith(b"..") else line)

    def capa(self):
        self._putcmd("CAPA")
        self.status()
        caps = {}
        for line in self.multi():
            f = line.decode("latin-1").split()
            caps[f[0]] = f[1:]
        return caps

    def stat(self):
        self._putcmd("STAT")
        f = self.status().split()
        return int(f[1]), int(f[2])

    def retr(self, i):
        self._putcmd("RETR %d" % i)
        resp = self.status()
        if not resp.startswith(b"+OK"):
            raise SystemExit("RETR %d: %r" % (i, resp))
        lines = self.multi()
        return resp, lines, sum(len(l) + 2 for l in lines)

    def quit(self):
        self._putcmd("QUIT")
        resp = self.status()
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        return resp


def binding(sock):
    """The channel binding type and data of the TLS connection sock."""
    if sock.version() == "TLSv1.3":
        return "tls-exporter", sock.get_channel_binding("tls-exporter")
    cert = sock.getpeercert(True)
    return "tls-server-end-point", hashlib.sha256(cert).digest()


def scram_plus(p, user, password, out, tamper):
    if isinstance(p, OpensslPOP3):
        cbtype, cbdata = "tls-exporter", p.exported
    else:
        cbtype, cbdata = binding(p.sock)
    if tamper:
        cbdata = bytes([cbdata[0] ^ 1]) + cbdata[1:]
    out["binding"] = cbtype
    gs2 = "p=%s,," % cbtype
    nonce = b64(secrets.token_bytes(18))
    bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), nonce)
    p._putcmd("AUTH SCRAM-SHA-256-PLUS " + b64((gs2 + bare).encode()))
    line = getstatus(p)
    if not line.startswith("+ "):
        return line
    server_first = base64.b64decode(line[2:]).decode()
    f = dict(kv.split("=", 1) for kv in server_first.split(","))
    if not f["r"].startswith(nonce):
        raise SystemExit("server nonce does not extend the client's")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(f["s"]), int(f["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = "c=%s,r=%s" % (b64(gs2.encode() + cbdata), f["r"])
    auth_msg = ",".join([bare, server_first, without_proof]).encode()
    sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    p._putcmd(b64((without_proof + ",p=" + b64(proof)).encode()))
    line = getstatus(p)
    if not line.startswith("+ "):
        return line
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    want = "v=" + b64(hmac.new(server_key, auth_msg, hashlib.sha256).digest())
    out["server_signature_ok"] = base64.b64decode(line[2:]).decode() == want
    p._putcmd("")
    return getstatus(p)


def getstatus(p):
    if isinstance(p, OpensslPOP3):
        return p.status().decode("latin-1")
    return p._getline()[0].decode("latin-1")


def main():
    mode, version, host, port, cafile, user, password, mech, outdir = sys.argv[1:10]
    if mech != "PLAIN" and version == "1.3" and "tls-exporter" not in ssl.CHANNEL_BINDING_TYPES:
        p = OpensslPOP3(mode, host, port, cafile)
        out = {"version": p.tls_version, "client": "openssl s_client"}
        out["capa"] = sorted("%s %s" % (k, " ".join(v)) if v else k for k, v in p.capa().items())
        try:
            finish(p, user, password, mech, outdir, out)
        finally:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(timeout=30)
        return
    ctx = ssl.create_default_context(cafile=cafile)
    v = ssl.TLSVersion.TLSv1_2 if version == "1.2" else ssl.TLSVersion.TLSv1_3
    ctx.minimum_version = ctx.maximum_version = v
    if mode == "ssl":
        p = poplib.POP3_SSL(host, int(port), context=ctx, timeout=30)
    else:
        p = poplib.POP3(host, int(port), timeout=30)
        p.stls(context=ctx)
    out = {"version": p.sock.version()}
    out["capa"] = sorted("%s %s" % (k, " ".join(v)) if v else k for k, v in p.capa().items())
    finish(p, user, password, mech, outdir, out)


def finish(p, user, password, mech, outdir, out):
    """Logs in, retrieves every message and writes session.json."""
    if mech == "PLAIN":
        try:
            out["auth"] = p._shortcmd("AUTH PLAIN " + b64(b"\0" + user.encode() + b"\0" + password.encode())).decode("latin-1")
        except poplib.error_proto as e:
            out["auth"] = e.args[0].decode("latin-1")
    else:
        out["auth"] = scram_plus(p, user, password, out, mech.endswith("-TAMPERED"))
    if out["auth"].startswith("+OK"):
        count, _ = p.stat()
        out["stat"] = count
        out["octets"] = []
        for i in range(1, count + 1):
            _, lines, octets = p.retr(i)
            with open(os.path.join(outdir, "%d.retr" % i), "wb") as f:
                for line in lines:
                    f.write(line + b"\n")
            out["octets"].append(octets)
        out["quit"] = p.quit().decode("latin-1")
    with open(os.path.join(outdir, "session.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
