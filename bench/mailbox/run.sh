#!/bin/bash
# Mailbox benchmark (issue 4): our server, Debian's popa3d 1.0.3 and Dovecot
# side by side on the same generated mbox mailboxes, same client, loopback.
#
# Usage, as root, from anywhere:
#   bench/mailbox/run.sh [quick|full]     (default quick)
#     quick: one mailbox of 10,000 messages (about 52 MB)
#     full:  that one and one of 200,000 messages (about 1 GB)
# It prints a Markdown table on stdout (progress on stderr) and keeps it in
# $WORK/report.md.
#
# What it needs: Go (builds cmd/popa3d and the client in this directory);
# the peers of bench/peers.sh (in this repository), set up once with
# `bench/peers.sh setup` (dovecot-pop3d, socat, openssl; Debian's popa3d
# unpacked; run here if they are missing);
# about 3.2 GB free under $WORK and /var/mail for the full run (the
# generated mailboxes stay in $WORK for the next run). It creates the
# bench user if missing and (re)sets its password, hashed as sha512-crypt for
# every server, so the one password check inside each login costs the same.
#
# How long (2 shared cores): quick about 30 s; full about 3 minutes, a third
# of it Dovecot's three first opens of the 1 GB mailbox (generating that one
# takes another 10 s the first time; it is cached in $WORK, keyed by count,
# seed and generator source).
#
# What it does, per mailbox: install it as /var/mail/$BENCH_USER (owner the
# user, mode 0600); then for each server: start it on 127.0.0.1; measure the
# first open (several times, each after the first-open hook, which reinstalls
# the mailbox and removes the server's index cache), reopens, UIDL, RETR one
# at a time and 8 in flight, and a session deleting every other message
# (QUIT to +OK); stop the server and reinstall the mailbox. At the end the
# user's own mailbox, if it had one, is put back. The mailbox file is in the
# page cache for every server (it was just copied): the figures are
# warm-cache ones.
#
# Environment (defaults): BENCH_USER (popa3dbench), BENCH_PASS (benchpass1),
# PEERS (bench/peers.sh, see above), PORT_BASE (11130: ours, +1 popa3d, +2 Dovecot),
# WORK (/var/tmp/popa3d-mailbox-bench), SEED (1), FIRST_OPENS (3: first
# opens, each after the hook; the median is reported), REOPENS (5),
# RETR_CAP (10s: each RETR pass stops sending commands after this long, and
# the table says so; popa3d 1.0.3 stalls about 40 ms on every message, its
# last write waiting out the client's delayed ACK under Nagle, so all of the
# 200,000 messages would take hours), SERVERS ("ours popa3d dovecot").
set -euo pipefail
mode=${1:-quick}
case $mode in
quick) sizes="10000" ;;
full) sizes="10000 200000" ;;
*) sed -n '2,/^set /{/^set /d;p}' "$0"; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
PEERS=${PEERS:-$repo/bench/peers.sh}
user=${BENCH_USER:-popa3dbench} pass=${BENCH_PASS:-benchpass1}
port=${PORT_BASE:-11130}
WORK=${WORK:-/var/tmp/popa3d-mailbox-bench}
SEED=${SEED:-1} FIRST_OPENS=${FIRST_OPENS:-3} REOPENS=${REOPENS:-5} RETR_CAP=${RETR_CAP:-10s}
SERVERS=${SERVERS:-ours popa3d dovecot}
# The peers keep their state apart from other users of peers.sh.
export PEERS_STATE=$WORK/peers
if [ -z "${POPA3D_ROOT:-}" ] && [ -x /tmp/popa3d-peers/popa3d-pkg/usr/sbin/popa3d ]; then
	export POPA3D_ROOT=/tmp/popa3d-peers/popa3d-pkg
fi
log() { echo "$*" >&2; }

mkdir -p "$WORK/bin" "$PEERS_STATE"
chmod 755 "$WORK" "$PEERS_STATE"
if ! command -v dovecot >/dev/null || ! [ -x "${POPA3D_ROOT:-$PEERS_STATE/popa3d-pkg}/usr/sbin/popa3d" ]; then
	bash "$PEERS" setup >&2
fi
(cd "$repo" && go build -o "$WORK/bin/popa3d" ./cmd/popa3d && go build -o "$WORK/bin/mailbox" ./bench/mailbox)
bench=$WORK/bin/mailbox

id "$user" >/dev/null 2>&1 || useradd -m "$user"
echo "$user:$pass" | chpasswd -c SHA512
home=$(getent passwd "$user" | cut -d: -f6)
install -d -o "$user" -g "$(id -gn "$user")" -m 0700 "$home"
mbox=/var/mail/$user

# install_cmd SRC: a shell command that puts a fresh copy of SRC in place as
# the user's mailbox. It is also the start of every first-open hook: Dovecot
# rewrites an mbox on first sight (it adds its UID headers), so a really
# first open needs the pristine file back, not just the index gone. The
# mtime is set an hour back, as for mail delivered a while ago: popa3d
# sleeps 1 s when it opens a mailbox modified in the current second.
install_cmd() {
	local tmp="/var/mail/.$user.bench"
	printf "cp '%s' '%s' && chown '%s:mail' '%s' && chmod 0600 '%s' && touch -d '1 hour ago' '%s' && mv -f '%s' '%s' && rm -f '%s.lock'" \
		"$1" "$tmp" "$user" "$tmp" "$tmp" "$tmp" "$tmp" "$mbox" "$mbox"
}
install_mailbox() { sh -c "$(install_cmd "$1")"; }

# Our server: system accounts with privilege separation (a pre-auth process
# and a session process per connection), state_dir for the index cache and
# the journal (first_open_ours clears it).
ours=$WORK/ours
start_ours() {  # PORT
	# System accounts with privilege separation, as the peers serve them:
	# the same account and shadow hash; the index cache and the UPDATE
	# journal in a state directory of the user's.
	rm -rf "$ours"; mkdir -p "$ours"; chmod 755 "$ours"
	install -d -o "$user" -m 0700 "$ours/state"
	cat >"$ours/popa3d.toml" <<-CONF
	listen = ["127.0.0.1:$1"]
	auth = "system"
	mailbox = "/var/mail/%u"
	lock_dir = "$ours/locks"
	chroot = "$ours/empty"
	state_dir = "$ours/state"
	CONF
	"$WORK/bin/popa3d" -D -e -c "$ours/popa3d.toml" 2>>"$ours/log" &
	echo $! >"$ours/pid"
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$(cat "$ours/pid")" 2>/dev/null || break
		sleep 0.1
	done
	log "our server did not start; see $ours/log"; tail -5 "$ours/log" >&2; return 1
}
stop_ours() {
	[ -s "$ours/pid" ] || return 0
	kill "$(cat "$ours/pid")" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$(cat "$ours/pid")" 2>/dev/null || break; sleep 0.1; done
	rm -f "$ours/pid"
}
first_open_ours() { echo "rm -rf '$ours/state'/*"; }

start_popa3d() { bash "$PEERS" popa3d "$1" >/dev/null; popa3d_port=$1; }
stop_popa3d() { [ -z "${popa3d_port:-}" ] || bash "$PEERS" stop "popa3d-$popa3d_port"; popa3d_port=; }
first_open_popa3d() { echo ":"; }  # popa3d keeps nothing between sessions

start_dovecot() { bash "$PEERS" dovecot-mbox "$1" >/dev/null; dovecot_up=1; }
stop_dovecot() {
	[ -n "${dovecot_up:-}" ] || return 0
	local pid; pid=$(cat "$PEERS_STATE/dovecot-mbox/pid" 2>/dev/null || true)
	bash "$PEERS" stop dovecot-mbox
	for _ in $(seq 50); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	dovecot_up=
}
# Dovecot keeps its mbox index under ~/mail/.imap (mail_location in peers.sh).
first_open_dovecot() { echo "rm -rf '$home/mail/.imap'"; }

name_ours=ours
name_popa3d=popa3d-1.0.3
name_dovecot=dovecot-$(dovecot --version | cut -d' ' -f1)

# The user's own mailbox, if any, is put back at the end.
saved=$WORK/saved-mailbox
if [ -e "$mbox" ] && ! [ -e "$saved" ]; then mv "$mbox" "$saved"; fi
cleanup() {
	stop_ours; stop_popa3d; stop_dovecot
	rm -f "$mbox" "/var/mail/.$user.bench"
	if [ -e "$saved" ]; then mv "$saved" "$mbox"; fi
}
trap cleanup EXIT

results=$WORK/results.jsonl
: >"$results"
gensum=$(sha256sum "$here/gen.go" | cut -c1-16)
for n in $sizes; do
	src=$WORK/mbox-$n-seed$SEED
	if [ "$(cat "$src.stamp" 2>/dev/null)" != "$gensum" ]; then
		log "generating $n messages"
		"$bench" gen -n "$n" -seed "$SEED" -user "$user" -o "$src" >&2
		echo "$gensum" >"$src.stamp"
	fi
	label=$((n / 1000))k
	install_mailbox "$src"
	for s in $SERVERS; do
		case $s in ours) p=$port ;; popa3d) p=$((port + 1)) ;; dovecot) p=$((port + 2)) ;; *) log "unknown server $s"; exit 2 ;; esac
		name_var=name_$s
		log "== $s on $label ($n messages), port $p"
		"start_$s" "$p"
		"$bench" measure -addr "127.0.0.1:$p" -user "$user" -pass "$pass" -n "$n" \
			-first-opens "$FIRST_OPENS" -reopens "$REOPENS" -retr-cap "$RETR_CAP" -first-hook "$(install_cmd "$src") && $("first_open_$s")" \
			-server "${!name_var}" -mailbox "$label" -out "$results" || log "($s: errors, see the table)"
		"stop_$s"
		install_mailbox "$src"
	done
done
"$bench" report -ours "$name_ours" \
	-note "Servers: ours = $(cd "$repo" && git describe --always --dirty) (cmd/popa3d -D, auth = system with privilege separation, sha512-crypt, index cache and journal in state_dir), popa3d-1.0.3 = Debian's under socat (inetd mode), Dovecot mbox (dotlock+fcntl). Same mailbox bytes, same password hash scheme, warm page cache; loopback." \
	-note "popa3d 1.0.3 sends a multi-line reply as three writes (status line, body, terminator); under Nagle the last one often waits for the client's delayed ACK (about 40 ms), which dominates its RETR figures (and at times its UIDL one)." \
	-note "Mailboxes: seed $SEED, generator $gensum; login to STAT = USER sent until the STAT reply (after the greeting); UIDL/RETR from the command sent until the last byte." \
	"$results" | tee "$WORK/report.md"
