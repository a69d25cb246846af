"""One POP3 session that logs in with AUTH, for popa3d's end-to-end tests.

usage: sasl_client.py HOST PORT USER PASSWORD MECHANISM OUTDIR

MECHANISM is PLAIN (with an initial response, through poplib) or
SCRAM-SHA-256, whose client side is written here from RFC 5802 with
hashlib.pbkdf2_hmac and hmac, independent of the server's code. After a
successful login the session retrieves every message with RETR and quits.
OUTDIR/session.json gets the replies: capa, auth (the final status line),
server_signature_ok (SCRAM: whether the server proved it knows the
verifier), stat, octets, quit; OUTDIR/N.retr each message's lines as poplib
returns them, each followed by LF.
"""

import base64
import hashlib
import hmac
import json
import os
import poplib
import secrets
import sys

poplib._MAXLINE = 1 << 24


def b64(b):
    return base64.b64encode(b).decode("ascii")


def save(outdir, name, lines):
    with open(os.path.join(outdir, name), "wb") as f:
        for line in lines:
            f.write(line + b"\n")


def scram(p, user, password, out):
    """SCRAM-SHA-256 (RFC 7677) over poplib's line functions."""
    nonce = b64(secrets.token_bytes(18))
    bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), nonce)
    p._putcmd("AUTH SCRAM-SHA-256 " + b64(("n,," + bare).encode()))
    line = p._getline()[0].decode("latin-1")
    if not line.startswith("+ "):
        return line
    server_first = base64.b64decode(line[2:]).decode()
    f = dict(kv.split("=", 1) for kv in server_first.split(","))
    if not f["r"].startswith(nonce):
        raise SystemExit("server nonce does not extend the client's")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(f["s"]), int(f["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = "c=%s,r=%s" % (b64(b"n,,"), f["r"])
    auth_msg = ",".join([bare, server_first, without_proof]).encode()
    sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    p._putcmd(b64((without_proof + ",p=" + b64(proof)).encode()))
    line = p._getline()[0].decode("latin-1")
    if not line.startswith("+ "):
        return line
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    want = "v=" + b64(hmac.new(server_key, auth_msg, hashlib.sha256).digest())
    out["server_signature_ok"] = base64.b64decode(line[2:]).decode() == want
    p._putcmd("")
    return p._getline()[0].decode("latin-1")


def main():
    host, port, user, password, mech, outdir = sys.argv[1:7]
    p = poplib.POP3(host, int(port), timeout=30)
    out = {"capa": sorted("%s %s" % (k, " ".join(v)) if v else k for k, v in p.capa().items())}
    if mech == "PLAIN":
        try:
            out["auth"] = p._shortcmd("AUTH PLAIN " + b64(b"\0" + user.encode() + b"\0" + password.encode())).decode("latin-1")
        except poplib.error_proto as e:
            out["auth"] = e.args[0].decode("latin-1")
    else:
        out["auth"] = scram(p, user, password, out)
    if out["auth"].startswith("+OK"):
        count, _ = p.stat()
        out["stat"] = count
        out["octets"] = []
        for i in range(1, count + 1):
            _, lines, octets = p.retr(i)
            save(outdir, "%d.retr" % i, lines)
            out["octets"].append(octets)
        out["quit"] = p.quit().decode("latin-1")
    with open(os.path.join(outdir, "session.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
