#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# systemd/oobd.service and oobd.socket: `systemd-analyze verify` accepts
# them, `systemd-analyze security` rates the service's exposure (printed
# as a comment, at most 2.0 required), the directives oobd(8) documents
# are there, and the MemoryDenyWriteExecute= choice holds: under the same
# restriction (prctl PR_SET_MDWE) PCRE2's JIT is refused and oobd still
# classifies every bounce as it does with the JIT.
. "${OOBD_SRCDIR:-.}/tests/lib.sh"
SRC=${OOBD_SRCDIR:-.}
BUILD=${OOBD_BUILDDIR:-.}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

svc="$BUILD/systemd/oobd.service"
check "service unit generated" yes "$([ -f "$svc" ] && echo yes)"
check "socket unit present" yes "$([ -f "$SRC/systemd/oobd.socket" ] && echo yes)"

# The generated unit names the installed binary; verify checks that it is
# executable, so point it at the one just built.
sed "s|^\(Exec[A-Za-z]*=\)[^ ]*/oobd |\1$OOBD_BIN |" "$svc" >"$TMP/oobd.service"
cp "$SRC/systemd/oobd.socket" "$TMP/oobd.socket"
check "ExecStart rewritten for the test" 1 \
	"$(grep -c "^ExecStart=$OOBD_BIN -c " "$TMP/oobd.service")"
out=$(cd "$TMP" && systemd-analyze verify --man=no ./oobd.service ./oobd.socket 2>&1)
check "systemd-analyze verify: status" 0 $?
check "systemd-analyze verify: no complaint" "" "$out"

sec=$(cd "$TMP" && systemd-analyze security --offline=true ./oobd.service 2>&1)
check "systemd-analyze security: status" 0 $?
score=$(printf '%s\n' "$sec" | sed -n 's/^→ Overall exposure level for oobd.service: \([0-9.]*\) .*/\1/p')
echo "# systemd-analyze security --offline=true: exposure $score"
check "exposure score at most 2.0" yes \
	"$(awk -v s="$score" 'BEGIN { print (s != "" && s <= 2.0) ? "yes" : "no" }')"
(cd "$TMP" && systemd-analyze security --offline=true --threshold=20 \
	./oobd.service >/dev/null 2>&1)
check "systemd-analyze security --threshold=20" 0 $?

for d in Type=notify NotifyAccess=main User=oobd Group=oobd \
	AmbientCapabilities=CAP_NET_BIND_SERVICE \
	CapabilityBoundingSet=CAP_NET_BIND_SERVICE NoNewPrivileges=yes \
	ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
	StateDirectory=oobd StateDirectoryMode=0750 LogsDirectory=oobd \
	LogsDirectoryMode=0750 ReadWritePaths=-/var/spool/oobd \
	"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
	SystemCallFilter=@system-service LockPersonality=yes \
	MemoryDenyWriteExecute=yes ProtectKernelTunables=yes \
	ProtectKernelModules=yes ProtectKernelLogs=yes \
	'ExecReload=/bin/kill -HUP $MAINPID'; do
	check "service: $d" 1 "$(grep -cxF "$d" "$svc")"
done
check "socket: ListenStream matches the default listen address" \
	"ListenStream=0.0.0.0:25" "$(grep '^ListenStream=' "$SRC/systemd/oobd.socket")"
check "sysusers: the oobd user" 'u oobd - "oobd bounce receiver" /var/lib/oobd' \
	"$(grep -v '^#' "$SRC/systemd/sysusers.d/oobd.conf")"

# MemoryDenyWriteExecute=yes: what it does to PCRE2 and to oobd.
cat >"$TMP/mdwe.py" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_MDWE): %s" % os.strerror(ctypes.get_errno()))
if sys.argv[1] == "jit":
    p = ctypes.CDLL("libpcre2-8.so.0")
    p.pcre2_compile_8.restype = ctypes.c_void_p
    p.pcre2_compile_8.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
        ctypes.c_uint32, ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p]
    p.pcre2_jit_compile_8.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    e, o = ctypes.c_int(), ctypes.c_size_t()
    code = p.pcre2_compile_8(b"user unknown", 12, 0, ctypes.byref(e),
                             ctypes.byref(o), None)
    print(p.pcre2_jit_compile_8(code, 1))    # PCRE2_JIT_COMPLETE
else:
    os.execvp(sys.argv[1], sys.argv[1:])
PY
check "PCRE2 JIT refused under MDWE (PCRE2_ERROR_NOMEMORY)" -48 \
	"$(python3 "$TMP/mdwe.py" jit 2>&1)"
classes() { python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    print(r["type"], r["recipient"], r.get("bounce_classification"))'; }
set -- "$OOBD_SHARED"/corpus/kumomta/rfc3464/*.eml
"$OOBD_BIN" parse --recipient b@bounce.example.com "$@" 2>/dev/null | classes >"$TMP/jit.txt"
python3 "$TMP/mdwe.py" "$OOBD_BIN" parse --recipient b@bounce.example.com "$@" \
	2>/dev/null | classes >"$TMP/nojit.txt"
check "bounces classified with the JIT" yes \
	"$([ "$(grep -c '^OOB ' "$TMP/jit.txt")" -ge 3 ] && echo yes)"
check "same classifications without it" "$(cat "$TMP/jit.txt")" "$(cat "$TMP/nojit.txt")"
finish
