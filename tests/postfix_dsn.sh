#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# postfix_dsn.sh - real DSNs from a real MTA, captured from the wire.
#
# A throwaway Postfix instance (own config, queue and data directories in a
# temp dir; loopback only) takes mail from bounce@bounce.test for an unknown
# local user, for a user whose next hop (smtp-sink) answers 550 5.1.1 to
# RCPT, and for one whose next hop answers 451 4.3.0 (a delay warning
# follows). Postfix's DSNs go to bounce.test, which the transport map sends
# to tests/smtp_capture.py; oobd parse must turn each captured DSN into a
# Reception record and one OOB record with the right recipient and codes
# (the delayed one only with --all).
#
# OOBD_POSTFIX_KEEP=DIR keeps the captured DSNs for a look.
# Needs root (Postfix's master), postfix, smtp-sink, swaks and python3.
# Skips (exit 77) when they are missing.
set -u

: "${OOBD_BIN:?}" "${OOBD_SRCDIR:?}"
. "$OOBD_SRCDIR/tests/lib.sh"

. "$OOBD_SRCDIR/tests/postfix/lib.sh"
WAIT=30		# seconds to wait for the DSNs

pf_init postfix
# The capturing server for bounce.test: it picks its own port.
mkdir "$TMP/captured"
"$PY" "$OOBD_SRCDIR/tests/smtp_capture.py" "$TMP/captured" "$TMP/capture.port" 90 &
PF_PIDS="$PF_PIDS $!"
PORTS=$(pf_ports 3) || exit 1
set -- $PORTS
SMTPD_PORT=$1 SINK_PORT=$2 SOFT_PORT=$3
pf_sinks "$SINK_PORT" "$SOFT_PORT"

i=0
while [ ! -s "$TMP/capture.port" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -s "$TMP/capture.port" ] || { not_ok "capture server started"; finish; exit; }
CAPTURE_PORT=$(cat "$TMP/capture.port")
pf_start "$SMTPD_PORT" "$SINK_PORT" "$SOFT_PORT" "$CAPTURE_PORT"

# The master answers on its port as soon as it is up.
# ncaptured : how many DSNs the capture server has written.
ncaptured() {
	n=0
	for f in "$TMP"/captured/msg-*.eml; do
		[ -f "$f" ] && n=$((n + 1))
	done
	echo $n
}

pf_inject_three

i=0
while [ "$(ncaptured)" -lt 3 ] &&
    [ $i -lt $((WAIT * 10)) ]; do
	sleep 0.1
	i=$((i + 1))
done
check "three DSNs captured within ${WAIT}s" 3 \
    "$(ncaptured)"
if [ "$(ncaptured)" -lt 3 ]; then
	echo "# swaks:"
	sed 's/^/#   /' "$TMP/swaks.log"
	echo "# maillog:"
	sed 's/^/#   /' "$TMP/maillog" 2>/dev/null
fi

# OOBD_POSTFIX_KEEP=DIR keeps the captured DSNs and the maillog there.
if [ -n "${OOBD_POSTFIX_KEEP:-}" ]; then
	mkdir -p "$OOBD_POSTFIX_KEEP" &&
	    cp "$TMP"/captured/* "$TMP/maillog" "$OOBD_POSTFIX_KEEP/" 2>/dev/null
fi

# Which capture is which: by the recipient of the returned message.
for f in "$TMP"/captured/msg-*.eml; do
	[ -f "$f" ] || continue
	if grep -q 'nosuchuser@mta.postfix.test' "$f"; then
		cp "$f" "$TMP/dsn-local.eml"
		cp "${f%.eml}.env" "$TMP/dsn-local.env"
	elif grep -q 'someone@reject.test' "$f"; then
		cp "$f" "$TMP/dsn-remote.eml"
		cp "${f%.eml}.env" "$TMP/dsn-remote.env"
	elif grep -q 'someone@defer.test' "$f"; then
		cp "$f" "$TMP/dsn-delayed.eml"
		cp "${f%.eml}.env" "$TMP/dsn-delayed.env"
	fi
done

# check_dsn NAME FILE RECIPIENT CODE CLASS.SUBJECT.DETAIL CONTENT ACTION [OPTION]
check_dsn() {
	name=$1 file=$2 action=$7 opt=${8:-}
	if [ ! -f "$file" ]; then
		not_ok "$name: DSN captured"
		return
	fi
	check "$name: envelope is MAIL FROM <> to bounce@bounce.test" \
	    "MAIL FROM |RCPT TO bounce@bounce.test|" \
	    "$(tr '\n' '|' <"${file%.eml}.env")"
	check "$name: a multipart/report DSN" yes \
	    "$(grep -qi '^Content-Type: multipart/report; report-type=delivery-status' "$file" && echo yes)"
	timeout 20 "$OOBD_BIN" parse $opt "$file" >"$file.out" 2>"$file.err"
	check "$name: oobd parse exit status" 0 $?
	check "$name: nothing on stderr" "" "$(cat "$file.err")"
	result=$("$PY" - "$file.out" "$3" "$4" "$5" "$6" "$action" <<'EOF'
import json, sys
path, rcpt, code, status, content, action = sys.argv[1:]
recs = [json.loads(l) for l in open(path, encoding="utf-8")]
problems = []
def want(what, exp, got):
    if exp != got:
        problems.append("%s: expected %r, got %r" % (what, exp, got))
want("record types", ["Reception", "OOB"], [r.get("type") for r in recs])
if len(recs) == 2:
    r = recs[1]
    c, s, d = (int(x) for x in status.split("."))
    want("recipient", rcpt, r.get("recipient"))
    want("sender", "bounce@bounce.test", r.get("sender"))
    want("queue", "bounce.test", r.get("queue"))
    resp = r.get("response") or {}
    want("response.code", int(code), resp.get("code"))
    want("response.enhanced_code", {"class": c, "subject": s, "detail": d},
         resp.get("enhanced_code"))
    want("response.content", content, resp.get("content"))
    want("response.command", None, resp.get("command"))
    want("peer_address.name", "mta.postfix.test",
         (r.get("peer_address") or {}).get("name"))
    want("oob_detail.action", action, (r.get("oob_detail") or {}).get("action"))
    # The DSN came with a null envelope sender and no Return-Path.
    want("Reception sender", "", recs[0].get("sender"))
    want("Reception recipient", "bounce@bounce.test", recs[0].get("recipient"))
print("; ".join(problems) or "ok")
EOF
)
	check "$name: records" ok "$result"
	[ "$result" = ok ] || sed 's/^/#   /' "$file.out"
}

# Postfix's local(8) reports "X-Postfix; unknown user": not an smtp
# diagnostic, so the code is 550 and the content empty (KumoMTA's mapping).
check_dsn "unknown local user" "$TMP/dsn-local.eml" \
    nosuchuser@mta.postfix.test 550 5.1.1 "" failed
# smtp(8) relays the next hop's reply: "smtp; 550 5.1.1 No such user ...".
check_dsn "550 from the next hop" "$TMP/dsn-remote.eml" \
    someone@reject.test 550 5.1.1 "5.1.1 No such user here (test sink)" failed
# The delay warning for the 451: an OOB record only with --all.
check_dsn "451 from the next hop, --all" "$TMP/dsn-delayed.eml" \
    someone@defer.test 451 4.3.0 "4.3.0 Try again later (test sink)" \
    delayed --all
if [ -f "$TMP/dsn-delayed.eml" ]; then
	check "451 from the next hop: no OOB record without --all" Reception \
	    "$(timeout 20 "$OOBD_BIN" parse "$TMP/dsn-delayed.eml" | "$PY" -c '
import json, sys
print(" ".join(json.loads(l)["type"] for l in sys.stdin))')"
fi

# The same captured DSNs through standard input and --recipient.
if [ -f "$TMP/dsn-remote.eml" ]; then
	out=$(timeout 20 "$OOBD_BIN" parse --recipient other@bounce.test - \
	    <"$TMP/dsn-remote.eml" | "$PY" -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin]
print(" ".join("%s:%s>%s" % (r["type"], r["sender"], r["recipient"]) for r in recs))')
	check "stdin and --recipient: the bounce address" \
	    "Reception:>other@bounce.test OOB:other@bounce.test>someone@reject.test" "$out"
fi

finish
