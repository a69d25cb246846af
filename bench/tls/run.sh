#!/bin/bash
# TLS benchmark (issue 10): our server over implicit TLS, privilege-separated
# (system accounts: the pre-auth process does TLS and relays) and in
# single-account mode (TLS in the serving process), against Dovecot's POP3S
# on the same mbox, same certificate (bench/peers.sh's RSA 2048 one), same
# client (bench/tls). Run as root from the repository root after
# `bench/peers.sh setup`:
#   bench/tls/run.sh [MESSAGES] [SECONDS]      (defaults: 20000, 10)
# It creates the accounts tlsbench (the big mailbox) and tlsb1..tlsb8 (small
# ones, one per session in flight) with one sha512-crypt password for every
# server, generates the mbox with bench/mailbox (20,000 messages: about
# 105 MB), and prints one line per measurement. Ports 2110-2115.
# Environment: PEERS (bench/peers.sh), PEERS_STATE (/tmp/peers-tls),
# SERVERS (which to measure, in this order: default "privsep single dovecot").
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-20000} secs=${2:-10}
SERVERS=${SERVERS:-privsep single dovecot}
want() { [[ " $SERVERS " == *" $1 "* ]]; }
PEERS=${PEERS:-bench/peers.sh}
export PEERS_STATE=${PEERS_STATE:-/tmp/peers-tls}
pass=tlsbenchpass1
hash=$(printf '%s\n' "$pass" | go run ./cmd/popa3d passwd -s sha512-crypt)
mkuser() {
	id "$1" >/dev/null 2>&1 || useradd -m -s /usr/sbin/nologin "$1"
	usermod -p "$hash" "$1"
}
mkuser tlsbench
for i in $(seq 8); do
	mkuser "tlsb$i"
	python3 - "/var/mail/tlsb$i" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(10):
        f.write("From bench@example.org Thu Nov 26 00:00:00 2026\n")
        f.write("From: bench@example.org\nSubject: message %d\nMessage-ID: <%d@bench>\n\n" % (i, i))
        f.write(("line of text %d\n" % i) * 120 + "\n")
PY
	chown "tlsb$i:mail" "/var/mail/tlsb$i"; chmod 600 "/var/mail/tlsb$i"
done
state=$(mktemp -d); chmod 755 "$state"
# The servers' logs are kept in $PEERS_STATE/ours-*.log.
trap 'kill $(jobs -p) 2>/dev/null; bash "$PEERS" stop dovecot-mbox 2>/dev/null; cp "$state"/*.log "$PEERS_STATE/" 2>/dev/null; rm -rf "$state"' EXIT
go build -o "$state/popa3d" ./cmd/popa3d
go build -o "$state/bench" ./bench/tls
go run ./bench/mailbox gen -n "$n" -user tlsbench -o /var/mail/tlsbench >&2
chown tlsbench:mail /var/mail/tlsbench; chmod 600 /var/mail/tlsbench
touch -d '1 hour ago' /var/mail/tlsbench /var/mail/tlsb*
echo "mailbox: $n messages, $(stat -c %s /var/mail/tlsbench) bytes"

dovecot_pid=
if want dovecot || [[ ! -e $PEERS_STATE/tls/cert.pem ]]; then
	# Dovecot's start also makes the certificate every server uses.
	dovecot_pid=$(bash "$PEERS" dovecot-mbox 2114 2115 | tail -n 1)
fi
cert=$PEERS_STATE/tls/cert.pem key=$PEERS_STATE/tls/key.pem

measure() { # NAME PORT PID
	echo "== $1"
	"$state/bench" -addr "127.0.0.1:$2" -pid "$3" -user tlsbench -pass "$pass" -w 1 retr
	"$state/bench" -addr "127.0.0.1:$2" -pid "$3" -user tlsbench -pass "$pass" -w 8 retr
	"$state/bench" -addr "127.0.0.1:$2" -pid "$3" -user 'tlsb%d' -pass "$pass" -c 8 -d "${secs}s" sessions
}

common="auth_failure_delay = \"0s\"
max_sessions_per_source = 10000
max_sessions = 10000
session_min_hold = \"0s\"
log = \"stderr\"
tls_cert = \"$cert\"
tls_key = \"$key\"
"
# The index cache is in each account's home (state_dir default).
cat >"$state/privsep.toml" <<CONF
listen = ["127.0.0.1:2110"]
listen_tls = ["127.0.0.1:2111"]
auth = "system"
mailbox = "/var/mail/%u"
lock_dir = "$state/locks"
chroot = "$state/empty"
preauth_user = "popa3d"
$common
CONF
if want privsep; then
	"$state/popa3d" -D -c "$state/privsep.toml" 2>"$state/privsep.log" &
	ours=$!
	for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/2111) 2>/dev/null && break; sleep 0.1; done
	measure "ours, privilege separation (pre-auth process relays TLS)" 2111 "$ours"
	kill "$ours"; wait "$ours" || true
fi

echo "tlsbench:$hash" >"$state/passwd"
install -d -o tlsbench "$state/single"
cat >"$state/single.toml" <<CONF
listen = ["127.0.0.1:2112"]
listen_tls = ["127.0.0.1:2113"]
auth = "passwd_file"
mailbox = "$state/smail/%u"
lock_dir = "$state/single-locks"
passwd_file = "$state/passwd"
run_as = "tlsbench"
state_dir = "$state/single"
$common
CONF
for i in $(seq 8); do echo "tlsb$i:$hash" >>"$state/passwd"; done
# Single-account mode serves every mailbox as run_as: copies of them, its own.
install -d -o tlsbench "$state/smail"
for f in /var/mail/tlsbench /var/mail/tlsb[1-8]; do
	cp -p "$f" "$state/smail/"; chown tlsbench "$state/smail/${f##*/}"
done
if want single; then
	"$state/popa3d" -D -c "$state/single.toml" 2>"$state/single.log" &
	ours=$!
	for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/2113) 2>/dev/null && break; sleep 0.1; done
	measure "ours, single-account mode (TLS in the serving process)" 2113 "$ours"
	kill "$ours"; wait "$ours" || true
fi

if want dovecot; then
	measure "Dovecot $(dovecot --version | cut -d' ' -f1), POP3S" 2115 "$dovecot_pid"
fi
if [[ -n $dovecot_pid ]]; then bash "$PEERS" stop dovecot-mbox; fi
