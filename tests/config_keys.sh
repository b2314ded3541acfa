#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every key the configuration loader accepts (the KEY(...) rows of
# src/conf.c's key table) is documented in the annotated example
# conf/oobd.toml (set, or commented out as "#key = default") and in the
# oobd.toml(5) man page (a ".TP" entry under ".SS [section]"), and neither
# documents a key the loader does not know. Both man pages pass
# `man --warnings`.
. "${OOBD_SRCDIR:-.}/tests/lib.sh"
SRC=${OOBD_SRCDIR:-.}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# section.key per line, sorted.
tr '\n' ' ' <"$SRC/src/conf.c" |
	grep -o 'KEY( *"[^"]*", *"[^"]*"' |
	sed 's/KEY( *"\([^"]*\)", *"\([^"]*\)"/\1.\2/' | sort -u >"$TMP/loader"
check "key table found" yes "$([ "$(wc -l <"$TMP/loader")" -ge 40 ] && echo yes)"

python3 - "$SRC/conf/oobd.toml" >"$TMP/example" 2>"$TMP/example.err" <<'PY'
import re, sys, tomllib
# Uncomment "#key = value" lines (documented defaults), keep prose comments.
text = []
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"^#([a-z_]+ = .*)$", line)
    text.append(m.group(1) + "\n" if m else line)
doc = tomllib.loads("".join(text))
def walk(t, prefix):
    for k, v in t.items():
        if isinstance(v, dict):
            walk(v, prefix + k + ".")
        else:
            print(prefix.rstrip(".") + "." + k)
walk(doc, "")
PY
check "example parses as TOML (defaults uncommented)" "" "$(cat "$TMP/example.err")"
sort -u -o "$TMP/example" "$TMP/example"
check "every loader key in conf/oobd.toml" "" \
	"$(comm -23 "$TMP/loader" "$TMP/example" | tr '\n' ' ')"
check "no unknown key in conf/oobd.toml" "" \
	"$(comm -13 "$TMP/loader" "$TMP/example" | tr '\n' ' ')"

# Every documented key has its default on the .TP entry's next lines.
awk '
	/^\.SS \[/ { sec = $2; gsub(/[][]/, "", sec); next }
	/^\.SH / { sec = "" }
	/^\.TP/ { tp = 1; next }
	tp && sec != "" { tp = 0; k = $2; gsub(/\\/, "", k); if ($1 ~ /^\.B/) print sec "." k; next }
	{ tp = 0 }
' "$SRC/docs/oobd.toml.5" | sort -u >"$TMP/man"
check "every loader key in oobd.toml(5)" "" \
	"$(comm -23 "$TMP/loader" "$TMP/man" | tr '\n' ' ')"
check "no unknown key in oobd.toml(5)" "" \
	"$(comm -13 "$TMP/loader" "$TMP/man" | tr '\n' ' ')"

for page in oobd.8 oobd.toml.5; do
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$SRC/docs/$page" 2>&1 >/dev/null)
	check "man --warnings $page" "" "$out"
done
finish
