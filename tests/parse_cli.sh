#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# parse_cli.sh - `oobd parse` as a user runs it: every input kind (file,
# Maildir, mbox, standard input), exit statuses and error lines, --recipient,
# --sender, --all, and one whole record checked field by field.
set -u

: "${OOBD_BIN:?}" "${OOBD_SRCDIR:?}" "${OOBD_SHARED:?}"
. "$OOBD_SRCDIR/tests/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
REC="$OOBD_SRCDIR/tests/records.py"
K=$OOBD_SHARED/corpus/kumomta/rfc3464
TMP=$(mktemp -d "${TMPDIR:-/tmp}/oobd-parse-cli.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM HUP

# parse NAME ARGS... : run oobd parse; stdout in $TMP/NAME.out, stderr in
# $TMP/NAME.err, exit status in $rc.
parse() {
	name=$1
	shift
	timeout 60 "$OOBD_BIN" parse "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
	rc=$?
}
summary() { "$PY" "$REC" summary "$TMP/$1.out"; }
stable() { "$PY" "$REC" stable "$TMP/$1.out"; }

# What the two fixtures give, as records.py summarises them.
S1="Reception >owner-info-mime@cs.utk.edu 250 - - ; OOB owner-info-mime@cs.utk.edu>louisl@larry.slip.umd.edu 426 4.0.0 failed"
S2="Reception >owner-ups-mib@CS.UTK.EDU 250 - - ; OOB owner-ups-mib@CS.UTK.EDU>arathib@vnet.ibm.com 550 5.0.0 failed ; OOB owner-ups-mib@CS.UTK.EDU>wsnell@sdcc13.ucsd.edu 550 5.0.0 failed"

# ---- a message file ----
parse file1 "$K/1.eml"
check "file: exit status 0" 0 $rc
check "file: nothing on stderr" "" "$(cat "$TMP/file1.err")"
check "file: records of rfc3464/1.eml" "$S1" "$(summary file1)"
check "file: compact JSON lines" ok "$("$PY" "$REC" json "$TMP/file1.out")"
parse file2 "$K/2.eml"
check "file: records of rfc3464/2.eml (the delayed recipient left out)" \
    "$S2" "$(summary file2)"

# ---- the whole record, field by field ----
# oobd's shipped rules (conf/bounce_rules.toml) read the text of a class 4
# status, "connection timed out": NoAnswerFromHost; KumoMTA's iana.toml has
# no rule for "426 4.0.0 ..." and leaves it Uncategorized.
check "rfc3464/1.eml: every field of both records (shipped rules)" ok \
    "$("$PY" "$REC" whole-1 "$TMP/file1.out" NoAnswerFromHost)"
parse iana --rules "$OOBD_SHARED/corpus/kumomta/bounce_classifier/iana.toml" \
    "$K/1.eml"
check "rfc3464/1.eml: every field of both records (KumoMTA's iana.toml)" ok \
    "$("$PY" "$REC" whole-1 "$TMP/iana.out" Uncategorized)"

# ---- two files, one missing: error line, the other still processed ----
parse missing "$TMP/no-such.eml" "$K/1.eml"
check "missing input: exit status 1" 1 $rc
check "missing input: one line on stderr naming the file" \
    "oobd: $TMP/no-such.eml: No such file or directory" \
    "$(cat "$TMP/missing.err")"
check "missing input: the other input still processed" "$S1" \
    "$(summary missing)"
parse missing2 "$K/1.eml" "$TMP/no-such.eml" "$K/2.eml"
check "missing input in the middle: exit status 1" 1 $rc
check "missing input in the middle: inputs after it processed" \
    "$S1 ; $S2" "$(summary missing2)"
check "missing input in the middle: one error line" 1 \
    "$(wc -l <"$TMP/missing2.err")"

# ---- a plain directory of message files (no cur/ or new/) ----
mkdir "$TMP/plain"
cp "$K/2.eml" "$TMP/plain/b.eml"
cp "$K/1.eml" "$TMP/plain/a.eml"
cp "$K/2.eml" "$TMP/plain/.hidden.eml"
parse plain "$TMP/plain"
check "plain directory: exit status 0" 0 $rc
check "plain directory: nothing on stderr" "" "$(cat "$TMP/plain.err")"
check "plain directory: its files in name order" "$S1 ; $S2" \
    "$(summary plain)"
: >"$TMP/plain/c.eml"
parse plain2 "$TMP/plain"
check "plain directory with an empty file: exit status 1" 1 $rc
check "plain directory with an empty file: the others processed" \
    "$S1 ; $S2" "$(summary plain2)"
check "plain directory with an empty file: one line naming it" \
    "oobd: $TMP/plain/c.eml: empty message" "$(cat "$TMP/plain2.err")"

# ---- a Maildir: cur/ then new/, sorted, dot files skipped ----
mkdir -p "$TMP/Maildir/cur" "$TMP/Maildir/new" "$TMP/Maildir/tmp"
cp "$K/2.eml" "$TMP/Maildir/cur/1700000002.M1P1.host:2,S"
cp "$K/1.eml" "$TMP/Maildir/cur/1700000001.M1P1.host:2,S"
cp "$K/2.eml" "$TMP/Maildir/cur/.1700000000.hidden"
cp "$K/2.eml" "$TMP/Maildir/tmp/1700000003.M1P1.host"
cp "$K/1.eml" "$TMP/Maildir/new/1600000000.M1P1.host"
parse maildir "$TMP/Maildir"
check "Maildir: exit status 0" 0 $rc
check "Maildir: nothing on stderr" "" "$(cat "$TMP/maildir.err")"
check "Maildir: cur/ in name order, then new/" "$S1 ; $S2 ; $S1" \
    "$(summary maildir)"
parse files3 "$K/1.eml" "$K/2.eml" "$K/1.eml"
check "Maildir: the same records as its files one by one" \
    "$(stable files3)" "$(stable maildir)"

# ---- an mbox: "From " lines, >From unescaped, CRLF and CR line ends ----
"$PY" - "$K/1.eml" "$K/2.eml" "$TMP" <<'EOF'
import sys
one, two, tmp = sys.argv[1:]
msgs = [open(p, "rb").read().replace(b"\r\n", b"\n") for p in (one, two)]
box = b""
for m in msgs:
    box += b"From MAILER-DAEMON Thu Jul  7 17:16:05 1994\n" + m
    if not box.endswith(b"\n"):
        box += b"\n"
    box += b"\n"
for name, eol in (("lf", b"\n"), ("crlf", b"\r\n"), ("cr", b"\r")):
    open("%s/box-%s.mbox" % (tmp, name), "wb").write(box.replace(b"\n", eol))
EOF
for v in lf crlf cr; do
	parse "mbox-$v" "$TMP/box-$v.mbox"
	check "mbox ($v): exit status 0" 0 $rc
	check "mbox ($v): records of both messages" "$S1 ; $S2" \
	    "$(summary "mbox-$v")"
done
parse files2 "$K/1.eml" "$K/2.eml"
check "mbox: the same records as its messages as files" \
    "$(stable files2)" "$(stable mbox-lf)"

# A message with ">From " body lines and an mbox of one bad message.
"$PY" - "$K/1.eml" "$TMP" <<'EOF'
import sys
src, tmp = sys.argv[1:]
m = open(src, "rb").read().replace(b"\r\n", b"\n")
m = m.replace(b"[original message goes here]\n",
              b"[original message goes here]\n\n>From the mbox\n")
open(tmp + "/quoted.mbox", "wb").write(b"From x Thu Jan  1 00:00:00 2024\n" + m)
open(tmp + "/empty-msg.mbox", "wb").write(
    b"From x Thu Jan  1 00:00:00 2024\n\n"
    b"From y Thu Jan  1 00:00:00 2024\n" + m)
EOF
parse quoted "$TMP/quoted.mbox"
check "mbox with >From lines: exit status 0" 0 $rc
check "mbox with >From lines: records" "$S1" "$(summary quoted)"
parse emptymsg "$TMP/empty-msg.mbox"
check "mbox with an empty message: exit status 1" 1 $rc
check "mbox with an empty message: the error names path:1" yes \
    "$(grep -q "^oobd: $TMP/empty-msg.mbox:1: " "$TMP/emptymsg.err" && echo yes)"
check "mbox with an empty message: message 2 still processed" "$S1" \
    "$(summary emptymsg)"

# ---- standard input ----
timeout 60 "$OOBD_BIN" parse - <"$K/1.eml" >"$TMP/stdin.out" 2>"$TMP/stdin.err"
check "stdin: exit status 0" 0 $?
check "stdin: records" "$S1" "$(summary stdin)"
timeout 60 "$OOBD_BIN" parse - <"$TMP/box-crlf.mbox" >"$TMP/stdin-mbox.out" \
    2>"$TMP/stdin-mbox.err"
check "stdin mbox: exit status 0" 0 $?
check "stdin mbox: records" "$S1 ; $S2" "$(summary stdin-mbox)"
timeout 60 "$OOBD_BIN" parse - </dev/null >"$TMP/stdin-empty.out" \
    2>"$TMP/stdin-empty.err"
check "stdin empty: exit status 1" 1 $?
check "stdin empty: one error line naming -" yes \
    "$( [ "$(wc -l <"$TMP/stdin-empty.err")" -eq 1 ] && grep -q '^oobd: -: ' "$TMP/stdin-empty.err" && echo yes)"

# ---- --recipient and --sender ----
parse rcpt --recipient bounces@example.net --sender mailer@example.org \
    "$K/1.eml"
check "--recipient/--sender: exit status 0" 0 $rc
check "--recipient/--sender: bounce address and envelope" \
    "Reception mailer@example.org>bounces@example.net 250 - - ; OOB bounces@example.net>louisl@larry.slip.umd.edu 426 4.0.0 failed" \
    "$(summary rcpt)"
check "--recipient: the queue is its domain" "example.net example.net" \
    "$("$PY" -c 'import json,sys; print(" ".join(json.loads(l)["queue"] for l in open(sys.argv[1])))' "$TMP/rcpt.out")"

# ---- --all: the delayed recipient of rfc3464/2.eml too ----
parse all --all "$K/2.eml"
check "--all: exit status 0" 0 $rc
check "--all: the delayed recipient in document order" \
    "Reception >owner-ups-mib@CS.UTK.EDU 250 - - ; OOB owner-ups-mib@CS.UTK.EDU>arathib@vnet.ibm.com 550 5.0.0 failed ; OOB owner-ups-mib@CS.UTK.EDU>johnh@hpnjld.njd.hp.com 550 4.0.0 delayed ; OOB owner-ups-mib@CS.UTK.EDU>wsnell@sdcc13.ucsd.edu 550 5.0.0 failed" \
    "$(summary all)"
parse all4 --all "$K/4.eml"
parse no4 "$K/4.eml"
check "--all: a delay warning gives an OOB record only with --all" "1 0" \
    "$(grep -c '"type":"OOB"' "$TMP/all4.out") $(grep -c '"type":"OOB"' "$TMP/no4.out")"

# ---- inputs that are not regular files, and --max-size ----
# /dev/zero never ends: it is read up to --max-size (by default the
# daemon's max_message_size) and refused; the next input is still parsed.
parse zero /dev/zero "$K/1.eml"
check "/dev/zero: exit status 1" 1 $rc
check "/dev/zero: one line naming it" \
    "oobd: /dev/zero: larger than 20000000 bytes (--max-size)" \
    "$(cat "$TMP/zero.err")"
check "/dev/zero: the next input still parsed" "$S1" "$(summary zero)"
check "--max-size default: the daemon's max_message_size" \
    "listener.max_message_size = 20000000" \
    "$("$OOBD_BIN" config -d listener.max_message_size 2>&1)"
parse zero-small --max-size 64KiB - </dev/zero
check "--max-size 64KiB, /dev/zero on stdin: exit status 1" 1 $rc
check "--max-size 64KiB, /dev/zero on stdin: one line naming -" \
    "oobd: -: larger than 65536 bytes (--max-size)" \
    "$(cat "$TMP/zero-small.err")"

# A FIFO (and a link to a character device) in a Maildir: refused with
# one line each, without waiting for a writer; the messages around them
# are printed.
mkdir -p "$TMP/fifo-md/cur" "$TMP/fifo-md/new"
cp "$K/1.eml" "$TMP/fifo-md/cur/1"
mkfifo "$TMP/fifo-md/cur/2-fifo"
ln -s /dev/zero "$TMP/fifo-md/cur/3-zero"
cp "$K/2.eml" "$TMP/fifo-md/new/4"
parse fifo "$TMP/fifo-md"
check "Maildir with a FIFO and a device: exit status 1" 1 $rc
check "Maildir with a FIFO and a device: one line for each" \
    "oobd: $TMP/fifo-md/cur/2-fifo: not a regular file
oobd: $TMP/fifo-md/cur/3-zero: not a regular file" "$(cat "$TMP/fifo.err")"
check "Maildir with a FIFO and a device: the messages printed" \
    "$S1 ; $S2" "$(summary fifo)"
mkdir "$TMP/fifo-dir"
mkfifo "$TMP/fifo-dir/a-fifo"
cp "$K/1.eml" "$TMP/fifo-dir/b.eml"
parse fifo-dir "$TMP/fifo-dir"
check "plain directory with a FIFO: exit status 1, the message printed" \
    "1 $S1" "$rc $(summary fifo-dir)"
check "plain directory with a FIFO: one line naming it" \
    "oobd: $TMP/fifo-dir/a-fifo: not a regular file" \
    "$(cat "$TMP/fifo-dir.err")"

# --max-size on a file, on a pipe, and on each message of an mbox.
parse small --max-size 1000 "$K/1.eml" "$K/3.eml"
check "--max-size 1000: exit status 1" 1 $rc
check "--max-size 1000: the 1312-byte file refused" \
    "oobd: $K/1.eml: larger than 1000 bytes (--max-size)" \
    "$(cat "$TMP/small.err")"
parse three "$K/3.eml"
check "--max-size 1000: the 755-byte file parsed" "$(summary three)" \
    "$(summary small)"
cat "$K/1.eml" | timeout 60 "$OOBD_BIN" parse --max-size 1kB - \
    >"$TMP/pipe-small.out" 2>"$TMP/pipe-small.err"
check "--max-size 1kB on a pipe: exit status 1, no records" "1 0" \
    "$? $(wc -c <"$TMP/pipe-small.out")"
check "--max-size 1kB on a pipe: one line naming -" \
    "oobd: -: larger than 1000 bytes (--max-size)" \
    "$(cat "$TMP/pipe-small.err")"
{ printf 'From a@b Thu Jan  1 00:00:00 2024\n'; cat "$K/3.eml"
  printf '\nFrom a@b Thu Jan  1 00:00:00 2024\n'; cat "$K/1.eml"; } \
    >"$TMP/sizes.mbox"
parse mbox-small --max-size 1000 "$TMP/sizes.mbox"
check "--max-size 1000 on an mbox: exit status 1" 1 $rc
check "--max-size 1000 on an mbox: the large message refused" \
    "oobd: $TMP/sizes.mbox:2: larger than 1000 bytes (--max-size)" \
    "$(cat "$TMP/mbox-small.err")"
check "--max-size 1000 on an mbox: the small one parsed" \
    "$(summary three)" "$(summary mbox-small)"
parse mbox-big --max-size 1312 "$TMP/sizes.mbox"
check "--max-size 1312 on an mbox: both parsed" "0 $(summary three) ; $S1" \
    "$rc $(summary mbox-big)"
parse badsize --max-size 12XB "$K/1.eml"
check "--max-size 12XB: usage error (exit status 2)" 2 $rc
check "--max-size 12XB: the reason first" \
    'oobd: --max-size: expected a size such as "20MB"' \
    "$(head -n 1 "$TMP/badsize.err")"

# ---- usage errors ----
timeout 60 "$OOBD_BIN" parse >/dev/null 2>"$TMP/usage.err"
rc=$?
check "no input: usage error (exit status 2)" 2 $rc
check "no input: usage on stderr" yes \
    "$(grep -q 'usage' "$TMP/usage.err" && echo yes)"

finish
