# SPDX-License-Identifier: Apache-2.0
# tests/postfix/lib.sh - a throwaway Postfix instance for the tests that
# need a real MTA's DSNs (postfix_dsn.sh, postfix_oobd.sh). Sourced after
# tests/lib.sh.
#
# The instance has its own config, queue and data directories under $TMP
# and listens on loopback only. It takes mail from bounce@bounce.test for
# three recipients: an unknown local user, someone@reject.test (its next
# hop, an smtp-sink, answers 550 5.1.1 to RCPT) and someone@defer.test
# (next hop answers 451 4.3.0; a delay warning follows). Its DSNs go to
# bounce.test, whose next hop the calling test chooses.
#
#   pf_init TAG PROG...   skip (exit 77) unless root and PROGs exist; make
#                         $TMP and the cleanup trap; PF_PIDS lists the
#                         processes the cleanup stops
#   pf_ports N            N distinct free loopback ports, on one line
#   pf_sinks PORT PORT    the two smtp-sink next hops (reject, defer)
#   pf_start SMTPD_PORT SINK_PORT SOFT_PORT BOUNCE_PORT
#                         configure and start Postfix (ok/not_ok lines;
#                         exits the test when it cannot start)
#   pf_inject_three       the three mails, one check line each

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
PF_PIDS='' MASTER_PID=''

pf_skip() { echo "ok - # SKIP $*"; exit 77; }

pf_cleanup() {
	trap '' INT TERM HUP	# a second signal must not cut the cleanup short
	# Interrupted while Postfix was starting: its pid file says who it is.
	[ -z "$MASTER_PID" ] && [ -f "$TMP/queue/pid/master.pid" ] &&
	    MASTER_PID=$(sed -n '1s/[^0-9]//gp' "$TMP/queue/pid/master.pid")
	if [ -n "$MASTER_PID" ]; then
		postfix -c "$TMP/conf" abort >/dev/null 2>&1
		kill "$MASTER_PID" 2>/dev/null
	fi
	for pid in $PF_PIDS; do
		kill "$pid" 2>/dev/null
	done
	# Give them a moment to go; whatever is left then is killed outright.
	i=0
	alive=
	while [ $i -lt 50 ]; do
		alive=
		for pid in $MASTER_PID $PF_PIDS; do
			kill -0 "$pid" 2>/dev/null && alive="$alive $pid"
		done
		[ -z "$alive" ] && break
		sleep 0.1
		i=$((i + 1))
	done
	for pid in $alive; do
		kill -9 "$pid" 2>/dev/null
	done
	for pid in $PF_PIDS; do
		wait "$pid" 2>/dev/null
	done
	rm -rf "$TMP"
}

pf_init() {
	tag=$1
	shift
	[ "$(id -u)" -eq 0 ] || pf_skip "Postfix needs root"
	for prog in postfix postconf smtp-sink swaks timeout "$@"; do
		command -v "$prog" >/dev/null 2>&1 || pf_skip "$prog not installed"
	done
	id postfix >/dev/null 2>&1 || pf_skip "no postfix user"
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/oobd-$tag.XXXXXX") || exit 1
	trap pf_cleanup EXIT
	trap 'exit 1' INT TERM HUP
	# Postfix's processes (running as postfix) must reach their files.
	chmod 755 "$TMP"
}

pf_ports() {
	# Held open together, so they differ.
	"$PY" -c '
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s:
    x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))
' "$1"
}

pf_sinks() {
	# The next hop of reject.test: 550 5.1.1 for every RCPT.
	smtp-sink -u nobody -h sink.test -f RCPT \
	    -B "550 5.1.1 No such user here (test sink)" \
	    "127.0.0.1:$1" 10 >"$TMP/sink.log" 2>&1 &
	PF_PIDS="$PF_PIDS $!"
	# The next hop of defer.test: 451 4.3.0 for every RCPT.
	smtp-sink -u nobody -h soft.test -r RCPT \
	    -b "451 4.3.0 Try again later (test sink)" \
	    "127.0.0.1:$2" 10 >"$TMP/soft.log" 2>&1 &
	PF_PIDS="$PF_PIDS $!"
}

pf_start() {
	mkdir "$TMP/conf" "$TMP/queue" "$TMP/data"
	chown postfix "$TMP/data"
	for f in main.cf master.cf; do
		sed -e "s|@TMP@|$TMP|g" \
		    -e "s|@SMTPD_PORT@|$1|g" \
		    -e "s|@COMMAND_DIR@|$(postconf -dh command_directory)|g" \
		    -e "s|@DAEMON_DIR@|$(postconf -dh daemon_directory)|g" \
		    -e "s|@META_DIR@|$(postconf -dh meta_directory)|g" \
		    -e "s|@SHLIB_DIR@|$(postconf -dh shlib_directory)|g" \
		    "$OOBD_SRCDIR/tests/postfix/$f.in" >"$TMP/conf/$f"
	done
	printf '%s\n' "reject.test smtp:[127.0.0.1]:$2" \
	    "defer.test smtp:[127.0.0.1]:$3" \
	    "bounce.test smtp:[127.0.0.1]:$4" >"$TMP/conf/transport"
	postconf -c "$TMP/conf" -F '*/*/chroot = n'

	if timeout 30 postfix -c "$TMP/conf" start >"$TMP/start.log" 2>&1; then
		ok "postfix instance started"
	else
		not_ok "postfix instance started"
		sed 's/^/  /' "$TMP/start.log"
		[ -f "$TMP/maillog" ] && sed 's/^/  /' "$TMP/maillog"
		finish
		exit
	fi
	MASTER_PID=$(sed -n '1s/[^0-9]//gp' "$TMP/queue/pid/master.pid" \
	    2>/dev/null)
	check "postfix master pid known" yes \
	    "$( [ -n "$MASTER_PID" ] && echo yes)"
	PF_SMTPD_PORT=$1
}

pf_inject() {
	timeout 20 swaks --silent 2 --server 127.0.0.1 --port "$PF_SMTPD_PORT" \
	    --helo client.test --from bounce@bounce.test --to "$1" \
	    --header "Subject: $2" \
	    --body "This message is for $1." >>"$TMP/swaks.log" 2>&1
}

pf_inject_three() {
	for rcpt in nosuchuser@mta.postfix.test someone@reject.test \
	    someone@defer.test; do
		pf_inject "$rcpt" "for $rcpt"
		check "inject mail for $rcpt" 0 $?
	done
}

# pf_forget PID : a process the test has stopped and reaped itself.
pf_forget() {
	rest=
	for pid in $PF_PIDS; do
		[ "$pid" = "$1" ] || rest="$rest $pid"
	done
	PF_PIDS=$rest
}
