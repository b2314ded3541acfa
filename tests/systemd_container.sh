#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian package under a real systemd: a minbase Debian rootfs
# (mmdebstrap, cached) booted with systemd-nspawn, systemd as its PID 1
# (the host has no systemd: the container gets cgroups of its own, and
# commands run in it through nsenter). The .deb is installed
# there as an operator would, then: the fresh install's state (service
# enabled and running, socket not enabled, directories 0750 after a start),
# `systemctl start` returning only once oobd is READY (Type=notify), a
# bounce delivered with swaks and its records read back, `systemctl reload`
# picking up a domain added to the domain file, journald levels
# (`journalctl -p err` shows a provoked error, not the info lines), the
# sandboxing in force (`systemctl show` and the process's own status),
# `systemctl stop` draining (an idle session gets 421, a message in DATA
# is still accepted, exit 0), and socket activation (oobd.socket holds
# port 25, the first connection starts oobd, which takes the socket).
#
#   tests/systemd_container.sh DEB CACHEDIR
#
# Run as root. Prints "ok - " / "not ok - " lines; where the machine
# cannot run it (not root, no cgroup hierarchy for nspawn, no route to
# the Debian mirror and no cached rootfs) a "skip - REASON" line, exit 0.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/tests/lib.sh"
DEB=${1:?usage: systemd_container.sh DEB CACHEDIR}
CACHE=${2:?usage: systemd_container.sh DEB CACHEDIR}
started=$(date +%s)

skip() {
	echo "skip - systemd container: $*"
	echo "# the systemd container test did not run: $*"
	exit 0
}
[ "$(id -u)" -eq 0 ] || skip "not root"
for t in systemd-nspawn mmdebstrap nsenter swaks; do
	command -v "$t" >/dev/null || skip "$t is not installed"
done
[ -f "$DEB" ] || { not_ok "package $DEB exists"; finish; exit; }
[ -d /sys/fs/cgroup/systemd ] && [ -d /sys/fs/cgroup/unified ] ||
	skip "no cgroup v1 name=systemd and v2 hierarchies for the container"

# ---- the rootfs: Debian minbase, systemd, swaks and the package's
# dependencies; cached by suite, mirror and package list ----
. /etc/os-release
suite=${VERSION_CODENAME:-bookworm}
# The mirror apt uses here for that suite (deb822 .sources, then
# sources.list).
mirror=$(
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && awk -v s="$suite" '
			/^$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0 }
			/^URIs:/ { u = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
			END { if (u != "" && ok) print u }' "$f"
	done
	[ -f /etc/apt/sources.list ] && awk -v s="$suite" \
		'$1 == "deb" && $0 !~ /\[/ && $3 == s { print $2 } $1 == "deb" && $0 ~ /\[/ { for (i = 2; i <= NF; i++) if ($i == s) { print $(i-1); break } }' \
		/etc/apt/sources.list
)
mirror=$(printf '%s\n' "$mirror" | grep . | head -1)
[ -n "$mirror" ] || skip "no Debian mirror for $suite in /etc/apt/sources.list(.d)"
deps=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep . | sort -u)
pkgs=$(printf '%s\n' systemd systemd-sysv dbus procps swaks $deps | sort -u | tr '\n' ',' | sed 's/,$//')
key=$(printf '%s %s %s\n' "$suite" "$mirror" "$pkgs" | sha256sum | cut -c1-16)
rootfs=$CACHE/rootfs-$key
mkdir -p "$CACHE"
if [ ! -f "$rootfs/.complete" ]; then
	rm -rf "$CACHE"/rootfs-* "$CACHE"/tmp-rootfs
	t0=$(date +%s)
	if ! mmdebstrap --variant=minbase --include="$pkgs" "$suite" \
		"$CACHE/tmp-rootfs" "$mirror" >"$CACHE/mmdebstrap.log" 2>&1; then
		tail -5 "$CACHE/mmdebstrap.log"
		rm -rf "$CACHE/tmp-rootfs"
		if ! curl -fsS -o /dev/null -m 20 "$mirror/dists/$suite/Release" 2>/dev/null; then
			skip "the Debian mirror $mirror cannot be reached"
		fi
		not_ok "mmdebstrap $suite from $mirror"
		finish
		exit
	fi
	touch "$CACHE/tmp-rootfs/.complete"
	mv "$CACHE/tmp-rootfs" "$rootfs"
	echo "# rootfs built in $(($(date +%s) - t0)) s ($(du -sm "$rootfs" | cut -f1) MB)"
else
	echo "# rootfs from the cache: $rootfs"
fi

# ---- boot it ----
name=oobd-test-$$
work=$(mktemp -d)
mkdir -p "$work/share"
cp "$DEB" "$work/share/"
cp "$SRC/tests/data/sample-dsn.eml" "$work/share/"
chmod -R a+rX "$work"
nspawn=""
leader=""
cleanup() {
	if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
		nsenter -t "$leader" -a systemctl poweroff >/dev/null 2>&1
	fi
	if [ -n "$nspawn" ]; then
		for _ in $(seq 100); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.2; done
		kill "$nspawn" 2>/dev/null
		wait "$nspawn" 2>/dev/null
	fi
	for h in systemd unified; do
		[ -d "/sys/fs/cgroup/$h/nspawn-$name" ] &&
			find "/sys/fs/cgroup/$h/nspawn-$name" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -rf "/run/systemd/nspawn/unix-export/$name" "/run/systemd/nspawn/propagate/$name" \
		"/run/systemd/nspawn/incoming/$name" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

for h in systemd unified; do mkdir -p "/sys/fs/cgroup/$h/nspawn-$name"; done
(
	for h in systemd unified; do echo $BASHPID >"/sys/fs/cgroup/$h/nspawn-$name/cgroup.procs"; done
	exec setsid systemd-nspawn -q -D "$rootfs" -M "$name" -b --register=no \
		--keep-unit --private-network --volatile=overlay --console=read-only \
		--bind-ro="$work/share:/mnt/oobd"
) >"$work/console.log" 2>&1 </dev/null &
nspawn=$!
# The container's PID 1 as the host sees it: the child of nspawn that
# runs systemd (nspawn forks short-lived helpers before it).
for _ in $(seq 300); do
	leader=$(ps --ppid "$nspawn" -o pid=,comm= | awk '$2 == "systemd" { print $1; exit }')
	[ -n "$leader" ] && break
	sleep 0.1
done
[ -n "$leader" ] || { cat "$work/console.log"; not_ok "container booted"; finish; exit; }
in_ct() { timeout 120 nsenter -t "$leader" -a "$@"; }
# Until systemd in there has its bus, is-system-running fails at once
# ("offline", "Failed to connect to bus").
for _ in $(seq 60); do
	state=$(in_ct systemctl is-system-running --wait 2>&1)
	case "$state" in running | degraded) break ;; esac
	sleep 0.5
done
check "container booted (systemd is PID 1)" "systemd" "$(in_ct ps -o comm= -p 1)"
case "$state" in running | degraded) ok "system running ($state)" ;;
*) not_ok "system running"; echo "  state: $state"; tail -20 "$work/console.log" ;;
esac
[ "$state" = degraded ] && in_ct systemctl --failed --no-legend | sed 's/^/# failed unit: /'

# ---- install, as an operator would ----
out=$(in_ct env DEBIAN_FRONTEND=noninteractive dpkg -i "/mnt/oobd/$(basename "$DEB")" 2>&1)
rc=$?
check "dpkg -i: status" 0 "$rc"
[ "$rc" -eq 0 ] || printf '%s\n' "$out" | tail -20
check "fresh install: oobd.service enabled" enabled "$(in_ct systemctl is-enabled oobd.service)"
check "fresh install: oobd.service started" active "$(in_ct systemctl is-active oobd.service)"
# Documented choice: the service binds port 25 itself; socket activation
# is the operator's (systemctl enable --now oobd.socket).
check "fresh install: oobd.socket not enabled" disabled "$(in_ct systemctl is-enabled oobd.socket)"
check "directories 0750 oobd:oobd after a start" \
	"750 oobd:oobd 750 oobd:oobd 750 oobd:oobd" \
	"$(in_ct stat -c '%a %U:%G' /var/lib/oobd /var/log/oobd /var/spool/oobd | tr '\n' ' ' | sed 's/ $//')"

# ---- Type=notify: start returns once READY, so the port answers at once ----
in_ct systemctl stop oobd
check "stopped" inactive "$(in_ct systemctl is-active oobd)"
got=$(in_ct bash -c 'systemctl start oobd &&
	systemctl show -p ActiveState,SubState --value oobd | tr "\n" " " &&
	exec 3<>/dev/tcp/127.0.0.1/25 && read -r -t 10 line <&3 && echo "$line" | tr -d "\r" &&
	printf "QUIT\r\n" >&3')
check "start returned with the unit running and port 25 answering" \
	"active running 220 HOST ESMTP oobd" \
	"$(printf '%s' "$got" | tr '\n' ' ' | sed 's/ $//; s/ 220 [^ ]* ESMTP oobd$/ 220 HOST ESMTP oobd/')"
check "Type=notify" notify "$(in_ct systemctl show -p Type --value oobd)"
check "status text from sd_notify" "listening on 0.0.0.0:25; 0 sessions, 0 messages" \
	"$(in_ct systemctl show -p StatusText --value oobd | sed 's/; [0-9]* sessions/; 0 sessions/')"
check "directories 0750 after the restart (StateDirectoryMode=, LogsDirectoryMode=)" \
	"750 750" "$(in_ct stat -c '%a' /var/lib/oobd /var/log/oobd | tr '\n' ' ' | sed 's/ $//')"

# ---- a bounce, delivered and logged ----
swaks_to() { # RCPT [swaks options...]: the transcript
	local to=$1; shift
	in_ct swaks --server 127.0.0.1:25 --from '<>' --to "$to" "$@" 2>&1
}
t=$(swaks_to bounce@bounce.example.com --data @/mnt/oobd/sample-dsn.eml)
check "swaks: bounce accepted" 1 "$(printf '%s\n' "$t" | grep -c '^<-  250 2.0.0 OK ids=')"
logdir=/proc/$leader/root/var/log/oobd
recs=""
for _ in $(seq 100); do
	recs=$(cat "$logdir"/* 2>/dev/null | zstd -dcq 2>/dev/null)
	[ "$(printf '%s\n' "$recs" | grep -c .)" -ge 2 ] && break
	sleep 0.1
done
nodeid=$(cat "/proc/$leader/root/var/lib/oobd/nodeid" 2>/dev/null)
check "records in /var/log/oobd" \
	"Reception||bounce.example.com|$nodeid
OOB|bounce@bounce.example.com|nobody@example.net|550|5.1.1|InvalidRecipient|bounce.example.com|$nodeid" \
	"$(printf '%s\n' "$recs" | python3 -c '
import json, sys
for l in sys.stdin:
    if not l.strip():
        continue
    r = json.loads(l)
    if r["type"] == "Reception":
        print("|".join([r["type"], r["sender"], r["queue"], r["nodeid"]]))
    else:
        e = r["response"]["enhanced_code"]
        print("|".join([r["type"], r["sender"], r["recipient"],
                        str(r["response"]["code"]),
                        "%d.%d.%d" % (e["class"], e["subject"], e["detail"]),
                        r["bounce_classification"], r["queue"], r["nodeid"]]))')"
check "segment owned by oobd" oobd "$(in_ct sh -c 'stat -c %U /var/log/oobd/*' | sort -u)"

# ---- reload: a domain added to the domain file ----
pid_before=$(in_ct systemctl show -p MainPID --value oobd)
t=$(swaks_to x@added.example.net --quit-after RCPT)
check "before reload: RCPT for the new domain refused" 1 \
	"$(printf '%s\n' "$t" | grep -c '^<\*\* 550 5.7.1 ')"
in_ct sh -c 'printf "[\"added.example.net\"]\nlog_oob = \"LogThenDrop\"\n" >>/etc/oobd/listener_domains.toml'
in_ct systemctl reload oobd
check "reload: status 0" 0 $?
t=$(swaks_to x@added.example.net --quit-after RCPT)
check "after reload: RCPT for the new domain accepted" 1 \
	"$(printf '%s\n' "$t" | grep -c '^<-  250 2.1.5 ')"
check "reload kept the process" "$pid_before" "$(in_ct systemctl show -p MainPID --value oobd)"

# ---- journald levels: an error provoked, seen with -p err ----
in_ct cp /etc/oobd/listener_domains.toml /root/domains.good
in_ct sh -c 'printf "[\"broken.example.net\"]\nlog_oob = \"Sometimes\"\n" >>/etc/oobd/listener_domains.toml'
in_ct systemctl reload oobd
for _ in $(seq 100); do
	in_ct journalctl -u oobd -p err -o cat --no-pager | grep -q 'event=reload-failed' && break
	sleep 0.1
done
errs=$(in_ct journalctl -u oobd -p err -o cat --no-pager)
check "journalctl -p err: the reload error" 1 \
	"$(printf '%s\n' "$errs" | grep -c '^level=error event=reload-failed errors=1 ')"
check "journalctl -p err: only error lines" "" \
	"$(printf '%s\n' "$errs" | grep -v '^level=error ')"
check "journal priority of the error: 3" 3 \
	"$(in_ct journalctl -u oobd -o json --no-pager | grep 'event=reload-failed' | tail -1 |
		python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["PRIORITY"])')"
check "journal priority of listening: 6" 6 \
	"$(in_ct journalctl -u oobd -o json --no-pager | grep 'event=listening' | tail -1 |
		python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["PRIORITY"])')"
check "no <N> left in the journal's text" 0 \
	"$(in_ct journalctl -u oobd -o cat --no-pager | grep -c '^<[0-9]>')"
in_ct cp /root/domains.good /etc/oobd/listener_domains.toml
in_ct systemctl reload oobd

# ---- sandboxing in force ----
check "systemctl show: sandboxing" \
	"User=oobd
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectControlGroups=yes
MemoryDenyWriteExecute=yes
RestrictRealtime=yes
LockPersonality=yes
StateDirectoryMode=0750
LogsDirectoryMode=0750
CapabilityBoundingSet=cap_net_bind_service" \
	"$(for p in User NoNewPrivileges ProtectSystem ProtectHome PrivateTmp PrivateDevices \
		ProtectKernelTunables ProtectControlGroups MemoryDenyWriteExecute \
		RestrictRealtime LockPersonality StateDirectoryMode LogsDirectoryMode \
		CapabilityBoundingSet; do in_ct systemctl show -p "$p" oobd; done)"
mainpid=$(in_ct systemctl show -p MainPID --value oobd)
st=$(in_ct cat "/proc/$mainpid/status")
field() { printf '%s\n' "$st" | awk -v k="$1:" '$1 == k { print $2 }'; }
check "process: uid oobd" "$(in_ct id -u oobd)" "$(field Uid)"
check "process: no new privileges" 1 "$(field NoNewPrivs)"
check "process: seccomp filter" 2 "$(field Seccomp)"
check "process: only CAP_NET_BIND_SERVICE" "0000000000000400 0000000000000400" \
	"$(field CapEff) $(field CapBnd)"
check "process: /etc read-only" "Read-only file system" \
	"$(in_ct nsenter -t "$mainpid" -m sh -c 'touch /etc/oobd/x' 2>&1 | sed 's/.*: //')"
# /root holds domains.good (above); the service sees it empty.
check "process: /root and /home hidden (outside: 1 file in /root)" "0 0 (1)" \
	"$(in_ct nsenter -t "$mainpid" -m sh -c 'echo $(ls -A /root | wc -l) $(ls -A /home | wc -l)') ($(in_ct ls -A /root | grep -c domains.good))"

# ---- stop drains: an idle session gets 421, a message in DATA finishes ----
cat >"$work/share/drain.sh" <<'SH'
#!/bin/bash
# One idle session and one in DATA; systemctl stop; the DATA session ends
# its message after the stop began. Prints the replies that matter.
exec 3<>/dev/tcp/127.0.0.1/25 4<>/dev/tcp/127.0.0.1/25
reply() { # FD: the last line of a (multi-line) reply
	local l
	while read -r -t 30 l <&"$1"; do
		l=${l%$'\r'}
		case "$l" in [0-9][0-9][0-9]-*) ;; *) echo "$l"; return ;; esac
	done
	echo "no reply"
}
reply 3 >/dev/null; reply 4 >/dev/null
printf 'EHLO idle.example\r\n' >&3; reply 3 >/dev/null
printf 'EHLO busy.example\r\n' >&4; reply 4 >/dev/null
printf 'MAIL FROM:<>\r\n' >&4; reply 4 >/dev/null
printf 'RCPT TO:<bounce@bounce.example.com>\r\n' >&4; reply 4 >/dev/null
printf 'DATA\r\n' >&4; reply 4 >/dev/null
sed 's/$/\r/' /mnt/oobd/sample-dsn.eml | head -20 >&4
systemctl stop oobd &
stop=$!
for _ in $(seq 100); do
	journalctl -u oobd -o cat --no-pager | grep -q 'event=shutdown' && break
	sleep 0.1
done
echo "idle: $(reply 3)"
sed 's/$/\r/' /mnt/oobd/sample-dsn.eml | tail -n +21 >&4
printf '.\r\n' >&4
echo "data: $(reply 4)"
printf 'QUIT\r\n' >&4; reply 4 >/dev/null
wait $stop
echo "stop: $?"
SH
chmod +x "$work/share/drain.sh"
d=$(in_ct /mnt/oobd/drain.sh)
check "stop: the idle session gets 421 4.3.2" 1 "$(printf '%s\n' "$d" | grep -c '^idle: 421 4.3.2 ')"
check "stop: the message in DATA is accepted" 1 "$(printf '%s\n' "$d" | grep -c '^data: 250 2.0.0 OK ids=')"
check "stop: systemctl stop status 0" 1 "$(printf '%s\n' "$d" | grep -c '^stop: 0$')"
check "stopped: exit status 0, result success" "0 success inactive" \
	"$(in_ct systemctl show -p ExecMainStatus --value oobd) $(in_ct systemctl show -p Result --value oobd) $(in_ct systemctl is-active oobd)"
check "journal: drained then stopped" "event=drained event=stopped" \
	"$(in_ct journalctl -u oobd -o cat --no-pager | grep -o 'event=drained\|event=stopped' | tail -2 | tr '\n' ' ' | sed 's/ $//')"

# ---- socket activation ----
in_ct systemctl start oobd.socket
check "oobd.socket listening, oobd.service inactive" "active inactive" \
	"$(in_ct systemctl is-active oobd.socket) $(in_ct systemctl is-active oobd.service)"
before=$(in_ct journalctl -u oobd -o cat --no-pager | wc -l)
t=$(swaks_to bounce@bounce.example.com --data @/mnt/oobd/sample-dsn.eml)
check "socket activation: bounce accepted on the first connection" 1 \
	"$(printf '%s\n' "$t" | grep -c '^<-  250 2.0.0 OK ids=')"
check "socket activation: oobd.service started" active "$(in_ct systemctl is-active oobd.service)"
new=$(in_ct journalctl -u oobd -o cat --no-pager | tail -n +$((before + 1)))
check "socket activation: the socket taken from systemd" 1 \
	"$(printf '%s\n' "$new" | grep -c '^level=info event=socket-inherited addr=0.0.0.0:25$')"
check "socket activation: no socket left unused" 0 "$(printf '%s\n' "$new" | grep -c 'socket-unused')"
check "TriggeredBy" oobd.socket "$(in_ct systemctl show -p TriggeredBy --value oobd)"

echo "# container test: $(($(date +%s) - started)) s"
finish
