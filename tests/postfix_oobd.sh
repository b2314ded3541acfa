#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# postfix_oobd.sh - a real MTA delivers its genuine DSNs to the real oobd.
#
# A throwaway Postfix instance (own config, queue and data directories in a
# temp dir; loopback only) takes mail from bounce@bounce.test for an unknown
# local user, for a user whose next hop (smtp-sink) answers 550 5.1.1 to
# RCPT, and for one whose next hop answers 451 4.3.0 (a delay warning
# follows). The transport map sends bounce.test to oobd, running with zstd
# logs and fsync on, with bounce.test as a LogThenDrop domain. Postfix's
# log must show oobd's 250 for each DSN; the records read back from the
# segments with zstdcat are compared field by field: a Reception and one OOB
# record for each failure, a Reception alone for the delay warning.
#
# Needs root (Postfix's master), postfix, smtp-sink, swaks, zstdcat and
# python3. Skips (exit 77) when they are missing.
set -u

: "${OOBD_BIN:?}" "${OOBD_SRCDIR:?}"
. "$OOBD_SRCDIR/tests/lib.sh"

. "$OOBD_SRCDIR/tests/postfix/lib.sh"
WAIT=30		# seconds to wait for the DSNs

pf_init postfix-oobd zstdcat
PORTS=$(pf_ports 4) || exit 1
set -- $PORTS
SMTPD_PORT=$1 SINK_PORT=$2 SOFT_PORT=$3 OOBD_PORT=$4

# oobd for bounce.test.
cat >"$TMP/domains.toml" <<'EOF'
["bounce.test"]
log_oob = "LogThenDrop"
log_arf = "LogThenDrop"
EOF
cat >"$TMP/oobd.toml" <<EOF
[listener]
listen = ["127.0.0.1:$OOBD_PORT"]
hostname = "mx.bounce.test"
listener_domains = ["$TMP/domains.toml"]
state_dir = "$TMP/state"
[logs]
log_dir = "$TMP/log"
compression = "zstd"
fsync = true
headers = ["Subject"]
[admin]
listen = ""
[bounce_classifier]
files = ["$OOBD_SRCDIR/conf/bounce_rules.toml"]
EOF
"$OOBD_BIN" -c "$TMP/oobd.toml" 2>"$TMP/oobd.err" &
OOBD_PID=$!
PF_PIDS="$PF_PIDS $OOBD_PID"
pf_sinks "$SINK_PORT" "$SOFT_PORT"

# oobd answers once it listens.
i=0
while [ $i -lt 200 ] && kill -0 "$OOBD_PID" 2>/dev/null &&
    ! "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $OOBD_PORT), 1).close()" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
if ! kill -0 "$OOBD_PID" 2>/dev/null; then
	not_ok "oobd started"
	sed 's/^/#   /' "$TMP/oobd.err"
	finish
	exit
fi
ok "oobd started"

pf_start "$SMTPD_PORT" "$SINK_PORT" "$SOFT_PORT" "$OOBD_PORT"
pf_inject_three

# delivered : how many DSNs Postfix has handed to oobd with a 250.
delivered() {
	grep -c "to=<bounce@bounce.test>, relay=127.0.0.1\[127.0.0.1\]:$OOBD_PORT.* status=sent (250 2.0.0 OK ids=" \
	    "$TMP/maillog" 2>/dev/null || echo 0
}
i=0
while [ "$(delivered)" -lt 3 ] && [ $i -lt $((WAIT * 10)) ]; do
	sleep 0.1
	i=$((i + 1))
done
check "three DSNs delivered to oobd with 250 within ${WAIT}s" 3 "$(delivered)"
if [ "$(delivered)" -lt 3 ]; then
	echo "# maillog:"
	sed 's/^/#   /' "$TMP/maillog" 2>/dev/null
	echo "# oobd:"
	sed 's/^/#   /' "$TMP/oobd.err"
fi
# The ids oobd gave, as Postfix logged its replies.
sed -n "s/.*to=<bounce@bounce.test>, relay=127.0.0.1\[127.0.0.1\]:$OOBD_PORT.* status=sent (250 2.0.0 OK ids=\([0-9a-f]*\)).*/\1/p" \
    "$TMP/maillog" >"$TMP/acked-ids"

# Stop oobd: its segments are then complete, read-only zstd files.
kill -TERM "$OOBD_PID"
wait "$OOBD_PID"
check "oobd exit status after SIGTERM" 0 $?
pf_forget "$OOBD_PID"
n=0 ro=0
for f in "$TMP"/log/*; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	[ "$(stat -c %a "$f")" = 444 ] && ro=$((ro + 1))
done
check "one log segment, read-only (0444)" "1 1" "$n $ro"
zstdcat "$TMP"/log/* >"$TMP/records.jsonl" 2>"$TMP/zstdcat.err"
check "zstdcat reads the segments" 0 $?
check "zstdcat: no complaint" "" "$(cat "$TMP/zstdcat.err")"

result=$("$PY" - "$TMP/records.jsonl" "$TMP/acked-ids" "$OOBD_SRCDIR/tests" <<'EOF'
import json, re, sys
path, acked_path, testdir = sys.argv[1:]
recs = [json.loads(l) for l in open(path, encoding="utf-8")]
acked = open(acked_path).read().split()
out = []
def check(name, exp, got):
    out.append(("ok - " if exp == got else "not ok - ") + name)
    if exp != got:
        out.append("  expected: %r\n  actual:   %r" % (exp, got))

check("records: 3 Reception, 2 OOB, nothing else",
      {"Reception": 3, "OOB": 2},
      {t: sum(r["type"] == t for r in recs) for t in set(r["type"] for r in recs)})
check("every acknowledged id has its Reception", sorted(acked),
      sorted(r["id"] for r in recs if r["type"] == "Reception"))
# Postfix's subjects tell the failures from the delay warning.
FAILED = "Undelivered Mail Returned to Sender"
DELAYED = "Delayed Mail (still being retried)"
subjects = {r["id"]: r["headers"].get("Subject") for r in recs
            if r["type"] == "Reception"}
check("Reception subjects: two failures, one delay warning",
      [DELAYED, FAILED, FAILED], sorted(subjects.values()))
check("the delay warning has no OOB record", [],
      [r["id"] for r in recs if r["type"] == "OOB"
       and subjects.get(r["id"]) != FAILED])
UUID4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$"
for rec in [r for r in recs if r["type"] == "Reception"]:
    fields = {k: rec.get(k) for k in ("sender", "recipient", "queue", "site",
              "response", "peer_address", "num_attempts", "egress_pool",
              "egress_source", "source_address", "feedback_report", "meta",
              "headers", "delivery_protocol", "reception_protocol")}
    check("Reception %s: fields" % rec["id"], {
        "sender": "", "recipient": "bounce@bounce.test", "queue": "bounce.test",
        "site": "", "response": {"code": 250, "enhanced_code": None,
                                 "content": "", "command": None},
        "peer_address": {"name": "mta.postfix.test", "addr": "127.0.0.1"},
        "num_attempts": 0, "egress_pool": None, "egress_source": None,
        "source_address": None, "feedback_report": None, "meta": {},
        "headers": {"Subject": subjects[rec["id"]]},
        "delivery_protocol": None, "reception_protocol": "ESMTP"}, fields)
    check("Reception %s: session id and times" % rec["id"], (True, True),
          (bool(re.match(UUID4, rec["session_id"])),
           rec["timestamp"] == rec["created"]))
# Each failed recipient's OOB record, by the recipient Postfix reported.
expected = {
    # local(8): "X-Postfix; unknown user": no SMTP diagnostic, so 550 and
    # no content (KumoMTA's mapping).
    "nosuchuser@mta.postfix.test": (550, (5, 1, 1), "", "InvalidRecipient",
                                    None, "X-Postfix"),
    # smtp(8) relays the next hop's reply.
    "someone@reject.test": (550, (5, 1, 1),
                            "5.1.1 No such user here (test sink)",
                            "InvalidRecipient", "127.0.0.1", "smtp"),
}
oobs = {r["recipient"]: r for r in recs if r["type"] == "OOB"}
check("OOB recipients", sorted(expected), sorted(oobs))
for rcpt, (code, (c, s, d), content, cls, mta, dtype) in expected.items():
    oob = oobs.get(rcpt)
    if oob is None:
        continue
    rec = [r for r in recs if r["type"] == "Reception" and r["id"] == oob["id"]]
    check("%s: OOB id is a Reception's id" % rcpt, 1, len(rec))
    rec = rec[0] if rec else {}
    got = {k: oob.get(k) for k in ("sender", "recipient", "queue", "site",
           "size", "response", "peer_address", "num_attempts",
           "bounce_classification", "egress_pool", "egress_source",
           "source_address", "feedback_report", "meta", "headers",
           "delivery_protocol", "reception_protocol", "nodeid",
           "session_id", "created", "created_time")}
    check("%s: OOB fields" % rcpt, {
        "sender": "bounce@bounce.test", "recipient": rcpt,
        "queue": "bounce.test", "site": "", "size": 0,
        "response": {"code": code,
                     "enhanced_code": {"class": c, "subject": s, "detail": d},
                     "content": content, "command": None},
        "peer_address": {"name": "mta.postfix.test", "addr": "127.0.0.1"},
        "num_attempts": 0, "bounce_classification": cls,
        "egress_pool": None, "egress_source": None, "source_address": None,
        "feedback_report": None, "meta": {}, "headers": {"Subject": FAILED},
        "delivery_protocol": None, "reception_protocol": "ESMTP",
        "nodeid": rec.get("nodeid"), "session_id": rec.get("session_id"),
        "created": rec.get("created"),
        "created_time": rec.get("created_time")}, got)
    detail = dict(oob.get("oob_detail") or {})
    returned = detail.pop("returned_message", None)
    check("%s: oob_detail" % rcpt, {
        "decoder": "rfc3464", "action": "failed", "status_comment": None,
        "remote_mta": mta, "diagnostic_type": dtype, "trace": None,
        "reason": "userunknown", "hard_bounce": True}, detail)
    # The returned message's headers, as swaks wrote them.
    mid = (returned or {}).get("message_id") or ""
    check("%s: oob_detail.returned_message" % rcpt, {
        "message_id": True, "subject": "for " + rcpt,
        "from": "bounce@bounce.test", "to": rcpt},
        dict(returned or {}, message_id=bool(re.match(r"^<[^<>@ ]+@[^<> ]+>$",
                                                       mid))))
    check("%s: the failure's time is Postfix's Arrival/Last-Attempt time, "
          "at or before the reception" % rcpt, True,
          oob["timestamp"] <= rec.get("timestamp", 0))
    check("%s: key order" % rcpt, list(rec.keys()) + ["oob_detail"],
          list(oob.keys()))
print("\n".join(out))
EOF
)
echo "$result"
OOBD_PASSED=$((OOBD_PASSED + $(echo "$result" | grep -c '^ok - ')))
OOBD_FAILED=$((OOBD_FAILED + $(echo "$result" | grep -c '^not ok - ')))
check "record checks ran" yes "$(echo "$result" | grep -q '^ok - OOB recipients' && echo yes)"

finish
