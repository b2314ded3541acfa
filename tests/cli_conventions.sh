#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cli_conventions.sh - oobd's command-line conventions: --help (usage on
# standard output, exit 0) and --version ("oobd VERSION", exit 0) for oobd
# and every subcommand, a usage error on standard error with exit 2, the
# long options of the daemon (--config, --test, --verbose) doing what -c,
# -t and -v do, and the exit statuses oobd(8) documents.
set -u

: "${OOBD_BIN:?}" "${OOBD_SRCDIR:?}"
. "$OOBD_SRCDIR/tests/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/oobd-cli.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM HUP

VERSION=$(sed -n 's/^AC_INIT(\[oobd\], *\[\([^]]*\)\].*/\1/p' \
	"$OOBD_SRCDIR/configure.ac")
check "version found in configure.ac" yes "$([ -n "$VERSION" ] && echo yes)"

# run NAME ARGS...: stdout, stderr and exit status of oobd ARGS.
run() {
	name=$1
	shift
	timeout 60 "$OOBD_BIN" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
	rc=$?
}

for cmd in "" parse config report queue; do
	label=${cmd:-oobd}
	# shellcheck disable=SC2086
	run help $cmd --help
	check "$label --help: exit 0" 0 $rc
	check "$label --help: usage on stdout" yes \
	    "$(grep -q "^usage: oobd${cmd:+ $cmd}" "$TMP/help.out" && echo yes)"
	check "$label --help: nothing on stderr" "" "$(cat "$TMP/help.err")"
	# shellcheck disable=SC2086
	run version $cmd --version
	check "$label --version: exit 0" 0 $rc
	check "$label --version: the version line" "oobd $VERSION" \
	    "$(head -n 1 "$TMP/version.out")"
	# shellcheck disable=SC2086
	run bad $cmd --no-such-option
	check "$label --no-such-option: exit 2" 2 $rc
	check "$label --no-such-option: usage on stderr, not stdout" "yes " \
	    "$(grep -q '^usage: oobd' "$TMP/bad.err" && echo yes) $(cat "$TMP/bad.out")"
done

# ---- the daemon's long options ----
cat >"$TMP/ok.toml" <<EOT
[listener]
listen = ["127.0.0.1:1"]
state_dir = "$TMP/state"
[logs]
log_dir = "$TMP/log"
[bounce_classifier]
files = ["$OOBD_SRCDIR/conf/bounce_rules.toml"]
EOT
run short -c "$TMP/ok.toml" -t
check "-c FILE -t: exit 0" 0 $rc
check "-c FILE -t: configuration ok" "oobd: $TMP/ok.toml: configuration ok" \
    "$(cat "$TMP/short.out")"
run long --config "$TMP/ok.toml" --test
check "--config FILE --test: exit 0" 0 $rc
check "--config FILE --test: the same output as -c -t" \
    "$(cat "$TMP/short.out")" "$(cat "$TMP/long.out")"
run long2 --config="$TMP/ok.toml" --test --verbose
check "--config=FILE --test --verbose: exit 0" 0 $rc
printf '[listener]\nworkers = 0\n' >"$TMP/bad.toml"
run badconf --config "$TMP/bad.toml" --test
check "--test with an invalid configuration: exit 1" 1 $rc
check "--test with an invalid configuration: the key named" yes \
    "$(grep -q 'workers: expected a positive integer' "$TMP/badconf.err" && echo yes)"
run extra -c "$TMP/ok.toml" stray-argument
check "a stray argument: exit 2" 2 $rc
run nosub frobnicate
check "an unknown subcommand: exit 2" 2 $rc

# ---- oobd(8) documents every exit status the commands use ----
MAN="$OOBD_SRCDIR/docs/oobd.8"
for status in 0 1 2 3; do
	check "oobd.8 EXIT STATUS lists $status" yes "$(awk '
		/^\.SH EXIT STATUS/ { on = 1; next }
		/^\.SH / { on = 0 }
		on && /^\.TP/ { tp = 1; next }
		on && tp { tp = 0; if ($0 ~ "^\\.B " s "$") found = 1 }
		END { if (found) print "yes" }' s="$status" "$MAN")"
done
finish
