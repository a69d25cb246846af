#!/bin/bash
# The brute-force penalties with the real defaults (penalty 2 s doubling to
# 15 s after 3 failures, 2 pre-auth sessions for a penalised source, 10 s
# flood hold): a single-account popa3d -D with two virtual users, attacked
# from 127.0.0.1 by WORKERS workers for MINUTES minutes while an honest
# client logs in from 127.0.0.2 (bench/bruteforce). From the repository root:
#   bench/guard.sh [MINUTES] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-3} workers=${2:-4}
dir=$(mktemp -d /tmp/popa3d-guard-bench-XXXXXX)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
go build -o "$dir/popa3d" ./cmd/popa3d
go build -o "$dir/bruteforce" ./bench/bruteforce
mkdir -p "$dir/mail" "$dir/state"
{
	echo "honest:$(printf 'honest pw\n' | "$dir/popa3d" passwd)"
	echo "victim:$(printf 'victim pw\n' | "$dir/popa3d" passwd)"
} >"$dir/passwd"
printf 'From a@b Thu Nov 26 00:00:00 2026\nSubject: x\n\nhello\n\n' >"$dir/mail/honest"
: >"$dir/mail/victim"
port=$((20000 + RANDOM % 20000))
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
	chmod 755 "$dir"
fi
"$dir/popa3d" -D -c "$dir/popa3d.toml" 2>"$dir/log" &
pid=$!
sleep 1
"$dir/bruteforce" -addr "127.0.0.1:$port" -from 127.0.0.1 -honest-from 127.0.0.2 \
	-user honest -pass 'honest pw' -victim victim -workers "$workers" -minutes "$minutes"
kill -TERM $pid
wait $pid || true
grep -E 'penalised|penalty limit|Daemon totals' "$dir/log" | head -20
