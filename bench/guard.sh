#!/bin/bash
# The brute-force penalties with the real defaults (penalty 2 s doubling to
# 15 s after 3 failures, 2 pre-auth sessions for a penalised source, 10 s
# flood hold): a popa3d -D with two accounts, attacked from 127.0.0.1 by
# WORKERS workers for MINUTES minutes while an honest client logs in from
# 127.0.0.2 (bench/bruteforce). MODE is "single" (virtual users in a
# password file) or "privsep" (system accounts grdbh and grdbv and the
# pre-auth account grdbpre, created and removed; needs root). From the
# repository root:
#   bench/guard.sh [MINUTES] [WORKERS] [MODE]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-3} workers=${2:-4} mode=${3:-single}
dir=$(mktemp -d /tmp/popa3d-guard-bench-XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	if [ "$mode" = privsep ]; then
		for u in grdbh grdbv grdbpre; do userdel "$u" 2>/dev/null || true; done
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
go build -o "$dir/popa3d" ./cmd/popa3d
go build -o "$dir/bruteforce" ./bench/bruteforce
mkdir -p "$dir/mail" "$dir/state"
chmod 755 "$dir"
port=$((20000 + RANDOM % 20000))
if [ "$mode" = privsep ]; then
	for u in grdbh grdbv; do useradd -M -s /usr/sbin/nologin "$u"; done
	useradd -M -r -s /usr/sbin/nologin grdbpre
	echo 'grdbh:honest pw' | chpasswd
	echo 'grdbv:victim pw' | chpasswd
	mkdir "$dir/spool"
	printf 'From a@b Thu Nov 26 00:00:00 2026\nSubject: x\n\nhello\n\n' >"$dir/spool/grdbh"
	: >"$dir/spool/grdbv"
	for u in grdbh grdbv; do chown "$u:" "$dir/spool/$u"; chmod 600 "$dir/spool/$u"; done
	cat >"$dir/popa3d.toml" <<TOML
listen = ["127.0.0.1:$port"]
auth = "system"
mailbox = "spool/%u"
lock_dir = "state/locks"
chroot = "empty"
preauth_user = "grdbpre"
log = "stderr"
TOML
	honest=grdbh victim=grdbv
else
	honest=honest victim=victim
{
	echo "honest:$(printf 'honest pw\n' | "$dir/popa3d" passwd)"
	echo "victim:$(printf 'victim pw\n' | "$dir/popa3d" passwd)"
} >"$dir/passwd"
printf 'From a@b Thu Nov 26 00:00:00 2026\nSubject: x\n\nhello\n\n' >"$dir/mail/honest"
: >"$dir/mail/victim"
cat >"$dir/popa3d.toml" <<TOML
listen = ["127.0.0.1:$port"]
auth = "passwd_file"
passwd_file = "passwd"
mailbox = "mail/%u"
lock_dir = "state/locks"
log = "stderr"
TOML
if [ "$(id -u)" = 0 ]; then
	echo 'run_as = "nobody"' >>"$dir/popa3d.toml"
	chown -R nobody "$dir/mail" "$dir/state" "$dir/passwd"
fi
fi
"$dir/popa3d" -D -c "$dir/popa3d.toml" 2>"$dir/log" &
pid=$!
sleep 1
"$dir/bruteforce" -addr "127.0.0.1:$port" -from 127.0.0.1 -honest-from 127.0.0.2 \
	-user "$honest" -pass 'honest pw' -victim "$victim" -workers "$workers" -minutes "$minutes"
kill -TERM $pid
wait $pid || true
grep -E 'penalised|penalty limit|Daemon totals' "$dir/log" | head -20
