#!/bin/bash
# RETR throughput of our server, Debian's popa3d and Dovecot on the same
# machine, same mailbox, same client (the Go benchmark in this directory).
# Run as root, from the repository root, after bench/peers.sh setup:
#   bench/peers-retr.sh
# (PEERS=/path/to/peers.sh overrides the peers script.)
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${PEERS:-bench/peers.sh}
user=popa3dbench pass=benchpass1
id "$user" >/dev/null 2>&1 || useradd -m "$user"
echo "$user:$pass" | chpasswd
POP3_BENCH_WRITE=/var/mail/$user go test -count=1 -run TestWriteMailbox ./bench/ >/dev/null
chown "$user:mail" /var/mail/$user; chmod 600 /var/mail/$user
run() {  # NAME ADDR
	echo "== $1"
	POP3_BENCH_ADDR=$2 POP3_BENCH_USER=$user POP3_BENCH_PASS=$pass \
		go test -count=1 -run '^$' -bench 'RETR' -benchtime 5x ./bench/ | grep '^Benchmark'
}
state=$(mktemp -d); chmod 755 "$state"
go build -o "$state/popa3d" ./cmd/popa3d
echo "$user:$(printf '%s\n' "$pass" | "$state/popa3d" passwd -s sha512-crypt)" >"$state/passwd"
cat >"$state/popa3d.toml" <<CONF
listen = ["127.0.0.1:11112"]
auth = "passwd_file"
passwd_file = "passwd"
mailbox = "/var/mail/%u"
lock_dir = "locks"
run_as = "$user"
log = "stderr"
CONF
install -d -o "$user" "$state/locks"
"$state/popa3d" -D -c "$state/popa3d.toml" 2>"$state/log" &
ours=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/11112) 2>/dev/null && break; sleep 0.1; done
run "ours (popa3d -D)" 127.0.0.1:11112
kill "$ours"; wait "$ours" || true; rm -rf "$state"
bash "$PEERS" popa3d 11110 >/dev/null
run popa3d-1.0.3 127.0.0.1:11110
bash "$PEERS" stop popa3d-11110
bash "$PEERS" dovecot-mbox 11111 >/dev/null
run dovecot 127.0.0.1:11111
bash "$PEERS" stop dovecot-mbox
