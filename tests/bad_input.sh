#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bad_input.sh - hostile and broken inputs to `oobd parse`: each one gives a
# defined result (records on stdout, or a one-line error naming the input on
# stderr), exit status 0 or 1, never a signal or a hang.
set -u

: "${OOBD_BIN:?}" "${OOBD_SRCDIR:?}" "${OOBD_SHARED:?}"
. "$OOBD_SRCDIR/tests/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/oobd-bad-input.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM HUP

# Generate the inputs: TMP/in/NAME.eml.
mkdir "$TMP/in"
"$PY" - "$TMP/in" <<'EOF' || { echo "not ok - inputs generated"; exit 1; }
import base64, json, os, sys
out = sys.argv[1]

def put(name, data):
    with open(os.path.join(out, name + ".eml"), "wb") as f:
        f.write(data)

def dsn(returned, status=b"5.1.1", diag=b"smtp; 550 5.1.1 user unknown",
        extra=b""):
    """A Postfix-style DSN for nobody@example.com with `returned` as its
    message/rfc822 part."""
    return (b"From: MAILER-DAEMON@mx.example.com\r\n"
            b"To: bounce@bounce.example\r\n"
            b"Subject: Undelivered Mail Returned to Sender\r\n" + extra +
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status;"
            b" boundary=\"BOUND\"\r\n\r\n"
            b"--BOUND\r\nContent-Type: text/plain\r\n\r\nIt bounced.\r\n\r\n"
            b"--BOUND\r\nContent-Type: message/delivery-status\r\n\r\n"
            b"Reporting-MTA: dns; mx.example.com\r\n\r\n"
            b"Final-Recipient: rfc822; nobody@example.com\r\n"
            b"Action: failed\r\nStatus: " + status + b"\r\n"
            b"Diagnostic-Code: " + diag + b"\r\n\r\n"
            b"--BOUND\r\nContent-Type: message/rfc822\r\n\r\n" + returned +
            b"\r\n--BOUND--\r\n")

original = (b"From: sender@bounce.example\r\nTo: nobody@example.com\r\n"
            b"Subject: hello\r\n%s\r\nbody\r\n")

def kumoref(obj):
    return base64.b64encode(json.dumps(obj, separators=(",", ":"))
                            .encode()).decode()

# Controls: a plain DSN, and one whose returned message has a valid trace.
put("dsn-plain", dsn(original % b"X-Other: 1"))
put("kumoref-valid", dsn(original % (
    b"X-KumoRef: " + kumoref({"_@_": "\\_/",
                              "recipient": "nobody@example.com"}).encode())))

put("empty", b"")
put("only-newlines", b"\r\n\r\n\r\n")
put("binary", bytes(range(256)) * 64)
put("nul-bytes", b"Subject: a\x00b\r\nTo: x@y.example\r\n\r\nbody\x00\x00\r\n")
put("headers-only-unterminated", b"Subject: no body and no newline")
put("no-colon-header", b"this is not a header line\r\n\r\nbody\r\n")

# Truncated MIME: cut in the middle of the delivery-status part, and a
# multipart whose boundary never comes.
full = dsn(original % b"X-Other: 1")
put("truncated-in-status", full[:full.index(b"Action: failed") + 8])
put("truncated-no-boundary",
    b"Content-Type: multipart/report; report-type=delivery-status;"
    b" boundary=\"NEVER\"\r\n\r\npreamble only\r\n")
put("truncated-no-closing", full[:full.rindex(b"--BOUND--")])

# A 10 MB header line, and 10 MB of folded continuation lines.
put("header-10mb", b"To: x@y.example\r\nSubject: " + b"a" * (10 << 20) +
    b"\r\n\r\nbody\r\n")
put("folded-10mb", b"To: x@y.example\r\nX-Long: start\r\n" +
    b" continued\r\n" * ((10 << 20) // 11) + b"\r\nbody\r\n")

# 500 nested multiparts, with the DSN at the bottom.
depth = 500
head = b"To: x@y.example\r\nMIME-Version: 1.0\r\n"
body = b""
for i in range(depth):
    body += (b"Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n"
             b"--b%d\r\n" % (i, i))
body += b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
for i in reversed(range(depth)):
    body += b"\r\n--b%d--\r\n" % i
put("nested-500", head + body)
# The same nesting inside a DSN's returned message.
put("nested-500-in-dsn", dsn(b"Subject: nested\r\n" + body))

# X-KumoRef in the returned message: invalid base64, valid base64 of
# invalid JSON, JSON without the marker, and a wrong marker.
put("kumoref-bad-base64", dsn(original % b"X-KumoRef: !!!not*base64%%%="))
put("kumoref-bad-padding", dsn(original % b"X-KumoRef: eyJfQF8iOiJcXF8vIn0"))
put("kumoref-bad-json", dsn(original % (
    b"X-KumoRef: " + base64.b64encode(b'{"_@_":"\\\\_/","recipient":'))))
put("kumoref-not-object", dsn(original % (
    b"X-KumoRef: " + base64.b64encode(b'["_@_"]'))))
put("kumoref-no-marker", dsn(original % (
    b"X-KumoRef: " + kumoref({"recipient": "nobody@example.com"}).encode())))
put("kumoref-binary", dsn(original % (
    b"X-KumoRef: " + base64.b64encode(bytes(range(256))))))

# Bytes that are not UTF-8, in headers, the status fields and the body.
latin1 = "Müller café".encode("latin-1")
put("non-utf8-headers", b"To: x@y.example\r\nSubject: " + latin1 +
    b"\r\nX-Bad: \xff\xfe\xc3\x28\r\n\r\nbody " + latin1 + b"\r\n")
put("non-utf8-dsn", dsn(original % b"X-Other: 1",
    diag=b"smtp; 550 5.1.1 " + latin1 + b" \xff unknown",
    extra=b"Subject: " + latin1 + b"\r\n"))
put("non-utf8-recipient", dsn(original % b"X-Other: 1").replace(
    b"Final-Recipient: rfc822; nobody@example.com",
    b"Final-Recipient: rfc822; n\xf6body@example.com"))

# A DSN with 10,000 recipients, and one with a run of blank lines.
groups = b"".join(b"Final-Recipient: rfc822; user%d@example.com\r\n"
                  b"Action: failed\r\nStatus: 5.1.1\r\n\r\n" % i
                  for i in range(10000))
put("dsn-10000-rcpts", dsn(b"Subject: x\r\n\r\nx\r\n").replace(
    b"Final-Recipient: rfc822; nobody@example.com\r\nAction: failed\r\n"
    b"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
    b"\r\n", groups))
put("dsn-blank-lines", full.replace(b"mx.example.com\r\n\r\n",
                                    b"mx.example.com\r\n\r\n\r\n\r\n\r\n"))

# Header-count amplification: 19.9 MB of tiny fields (GMime would build
# about a kilobyte for each), and 1,001 fields in each kind of nested
# header block; 10,001 empty MIME parts.
top = b"To: x@y.example\r\nSubject: fields\r\n"
put("fields-4m", top + b"a:b\r\n" * ((19900000 - 40) // 5) + b"\r\nx\r\n")
many = b"X-F: v\r\n" * 1001
put("fields-in-part", top + b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
    b"--B\r\n" + many + b"\r\nx\r\n--B--\r\n")
put("fields-in-rfc822", dsn(b"Subject: inner\r\n" + many + b"\r\nx\r\n"))
put("fields-in-status-group", full.replace(
    b"Action: failed\r\n", b"Action: failed\r\n" + many))
put("fields-returned-headers", full.replace(
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Type: text/rfc822-headers\r\n\r\n" + many))
put("parts-10001", top + b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n" +
    b"--B\r\n\r\n" * 20002 + b"--B--\r\n")
EOF

# run NAME : oobd parse on one generated input. Sets rc; output in
# TMP/NAME.out and TMP/NAME.err.
run() {
	timeout 60 "$OOBD_BIN" parse "$TMP/in/$1.eml" >"$TMP/$1.out" \
	    2>"$TMP/$1.err"
	rc=$?
	echo $rc >"$TMP/$1.rc"
}

# defined NAME : exit status 0 with records and a quiet stderr, or 1 with
# one error line naming the input and no records; stdout is JSON lines.
defined() {
	run "$1"
	f="$TMP/in/$1.eml"
	case $rc in
	0)
		if [ -s "$TMP/$1.out" ] && [ ! -s "$TMP/$1.err" ]; then
			ok "$1: records (exit status 0)"
		else
			not_ok "$1: exit status 0 but no records or a message on stderr"
			head -c 300 "$TMP/$1.err" | sed 's/^/#   /'
		fi ;;
	1)
		if [ "$(wc -l <"$TMP/$1.err")" -eq 1 ] &&
		    grep -q "^oobd: $f: ." "$TMP/$1.err"; then
			ok "$1: a one-line error naming the input (exit status 1): $(cut -c1-80 "$TMP/$1.err" | sed "s|$TMP/in/||")"
		else
			not_ok "$1: exit status 1 without a one-line error naming the input"
			head -c 300 "$TMP/$1.err" | sed 's/^/#   /'
		fi ;;
	124)	not_ok "$1: timed out after 60 s" ;;
	*)	not_ok "$1: exit status $rc (signal or crash)"
		head -c 300 "$TMP/$1.err" | sed 's/^/#   /' ;;
	esac
	check "$1: stdout is valid UTF-8 JSON lines" ok \
	    "$("$PY" "$OOBD_SRCDIR/tests/records.py" json "$TMP/$1.out")"
}

# types NAME : the record types, space separated.
types() {
	"$PY" -c '
import json, sys
print(" ".join(json.loads(l)["type"] for l in open(sys.argv[1], encoding="utf-8")))' \
	    "$TMP/$1.out" 2>/dev/null
}
# field NAME EXPR : a Python expression over the last record r.
field() {
	"$PY" -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
r = recs[-1] if recs else {}
print(json.dumps(eval(sys.argv[2]), sort_keys=True))' "$TMP/$1.out" "$2" \
	    2>/dev/null
}

for f in "$TMP"/in/*.eml; do
	defined "$(basename "$f" .eml)"
done

# What the defined results are, where they matter.
check "dsn-plain: Reception then OOB" "Reception OOB" "$(types dsn-plain)"
check "kumoref-valid: the trace decoded from the returned message" \
    '{"recipient": "nobody@example.com"}' \
    "$(field kumoref-valid '(r.get("oob_detail") or {}).get("trace")')"
for n in bad-base64 bad-padding bad-json not-object no-marker binary; do
	check "kumoref-$n: still an OOB record" "Reception OOB" \
	    "$(types "kumoref-$n")"
	check "kumoref-$n: the OOB record has no trace" null \
	    "$(field "kumoref-$n" 'r["oob_detail"].get("trace", "absent") if r.get("type") == "OOB" else "no OOB record"')"
done
check "empty: no OOB record" "" "$(types empty | grep -o OOB)"
check "header-10mb: one Reception record" "Reception" "$(types header-10mb)"
check "nested-500: one Reception record" "Reception" "$(types nested-500)"
check "nested-500-in-dsn: Reception then OOB" "Reception OOB" \
    "$(types nested-500-in-dsn)"
check "non-utf8-dsn: Reception then OOB" "Reception OOB" \
    "$(types non-utf8-dsn)"
check "non-utf8-dsn: invalid bytes replaced by U+FFFD in the content" \
    '"5.1.1 M\ufffdller caf\ufffd \ufffd unknown"' \
    "$(field non-utf8-dsn 'r.get("response", {}).get("content")')"
check "dsn-10000-rcpts: 10,000 OOB records" 10000 \
    "$(grep -c '"type":"OOB"' "$TMP/dsn-10000-rcpts.out")"
check "dsn-blank-lines: the extra blank lines forgiven (SPEC 6)" \
    "Reception OOB" "$(types dsn-blank-lines)"

# Header-count amplification: a one-line error, nothing given to GMime.
for n in fields-4m fields-in-part fields-in-rfc822 fields-in-status-group \
    fields-returned-headers; do
	check "$n: refused (exit status 1, no records)" \
	    "1 0 oobd: $TMP/in/$n.eml: more than 1000 header fields in one block (not parsed)" \
	    "$(cat "$TMP/$n.rc") $(wc -c <"$TMP/$n.out") $(cat "$TMP/$n.err")"
done
check "parts-10001: refused (exit status 1, no records)" \
    "1 0 oobd: $TMP/in/parts-10001.eml: more than 10000 MIME parts (not parsed)" \
    "$(cat "$TMP/parts-10001.rc") $(wc -c <"$TMP/parts-10001.out") $(cat "$TMP/parts-10001.err")"
# Peak RSS of `oobd parse` on the 19.9 MB of fields (4.7 GB before the
# limit): under 5 x the 20 MB max_message_size.
peak=$("$PY" -c '
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL, timeout=120)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' \
    "$OOBD_BIN" parse "$TMP/in/fields-4m.eml")
echo "# oobd parse on fields-4m.eml: peak RSS $peak kB"
check "fields-4m: peak RSS under 5 x 20 MB" yes \
    "$( [ "$peak" -lt 100000 ] && echo yes)"

# All the inputs at once: one process goes on past every failure.
timeout 120 "$OOBD_BIN" parse "$TMP"/in/*.eml >"$TMP/all.out" 2>"$TMP/all.err"
rc=$?
check "all inputs in one run: exit status 0 or 1" yes \
    "$( [ $rc -eq 0 ] || [ $rc -eq 1 ] && echo yes)"
n_in=$(ls "$TMP"/in/*.eml | wc -l)
n_rec=$(grep -c -E '"type":"(Reception|Feedback)"' "$TMP/all.out")
n_err=$(wc -l <"$TMP/all.err")
check "all inputs in one run: each input gives records or one error" \
    "$n_in" "$((n_rec + n_err))"

finish
