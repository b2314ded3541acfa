#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# config_show.sh - `oobd config` as postconf: -d prints every key of the
# loader's table (src/conf.c) with its default, the whole output loads back
# as TOML with the same values; a file's settings show in the full output,
# -n prints exactly the keys it changed, KEY arguments select keys, and an
# unknown key or a bad file is an error.
set -u

: "${OOBD_BIN:?}" "${OOBD_SRCDIR:?}"
. "$OOBD_SRCDIR/tests/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/oobd-config-show.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM HUP
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

cfg() { timeout 60 "$OOBD_BIN" config "$@" 2>"$TMP/err"; }

# ---- -d: every key of the table, nothing else ----
cfg -d >"$TMP/d"
check "-d: exit 0" 0 $?
tr '\n' ' ' <"$OOBD_SRCDIR/src/conf.c" |
	grep -o 'KEY( *"[^"]*", *"[^"]*"' |
	sed 's/KEY( *"\([^"]*\)", *"\([^"]*\)"/\1.\2/' >"$TMP/table"
sed -n 's/^\([a-z_.]*\) = .*/\1/p; s/^# \([a-z_.]*\) is not set$/\1/p' \
    "$TMP/d" >"$TMP/dkeys"
check "-d: one line per key of the loader's table, in its order" \
    "$(cat "$TMP/table")" "$(cat "$TMP/dkeys")"
check "-d: the line count is the key count" "$(wc -l <"$TMP/table")" \
    "$(wc -l <"$TMP/d")"
check "-d: defaults as oobd.toml(5) gives them" \
    'listener.max_message_size = 20000000
listener.idle_timeout = 300
listener.invalid_line_endings = "Deny"
logs.compression = "zstd"
logs.fsync = true
admin.listen = "127.0.0.1:8025"
# relay.next_hop is not set
relay.retry_factor = 2
relay.max_age = 432000' \
    "$(grep -E '^(listener\.(max_message_size|idle_timeout|invalid_line_endings)|logs\.(compression|fsync)|admin\.listen|relay\.(retry_factor|max_age)) |next_hop' "$TMP/d")"

# ---- a file: its values in the full output, -n only those ----
cat >"$TMP/oobd.toml" <<EOT
[listener]
listen = ["127.0.0.1:2525", "[::1]:2525"]
max_message_size = "30MB"
idle_timeout = "2 minutes"
banner = "ESMTP \\"quoted\\" ünïcode"
state_dir = "$TMP/state"
[listener.trace_headers]
received_header = false
[logs]
log_dir = "$TMP/log"
compression = "none"
[relay]
next_hop = "[192.0.2.1]:25"
retry_factor = 1.5
[bounce_classifier]
files = ["$OOBD_SRCDIR/conf/bounce_rules.toml"]
EOT
cfg -c "$TMP/oobd.toml" >"$TMP/full"
check "a file: exit 0" 0 $?
cfg --config "$TMP/oobd.toml" -n >"$TMP/n"
check "-n: exit 0" 0 $?
check "-n: exactly the changed keys, with their values" \
    "listener.listen = [\"127.0.0.1:2525\",\"[::1]:2525\"]
listener.banner = \"ESMTP \\\"quoted\\\" ünïcode\"
listener.max_message_size = 30000000
listener.idle_timeout = 120
listener.state_dir = \"$TMP/state\"
listener.trace_headers.received_header = false
logs.log_dir = \"$TMP/log\"
logs.compression = \"none\"
bounce_classifier.files = [\"$OOBD_SRCDIR/conf/bounce_rules.toml\"]
relay.next_hop = \"[192.0.2.1]:25\"
relay.retry_factor = 1.5" "$(cat "$TMP/n")"
check "full output: the unchanged keys keep their defaults" \
    "$(grep -v -F -x -f "$TMP/n" "$TMP/full" | grep -v '^listener.hostname')" \
    "$(grep -v -E '^(listener\.(listen|banner|max_message_size|idle_timeout|state_dir|trace_headers\.received_header)|logs\.(log_dir|compression)|bounce_classifier\.files|relay\.(retry_factor)|listener.hostname) |next_hop' "$TMP/d")"

# The output is TOML: loaded back, it gives the same configuration.
"$PY" - "$TMP/full" "$TMP/oobd.toml" >"$TMP/py" 2>&1 <<'PY'
import sys, tomllib
out = tomllib.load(open(sys.argv[1], "rb"))
src = tomllib.load(open(sys.argv[2], "rb"))
assert out["listener"]["listen"] == src["listener"]["listen"]
assert out["listener"]["banner"] == src["listener"]["banner"]
assert out["listener"]["max_message_size"] == 30 * 10**6
assert out["listener"]["idle_timeout"] == 120
assert out["listener"]["trace_headers"]["received_header"] is False
assert out["relay"]["retry_factor"] == 1.5
assert "tls_certificate" not in out["listener"]
print("ok")
PY
check "the output parses as TOML with the file's values" ok "$(cat "$TMP/py")"
cp "$TMP/full" "$TMP/full.toml"
cfg -c "$TMP/full.toml" >"$TMP/again"
check "oobd loads its own output: the same output again" \
    "$(cat "$TMP/full")" "$(cat "$TMP/again")"

# ---- KEY selection ----
check "KEY: one key" "logs.compression = \"none\"" \
    "$(cfg -c "$TMP/oobd.toml" logs.compression)"
check "KEY: several, in the order given" \
    "relay.max_age = 432000
listener.trace_headers.received_header = false" \
    "$(cfg -c "$TMP/oobd.toml" relay.max_age listener.trace_headers.received_header)"
check "KEY with -n: a default value prints nothing" "" \
    "$(cfg -n -c "$TMP/oobd.toml" relay.max_age)"
check "KEY with -d" "relay.next_hop" \
    "$(cfg -d relay.next_hop | sed 's/^# \(.*\) is not set$/\1/')"
cfg -d logs.nonesuch listener >"$TMP/unknown"
rc=$?
check "unknown KEY: exit 1" 1 $rc
check "unknown KEY: each one named" \
    "oobd config: logs.nonesuch: unknown key
oobd config: listener: unknown key" "$(cat "$TMP/err")"
check "unknown KEY: nothing printed" "" "$(cat "$TMP/unknown")"

# ---- errors ----
cfg -n -d >/dev/null
check "-n with -d: exit 2" 2 $?
printf '[listener]\nworkers = "x"\n' >"$TMP/bad.toml"
cfg -c "$TMP/bad.toml" >/dev/null
check "an invalid file: exit 1" 1 $?
check "an invalid file: the error named" \
    "oobd: $TMP/bad.toml: [listener] workers: expected a positive integer" \
    "$(cat "$TMP/err")"
cfg -c "$TMP/missing.toml" >/dev/null
check "a missing file: exit 1" 1 $?
finish
