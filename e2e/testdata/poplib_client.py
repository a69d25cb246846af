"""One POP3 session with Python's poplib, for popa3d's end-to-end tests.

usage: poplib_client.py HOST PORT USER PASSWORD OUTDIR [DELE-LIST]

Logs in with USER/PASS, asks CAPA, STAT, LIST and UIDL, retrieves every message
with RETR and TOP n 0, marks the messages of the comma-separated DELE-LIST
deleted and quits. OUTDIR/session.json gets the replies; OUTDIR/N.retr and
OUTDIR/N.top0 get each message's lines as poplib returns them (CRLF removed,
dot-stuffing undone), each followed by LF.
"""

import json
import os
import poplib
import sys

# The test mailboxes have lines of 100 KB; poplib refuses lines over 2048
# bytes by default.
poplib._MAXLINE = 1 << 24


def save(outdir, name, lines):
    with open(os.path.join(outdir, name), "wb") as f:
        for line in lines:
            f.write(line + b"\n")


def main():
    host, port, user, password, outdir = sys.argv[1:6]
    dele = [int(n) for n in sys.argv[6].split(",") if n] if len(sys.argv) > 6 else []
    p = poplib.POP3(host, int(port), timeout=30)
    out = {"welcome": p.getwelcome().decode("latin-1")}
    out["capa"] = sorted(p.capa())
    out["user"] = p.user(user).decode("latin-1")
    out["pass"] = p.pass_(password).decode("latin-1")
    count, size = p.stat()
    out["stat"] = [count, size]
    out["list"] = [l.decode("latin-1") for l in p.list()[1]]
    out["uidl"] = [l.decode("latin-1") for l in p.uidl()[1]]
    out["octets"] = []
    for i in range(1, count + 1):
        _, lines, octets = p.retr(i)
        save(outdir, "%d.retr" % i, lines)
        out["octets"].append(octets)
        _, lines, _ = p.top(i, 0)
        save(outdir, "%d.top0" % i, lines)
    out["dele"] = [p.dele(n).decode("latin-1") for n in dele]
    out["quit"] = p.quit().decode("latin-1")
    with open(os.path.join(outdir, "session.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
