# SPDX-License-Identifier: Apache-2.0
# lib.sh - helpers for the shell tests. Each check prints "ok - NAME" or
# "not ok - NAME"; finish() exits non-zero when any check failed.
OOBD_FAILED=0
OOBD_PASSED=0
ok() { OOBD_PASSED=$((OOBD_PASSED + 1)); echo "ok - $*"; }
not_ok() { OOBD_FAILED=$((OOBD_FAILED + 1)); echo "not ok - $*"; }
# check NAME EXPECTED ACTUAL
check() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; printf '  expected: %s\n  actual:   %s\n' "$2" "$3"; fi
}
finish() {
	echo "# $OOBD_PASSED passed, $OOBD_FAILED failed"
	[ "$OOBD_FAILED" -eq 0 ]
}
