"""One POP3 session over TLS with Python's poplib, for popa3d's TLS tests.

usage: poplib_tls_client.py MODE HOST PORT CAFILE USER PASSWORD OUTDIR

MODE is "stls" (POP3, then stls()) or "ssl" (POP3_SSL, implicit TLS). The
server's certificate is verified against CAFILE for the name "localhost".
Writes OUTDIR/capa-before and capa-after (the CAPA listings before and after
STLS; for ssl only capa-after), OUTDIR/version (the TLS version) and
OUTDIR/N.retr for each message: its lines as poplib returns them (CRLF
removed, dot-stuffing undone), each followed by LF.
"""

import os
import poplib
import ssl
import sys

poplib._MAXLINE = 1 << 24


def main():
    mode, host, port, cafile, user, password, outdir = sys.argv[1:8]
    ctx = ssl.create_default_context(cafile=cafile)
    if mode == "stls":
        p = poplib.POP3(host, int(port), timeout=30)
        with open(os.path.join(outdir, "capa-before"), "w") as f:
            f.write(" ".join(sorted(p.capa())))
        p.stls(context=ctx)
    else:
        p = poplib.POP3_SSL(host, int(port), timeout=30, context=ctx)
    with open(os.path.join(outdir, "capa-after"), "w") as f:
        f.write(" ".join(sorted(p.capa())))
    with open(os.path.join(outdir, "version"), "w") as f:
        f.write(p.sock.version())
    p.user(user)
    p.pass_(password)
    count, _ = p.stat()
    for i in range(1, count + 1):
        _, lines, _ = p.retr(i)
        with open(os.path.join(outdir, "%d.retr" % i), "wb") as f:
            for line in lines:
                f.write(line + b"\n")
    p.quit()


if __name__ == "__main__":
    main()
