#!/bin/bash
# Mailbox benchmark (issues 4 and 11): our server, Debian's popa3d 1.0.3 and
# Dovecot side by side on the same generated mailboxes, same client, loopback.
#
# Usage, as root, from anywhere:
#   bench/mailbox/run.sh [quick|full|maildir]     (default quick)
#     quick:   mbox, 10,000 messages (about 52 MB)
#     full:    mbox, that one, 100,000 small messages (about 1.4 KB each,
#              145 MB) and 200,000 messages with attachments (about 1 GB)
#     maildir: Maildir, ours against Dovecot, 10,000 messages (the 52 MB
#              mix) and 100,000 small ones, as files in cur/
# It prints a Markdown table on stdout (progress on stderr) and keeps it in
# $WORK/report.md.
#
# What it needs: Go (builds cmd/popa3d and the client in this directory);
# the peers of bench/peers.sh (in this repository), set up once with
# `bench/peers.sh setup` (dovecot-pop3d, socat, openssl; Debian's popa3d
# unpacked; run here if they are missing);
# about 4 GB free under $WORK and /var/mail for the full run (the
# generated mailboxes stay in $WORK for the next run). It creates the
# bench user if missing and (re)sets its password, hashed as sha512-crypt for
# every server, so the one password check inside each login costs the same.
#
# How long (2 shared cores): quick about a minute; full about 15 minutes,
# much of it Dovecot's first opens of the 1 GB mailbox; maildir about 5.
#
# What it does, per mailbox: install it as /var/mail/$BENCH_USER (owner the
# user, mode 0600), or as ~$BENCH_USER/Maildir; then for each server: start
# it on 127.0.0.1; measure the first open (several times, each after the
# first-open hook, which reinstalls the mailbox and removes the server's
# index); for mbox and the servers in HISTORY_SERVERS, the first open after
# each history below; reopens, UIDL, RETR one at a time and 8 in flight, and
# a session deleting every other message (QUIT to +OK); stop the server and
# reinstall the mailbox. At the end the user's own mailbox, if it had one, is
# put back. The mailbox is in the page cache for every server (it was just
# copied): the figures are warm-cache ones. Beside each time, the server's
# CPU time: user and system time of all its processes (the daemon and every
# session process; socat and the popa3d processes it spawns; Dovecot's master
# and its services), from /proc/PID/stat, per operation.
#
# The mbox histories (each: set-up, an untimed session, a change, then the
# timed open):
#   rewritten: the mailbox, then rewritten in place with "Status: RO" added
#              to every message, as mutt writes it back after reading
#   replaced:  the mailbox, then the same bytes as a new file (a restore)
#   appended:  the first half of the messages, then the second half appended
# For popa3d, which keeps nothing, these differ only in the bytes it opens.
#
# Environment (defaults): BENCH_USER (popa3dbench), BENCH_PASS (benchpass1),
# PEERS (bench/peers.sh, see above), PEERS_STATE ($WORK/peers), PORT_BASE
# (11130: ours, +1 popa3d, +2 Dovecot), WORK (/var/tmp/popa3d-mailbox-bench),
# SEED (1), FIRST_OPENS (3: first opens per history, each after its hook; the
# median is reported), REOPENS (5), UIDLS (3), RETR_CAP (10s: each RETR pass
# stops sending commands after this long, and the table says so; popa3d
# 1.0.3 stalls about 40 ms on every message, its last write waiting out the
# client's delayed ACK under Nagle, so all of the 200,000 messages would take
# hours), SERVERS ("ours popa3d dovecot"; maildir: "ours dovecot"),
# HISTORY_SERVERS ("ours popa3d"), SIZES (the mailboxes of the mode, as
# COUNT:SHAPE, e.g. "100000:small").
set -euo pipefail
mode=${1:-quick}
case $mode in
quick) sizes="10000:mixed" ;;
full) sizes="10000:mixed 100000:small 200000:mixed" ;;
maildir) sizes="10000:mixed 100000:small" ;;
*) sed -n '2,/^set /{/^set /d;p}' "$0"; exit 2 ;;
esac
sizes=${SIZES:-$sizes}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
PEERS=${PEERS:-$repo/bench/peers.sh}
user=${BENCH_USER:-popa3dbench} pass=${BENCH_PASS:-benchpass1}
port=${PORT_BASE:-11130}
WORK=${WORK:-/var/tmp/popa3d-mailbox-bench}
SEED=${SEED:-1} FIRST_OPENS=${FIRST_OPENS:-3} REOPENS=${REOPENS:-5} UIDLS=${UIDLS:-3} RETR_CAP=${RETR_CAP:-10s}
if [ "$mode" = maildir ]; then SERVERS=${SERVERS:-ours dovecot}; else SERVERS=${SERVERS:-ours popa3d dovecot}; fi
HISTORY_SERVERS=${HISTORY_SERVERS:-ours popa3d}
# The peers keep their state apart from other users of peers.sh.
export PEERS_STATE=${PEERS_STATE:-$WORK/peers}
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
group=$(id -gn "$user")
install -d -o "$user" -g "$group" -m 0700 "$home"
mbox=/var/mail/$user
maildir=$home/Maildir

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
# rewrite_cmd SRC: rewrites the mailbox in place (same inode) with SRC's
# bytes, as a MUA does; append_cmd SRC appends SRC, as delivery does. Both
# set the mtime an hour back (see install_cmd).
rewrite_cmd() { printf "cat '%s' >'%s' && touch -d '1 hour ago' '%s'" "$1" "$mbox" "$mbox"; }
append_cmd() { printf "cat '%s' >>'%s' && touch -d '1 hour ago' '%s'" "$1" "$mbox" "$mbox"; }
# install_maildir_cmd SRC: a fresh copy of the Maildir SRC as the user's.
install_maildir_cmd() {
	printf "rm -rf '%s' '%s.bench' && cp -a '%s' '%s.bench' && chown -R '%s:%s' '%s.bench' && mv '%s.bench' '%s'" \
		"$maildir" "$maildir" "$1" "$maildir" "$user" "$group" "$maildir" "$maildir" "$maildir"
}
install_mailbox() { sh -c "$(install_cmd "$1")"; }
reinstall() {  # SRC: the mailbox of this mode, afresh
	if [ "$mode" = maildir ]; then sh -c "$(install_maildir_cmd "$1")"; else install_mailbox "$1"; fi
}

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
	local template=/var/mail/%u
	[ "$mode" != maildir ] || template="~/Maildir/"
	cat >"$ours/popa3d.toml" <<-CONF
	listen = ["127.0.0.1:$1"]
	auth = "system"
	mailbox = "$template"
	lock_dir = "$ours/locks"
	chroot = "$ours/empty"
	state_dir = "$ours/state"
	CONF
	"$WORK/bin/popa3d" -D -e -c "$ours/popa3d.toml" 2>>"$ours/log" &
	echo $! >"$ours/pid"
	server_pid=$!
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
# A Maildir's index files (ours and Dovecot's) are the plain files at its
# top; the messages are in cur/.
first_open_ours() {
	if [ "$mode" = maildir ]; then
		echo "rm -rf '$ours/state'/* && find '$maildir' -maxdepth 1 -type f -delete"
	else
		echo "rm -rf '$ours/state'/*"
	fi
}

start_popa3d() { server_pid=$(bash "$PEERS" popa3d "$1"); popa3d_port=$1; }
stop_popa3d() { [ -z "${popa3d_port:-}" ] || bash "$PEERS" stop "popa3d-$popa3d_port"; popa3d_port=; }
first_open_popa3d() { echo ":"; }  # popa3d keeps nothing between sessions

dovecot_kind() { if [ "$mode" = maildir ]; then echo maildir; else echo mbox; fi; }
start_dovecot() { server_pid=$(bash "$PEERS" "dovecot-$(dovecot_kind)" "$1"); dovecot_up=1; }
stop_dovecot() {
	[ -n "${dovecot_up:-}" ] || return 0
	local pid; pid=$(cat "$PEERS_STATE/dovecot-$(dovecot_kind)/pid" 2>/dev/null || true)
	bash "$PEERS" stop "dovecot-$(dovecot_kind)"
	for _ in $(seq 50); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	dovecot_up=
}
# Dovecot keeps its mbox index under ~/mail/.imap (mail_location in peers.sh),
# its Maildir index and dovecot-uidlist at the Maildir's top.
first_open_dovecot() {
	if [ "$mode" = maildir ]; then
		echo "find '$maildir' -maxdepth 1 -type f -delete"
	else
		echo "rm -rf '$home/mail/.imap'"
	fi
}

name_ours=ours
name_popa3d=popa3d-1.0.3
name_dovecot=dovecot-$(dovecot --version | cut -d' ' -f1)

# The user's own mailbox, if any, is put back at the end.
saved=$WORK/saved-mailbox
saved_maildir=$WORK/saved-maildir
if [ "$mode" = maildir ]; then
	if [ -e "$maildir" ] && ! [ -e "$saved_maildir" ]; then mv "$maildir" "$saved_maildir"; fi
elif [ -e "$mbox" ] && ! [ -e "$saved" ]; then
	mv "$mbox" "$saved"
fi
cleanup() {
	stop_ours; stop_popa3d; stop_dovecot
	if [ "$mode" = maildir ]; then
		rm -rf "$maildir" "$maildir.bench"
		if [ -e "$saved_maildir" ]; then mv "$saved_maildir" "$maildir"; fi
	else
		rm -f "$mbox" "/var/mail/.$user.bench"
		if [ -e "$saved" ]; then mv "$saved" "$mbox"; fi
	fi
}
trap cleanup EXIT

results=$WORK/results-$mode.jsonl
: >"$results"
gensum=$(cat "$here/gen.go" "$here/derive.go" "$here/maildir.go" | sha256sum | cut -c1-16)
for spec in $sizes; do
	n=${spec%%:*} shape=${spec#*:}
	src=$WORK/mbox-$n-$shape-seed$SEED
	if [ "$(cat "$src.stamp" 2>/dev/null)" != "$gensum" ]; then
		log "generating $n messages ($shape)"
		rm -rf "$src.maildir"
		"$bench" gen -n "$n" -shape "$shape" -seed "$SEED" -user "$user" -o "$src" >&2
		"$bench" derive -in "$src" -status "$src.status" -head "$src.head" -tail "$src.tail" -at $((n / 2))
		echo "$gensum" >"$src.stamp"
	fi
	label=$((n / 1000))k
	[ "$shape" = mixed ] || label="${label} $shape"
	if [ "$mode" = maildir ]; then
		[ -d "$src.maildir" ] || "$bench" maildir -in "$src" -o "$src.maildir" >&2
		label="Maildir $label"
		install=$(install_maildir_cmd "$src.maildir")
	else
		install=$(install_cmd "$src")
	fi
	sh -c "$install"
	for s in $SERVERS; do
		first=$install
		# A Maildir's files stay as they are until the delete session; only
		# the indexes go (reinstalling 100,000 files would take longer than
		# the figure).
		[ "$mode" != maildir ] || first=:
		case $s in ours) p=$port ;; popa3d) p=$((port + 1)) ;; dovecot) p=$((port + 2)) ;; *) log "unknown server $s"; exit 2 ;; esac
		name_var=name_$s
		log "== $s on $label ($n messages), port $p"
		"start_$s" "$p"
		clear=$("first_open_$s")
		histories=()
		if [ "$mode" != maildir ] && [[ " $HISTORY_SERVERS " == *" $s "* ]]; then
			histories=(
				-history "rewritten|$install && $clear|$(rewrite_cmd "$src.status")"
				-history "replaced|$install && $clear|$install"
				-history "appended|$(install_cmd "$src.head") && $clear|$(append_cmd "$src.tail")"
			)
		fi
		"$bench" measure -addr "127.0.0.1:$p" -user "$user" -pass "$pass" -n "$n" -server-pid "$server_pid" \
			-first-opens "$FIRST_OPENS" -reopens "$REOPENS" -uidls "$UIDLS" -retr-cap "$RETR_CAP" \
			-first-hook "$first && $clear" "${histories[@]}" \
			-server "${!name_var}" -mailbox "$label" -out "$results" || log "($s: errors, see the table)"
		"stop_$s"
		sh -c "$install"
	done
done
if [ "$mode" = maildir ]; then
	what="Maildir (maildir_uidl = dovecot), Dovecot Maildir (~/Maildir); messages as files in cur/ named as Dovecot's LDA names them (S= and W= sizes)"
	nagle=()
else
	what="popa3d-1.0.3 = Debian's under socat (inetd mode), Dovecot mbox (dotlock+fcntl)"
	nagle=(-note "popa3d 1.0.3 sends a multi-line reply as three writes (status line, body, terminator); under Nagle the last one often waits for the client's delayed ACK (about 40 ms), which dominates its RETR figures (and at times its UIDL one).")
fi
"$bench" report -ours "$name_ours" \
	-note "Servers: ours = $(cd "$repo" && git describe --always --dirty) (cmd/popa3d -D, auth = system with privilege separation, sha512-crypt, index cache and journal in state_dir), $what. Same mailbox bytes, same password hash scheme, warm page cache; loopback." \
	-note "Server CPU: user+system time of all the server's processes (from /proc/PID/stat of the daemon, socat or Dovecot's master and their descendants, reaped ones included), per operation; 10 ms ticks, so a figure under about 20 ms is coarse." \
	"${nagle[@]}" \
	-note "Mailboxes: seed $SEED, generator $gensum; login to STAT = USER sent until the STAT reply (after the greeting); UIDL/RETR from the command sent until the last byte." \
	"$results" | tee "$WORK/report-$mode.md"
