#!/usr/bin/env python3
"""Differential test against the real popa3d 1.0.3.

Sends the same random, pipelined POP3 sessions (valid and invalid commands,
odd spacing, numbers at and past the limits, NULs, over-long lines, CR CR LF,
bare LF) to Debian's popa3d and to ours, serving the same mailbox to the same
user, and compares every byte of the replies and the mailbox left behind.

Set-up (as root), from the repository root:
    bench/peers.sh setup
    useradd -m popa3dbench; echo popa3dbench:benchpass1 | chpasswd
    bench/peers.sh popa3d 11110
    # ours on 127.0.0.1:11112 for the same user, run_as = "popa3dbench",
    # mailbox = "/var/mail/%u", bad_commands = 0 (popa3d has no such limit),
    # auth_failure_delay = "0s"
    python3 compat/differential.py SEED COUNT

The generator leaves out what differs on purpose (CAPA, response codes,
duplicate UIDLs, unterminated last lines: see README). popa3d closes a
connection with unread input with a reset; ours closes gently, so a reset at
the end of popa3d's output is not counted as a difference.
"""
import os
import random
import shutil
import socket
import sys
import time

POPA3D, OURS = ('127.0.0.1', 11110), ('127.0.0.1', 11112)
USER, PASSWORD = b'popa3dbench', b'benchpass1'
MBOX = '/var/mail/popa3dbench'
SOURCE = os.path.join(os.path.dirname(__file__), '..', 'testdata', 'popa3d-golden', 'protocol-edges.mbox')

COMMANDS = ['STAT', 'LIST', 'UIDL', 'RETR', 'TOP', 'DELE', 'NOOP', 'RSET', 'LAST', 'QUIT',
            'USER', 'PASS', 'XTND', 'APOP', 'stat', 'List', 'uidl', 'retr', 'top', 'dele']
NUMBERS = ['1', '2', '3', '0', '4', '-1', '+1', '01', '\t2', '1x', '2147483647', '2147483648',
           '99999999999', '', '-0', ' 1', '3 ']


def install():
    """Puts the same mailbox in place, owned by the user, with an old mtime
    (popa3d sleeps a second when the mtime is the current second)."""
    shutil.copyfile(SOURCE, MBOX)
    st = os.stat('/home/popa3dbench')
    os.chown(MBOX, st.st_uid, 8)
    os.chmod(MBOX, 0o600)
    t = time.time() - 3600
    os.utime(MBOX, (t, t))


def session(addr, script):
    install()
    s = socket.create_connection(addr, timeout=20)
    s.sendall(script)
    s.shutdown(socket.SHUT_WR)
    out = b''
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break  # popa3d's close with unread input; see the docstring
        if not b:
            break
        out += b
    s.close()
    time.sleep(0.05)  # let the server finish with the file
    with open(MBOX, 'rb') as f:
        return out, f.read()


def line(r):
    c, k = r.choice(COMMANDS), r.random()
    if k < 0.5:
        text = c + ' ' + r.choice(NUMBERS)
    elif k < 0.7:
        text = c + ' ' + r.choice(NUMBERS) + ' ' + r.choice(NUMBERS)
    elif k < 0.8:
        text = c
    elif k < 0.85:
        text = c + ' ' * r.randint(1, 3)
    elif k < 0.9:
        text = c + ' ' + 'x' * r.randint(100, 300)
    elif k < 0.93:
        text = c + '\x00'
    elif k < 0.96:
        text = c + '\t1'
    else:
        text = ''
    return (text + r.choice(['\r\n', '\r\n', '\n', '\r\r\n'])).encode('latin-1')


def script(r):
    before = [l for l in (line(r) for _ in range(r.randint(0, 4)))
              if not l.upper().startswith((b'PASS', b'USER', b'QUIT'))]
    after = [line(r) for _ in range(r.randint(5, 40))]
    login = b'USER ' + USER + b'\r\nPASS ' + PASSWORD + b'\r\n'
    return b''.join(before) + login + b''.join(after) + (b'QUIT\r\n' if r.random() < 0.7 else b'')


def main():
    seed, count = int(sys.argv[1]), int(sys.argv[2])
    differences = 0
    for i in range(count):
        sc = script(random.Random(seed * 100000 + i))
        theirs, ours = session(POPA3D, sc), session(OURS, sc)
        if theirs != ours:
            differences += 1
            print('case', i, repr(sc))
            print('  popa3d:', repr(theirs[0]))
            print('  ours:  ', repr(ours[0]))
            print('  same mailbox after:', theirs[1] == ours[1])
    print('sessions', count, 'differences', differences)
    sys.exit(1 if differences else 0)


if __name__ == '__main__':
    main()
