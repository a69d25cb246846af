#!/bin/bash
# bench/peers.sh: the reference POP3 servers our benchmarks and the compat
# differential test run beside ours, each on 127.0.0.1 only.
#
# Usage (as root):
#   bench/peers.sh setup
#       Installs Dovecot's POP3 server from apt, without letting the package
#       start it as a system service, plus socat and openssl. Fetches Debian's
#       popa3d 1.0.3 and unpacks it under $POPA3D_ROOT rather than installing
#       it (the package conflicts with dovecot-pop3d), then gives it what its
#       maintainer scripts would: the `popa3d` account, the empty chroot
#       /var/lib/popa3d and /etc/pam.d/popa3d. Safe to run again.
#   bench/peers.sh dovecot-mbox PORT [TLSPORT]
#       Dovecot for system accounts, INBOX /var/mail/USER (dotlock + fcntl),
#       its index under ~/mail; POP3S on TLSPORT if given.
#   bench/peers.sh dovecot-maildir PORT [TLSPORT]
#       The same with ~/Maildir.
#   bench/peers.sh popa3d PORT
#       popa3d 1.0.3 in inetd mode, one process per connection, spawned by
#       socat the way inetd would.
#   bench/peers.sh stop NAME
#       Stops a peer started above; NAME is dovecot-mbox, dovecot-maildir or
#       popa3d-PORT. Waits up to 5 s for the process to exit (says so if it
#       has not), then forgets it.
#
# A start prints the peer's PID once its port accepts connections. All state
# (configurations, logs, PID files, a self-signed certificate) lives under
# $PEERS_STATE (default /tmp/popa3d-peers), one directory per peer, named as
# `stop` takes it; the unpacked popa3d lives under $POPA3D_ROOT (default
# $PEERS_STATE/popa3d-pkg).

set -euo pipefail

state=${PEERS_STATE:-/tmp/popa3d-peers}
pkg_root=${POPA3D_ROOT:-$state/popa3d-pkg}
legacy=$pkg_root/usr/sbin/popa3d

usage() { sed -n '4,/^$/{/^$/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }
die() { echo "peers.sh: $*" >&2; exit 1; }

check_port() {
	if ! [[ $1 =~ ^[0-9]{1,5}$ ]] || ((10#$1 > 65535)); then
		die "not a port number: $1"
	fi
}

# answers PORT: whether something on 127.0.0.1 takes a connection on PORT.
answers() {
	{ : <>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null
}

# port_free PORT: fails if something on 127.0.0.1 already answers on PORT (the
# readiness check below could not tell it from the peer).
port_free() {
	[ "$1" -ne 0 ] || return 0
	if answers "$1"; then
		die "127.0.0.1:$1 is already in use"
	fi
}

# alive PID NAME: whether PID is still a process whose command is NAME (a PID
# file can outlive its process, and the number can be reused).
alive() {
	[ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

# refuse_if_running DIR COMM: one instance per state directory.
refuse_if_running() {
	local pid
	[ -s "$1/pid" ] || return 0
	pid=$(cat "$1/pid")
	if alive "$pid" "$2"; then
		die "$(basename "$1") already runs as PID $pid; stop it first"
	fi
	rm -f "$1/pid"
}

# await PORT PID LOG...: waits (up to 10 s) until 127.0.0.1:PORT takes a
# connection, then prints PID; fails early, showing the LOGs, if PID dies first.
# On failure the caller stops PID, if it is still there, and forgets it.
# (PID is our own child, just started: until nohup has exec'd the server its
# command name is not yet the server's, so only its existence is checked.)
await() {
	local port=$1 pid=$2 i log
	shift 2
	for ((i = 0; i < 100; i++)); do
		if answers "$port"; then
			echo "$pid"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "peers.sh: PID $pid exited before port $port opened" >&2
			for log; do
				[ -s "$log" ] && echo "--- last of $log:" >&2 && tail -n 20 "$log" >&2
			done
			return 1
		fi
		sleep 0.1
	done
	echo "peers.sh: port $port still closed after 10 s; see $*" >&2
	return 1
}

# abandon PID DIR: after a failed start.
abandon() {
	kill -TERM "$1" 2>/dev/null || true
	rm -f "$2/pid"
	exit 1
}

# A self-signed certificate for Dovecot's TLS, made once.
certificate() {
	local tls=$state/tls
	[ -s "$tls/cert.pem" ] && [ -s "$tls/key.pem" ] && return 0
	install -d -m 0755 "$tls"
	(umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
		-subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
		-keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null)
}

do_setup() {
	[ "$(id -u)" -eq 0 ] || die "setup must run as root"
	export DEBIAN_FRONTEND=noninteractive

	# Debian's maintainer scripts start a daemon through invoke-rc.d unless
	# policy-rc.d says no (101); say no for this install, unless the machine
	# already has a policy of its own.
	local policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# bench/peers.sh setup: no service starts\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	apt-get update -qq
	apt-get install -y -qq dovecot-pop3d socat openssl >/dev/null
	if [ -n "$(trap -p EXIT)" ]; then
		rm -f "$policy"
		trap - EXIT
	fi

	if [ ! -x "$legacy" ]; then
		local fetch deb
		fetch=$(mktemp -d)
		# apt downloads as the _apt user where it can.
		if id _apt >/dev/null 2>&1; then chown _apt "$fetch"; fi
		(cd "$fetch" && apt-get download -qq popa3d)
		deb=$(echo "$fetch"/popa3d_*.deb)
		case $(dpkg-deb -f "$deb" Version) in
		1.0.3-*) ;;
		*) echo "peers.sh: warning: apt offers popa3d $(dpkg-deb -f "$deb" Version), not 1.0.3" >&2 ;;
		esac
		mkdir -p "$pkg_root"
		dpkg-deb -x "$deb" "$pkg_root"
		rm -rf "$fetch"
	fi

	# What popa3d's postinst would have done: its unprivileged account, and the
	# empty directory it chroots into, owned by root.
	getent group popa3d >/dev/null || groupadd --system popa3d
	getent passwd popa3d >/dev/null ||
		useradd --system --gid popa3d --home-dir /var/lib/popa3d --no-create-home \
			--shell /usr/sbin/nologin popa3d
	install -d -o root -g root -m 0755 /var/lib/popa3d
	# Its PAM service, from the package itself.
	[ -e /etc/pam.d/popa3d ] || install -m 0644 "$pkg_root/etc/pam.d/popa3d" /etc/pam.d/popa3d

	echo "peers ready: Dovecot $(dovecot --version | cut -d' ' -f1); popa3d 1.0.3 at $legacy"
}

# dovecot_conf KIND PORT TLSPORT DIR: a self-contained configuration (none of
# /etc/dovecot is read) for one instance.
dovecot_conf() {
	local kind=$1 port=$2 tlsport=$3 dir=$4 location
	if [ "$kind" = mbox ]; then
		location='mbox:~/mail:INBOX=/var/mail/%u'
	else
		location='maildir:~/Maildir'
	fi
	cat <<EOF
# Written by bench/peers.sh for the dovecot-$kind peer.
instance_name = peer-$kind
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log

protocols = pop3
listen = 127.0.0.1

# System accounts, plaintext logins allowed over loopback.
passdb {
  driver = shadow
}
userdb {
  driver = passwd
}
first_valid_uid = 1000
disable_plaintext_auth = no
auth_mechanisms = plain login

mail_location = $location
# /var/mail is root:mail 2775: dotlocks there need the mail group.
mail_privileged_group = mail
mbox_read_locks = fcntl
mbox_write_locks = dotlock fcntl
pop3_uidl_format = %08Xu%08Xv
# Benchmarks open many sessions from one address for one user.
mail_max_userip_connections = 10000

ssl = yes
ssl_cert = <$state/tls/cert.pem
ssl_key = <$state/tls/key.pem
ssl_min_protocol = TLSv1.2

# Port 0 leaves a listener closed.
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $port
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $tlsport
    ssl = yes
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = 0
  }
}
EOF
}

start_dovecot() {  # KIND PORT [TLSPORT]
	local kind=$1 port=$2 tlsport=${3:-0} dir=$state/dovecot-$1
	check_port "$port"
	check_port "$tlsport"
	command -v dovecot >/dev/null || die "Dovecot is not installed; run: $0 setup"
	refuse_if_running "$dir" dovecot
	port_free "$port"
	port_free "$tlsport"
	certificate
	install -d -m 0755 "$state" "$dir"
	mkdir -p "$dir/run" "$dir/state"
	dovecot_conf "$kind" "$port" "$tlsport" "$dir" >"$dir/dovecot.conf"
	nohup dovecot -F -c "$dir/dovecot.conf" >>"$dir/stdout.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$dir/pid"
	await "$port" "$pid" "$dir/stdout.log" "$dir/dovecot.log" || abandon "$pid" "$dir"
}

start_popa3d() {  # PORT
	local port=$1 dir=$state/popa3d-$1
	check_port "$port"
	[ -x "$legacy" ] || die "popa3d is not unpacked at $legacy; run: $0 setup"
	command -v socat >/dev/null || die "socat is not installed; run: $0 setup"
	refuse_if_running "$dir" socat
	port_free "$port"
	install -d -m 0755 "$state" "$dir"
	# fork: a child per connection; nofork: the child becomes popa3d, its
	# standard input and output the connection, as under inetd's nowait.
	nohup socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,backlog=512" \
		"EXEC:$legacy,nofork" >>"$dir/socat.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$dir/pid"
	await "$port" "$pid" "$dir/socat.log" || abandon "$pid" "$dir"
}

stop_peer() {  # NAME
	local name=$1 comm pid i
	if [[ $name =~ ^dovecot-(mbox|maildir)$ ]]; then
		comm=dovecot
	elif [[ $name =~ ^popa3d-[0-9]+$ ]]; then
		comm=socat
	else
		die "no such peer: $name (dovecot-mbox, dovecot-maildir or popa3d-PORT)"
	fi
	local pidfile=$state/$name/pid
	if [ ! -s "$pidfile" ]; then
		echo "peers.sh: $name is not running" >&2
		return 0
	fi
	pid=$(cat "$pidfile")
	if alive "$pid" "$comm"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			alive "$pid" "$comm" || break
			sleep 0.1
		done
		if alive "$pid" "$comm"; then
			echo "peers.sh: $name (PID $pid) has not exited after 5 s" >&2
		fi
	fi
	rm -f "$pidfile"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
setup) [ $# -eq 0 ] || usage; do_setup ;;
dovecot-mbox | dovecot-maildir)
	if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
	start_dovecot "${cmd#dovecot-}" "$@"
	;;
popa3d) [ $# -eq 1 ] || usage; start_popa3d "$1" ;;
stop) [ $# -eq 1 ] || usage; stop_peer "$1" ;;
*) usage ;;
esac
