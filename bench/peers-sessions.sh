#!/bin/bash
# Whole sessions per second (connect, USER, PASS, STAT, QUIT) against our
# popa3d -D (system accounts, privilege separation) and Debian's popa3d 1.0.3
# (inetd mode behind socat, as bench/peers.sh runs it: PAM, its
# own privilege separation), on the same machine, same account, same
# password hash (the system's default, yescrypt on Debian), same small
# mailbox. Run as root after bench/peers.sh setup, from the repository root:
#   bench/peers-sessions.sh [SECONDS] [IN-FLIGHT]
# (PEERS=/path/to/peers.sh overrides the peers script.)
# Our flood guard is opened wide for the run (it would otherwise cap one
# source at 50 sessions per 10 s, as popa3d's -D does; popa3d under socat has
# no guard). Both servers apply no delay to successful logins.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${PEERS:-bench/peers.sh}
secs=${1:-10} conc=${2:-8}
pass=sessbench1
# Accounts p3sb1..p3sb8 (one per session in flight: a mailbox serves one
# session at a time in ours), each with a mailbox of 10 messages of 2 KB.
for i in $(seq "$conc"); do
	user=p3sb$i
	id "$user" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$user"
	echo "$user:$pass" | chpasswd   # the system's default method
	python3 - "/var/mail/$user" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(10):
        f.write("From bench@example.org Thu Nov 26 00:00:00 2026\n")
        f.write("From: bench@example.org\nSubject: message %d\nMessage-ID: <%d@bench>\n\n" % (i, i))
        f.write(("line of text %d\n" % i) * 120 + "\n")
PY
	chown "$user:mail" "/var/mail/$user"; chmod 600 "/var/mail/$user"
	touch -d '1 hour ago' "/var/mail/$user"
done
echo "hash of p3sb1: $(getent shadow p3sb1 | cut -d: -f2 | cut -c1-4)..."
state=$(mktemp -d); chmod 755 "$state"
trap 'rm -rf "$state"' EXIT
go build -o "$state/popa3d" ./cmd/popa3d
go build -o "$state/sessions" ./bench/sessions
cat >"$state/popa3d.toml" <<CONF
listen = ["127.0.0.1:11120"]
auth = "system"
lock_dir = "$state/locks"
chroot = "$state/empty"
log = "stderr"
max_sessions_per_source = 500
session_min_hold = "0s"
CONF
"$state/popa3d" -D -c "$state/popa3d.toml" 2>"$state/log" </dev/null >/dev/null &
ours=$!
trap 'kill "$ours" 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/11120) 2>/dev/null && break; sleep 0.1; done
measure() {  # ADDR
	echo "one at a time (p3sb1):"
	"$state/sessions" -addr "$1" -user p3sb1 -pass "$pass" -c 1 -d "${secs}s"
	echo "$conc in flight (p3sb1..p3sb$conc):"
	"$state/sessions" -addr "$1" -user 'p3sb%d' -pass "$pass" -c "$conc" -d "${secs}s"
}
echo "== ours (popa3d -D, auth = system)"
measure 127.0.0.1:11120 || { tail -5 "$state/log"; kill "$ours"; exit 1; }
kill "$ours"; wait "$ours" || true
bash "$PEERS" popa3d 11121 >/dev/null
echo "== popa3d 1.0.3 (Debian, inetd mode under socat)"
measure 127.0.0.1:11121 || true
bash "$PEERS" stop popa3d-11121
