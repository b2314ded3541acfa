#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# config_check.sh - `oobd -t -c FILE`: a good configuration exits 0 with
# one "configuration ok" line; each kind of error (in oobd.toml, in a
# listener-domains file, in a bounce rule file) exits 1 with a line that
# names the file and the key at fault, and every error is reported, not
# only the first.
set -u

: "${OOBD_BIN:?}" "${OOBD_SRCDIR:?}"
. "$OOBD_SRCDIR/tests/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/oobd-config-check.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM HUP
cd "$TMP" || exit 1

cat >rules.toml <<'EOF'
[rules]
InvalidRecipient = ["^5\\d\\d 5\\.1\\.1 "]
EOF
cat >domains.toml <<'EOF'
["bounce.example.com"]
log_oob = "LogThenDrop"
log_arf = "LogThenDrop"
["*.wild.example"]
log_oob = true
[listener."127.0.0.1:2525"."per.example"]
log_oob = "LogThenRelay"
["relay.example"]
relay_from = ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]
EOF
# good.toml: every file it names exists and is valid. Relative paths are
# relative to the directory oobd is started in ($TMP here).
cat >good.toml <<'EOF'
[listener]
listen = ["127.0.0.1:2525", "[::1]:2525"]
hostname = "mx.example.com"
max_message_size = "20MB"
max_recipients = 100
relay_hosts = ["127.0.0.0/8", "::1"]
listener_domains = ["domains.toml"]
state_dir = "state"
idle_timeout = "5 minutes"
[logs]
log_dir = "log"
compression = "zstd"
max_file_size = "1GB"
max_segment_duration = "5 minutes"
fsync = true
meta = []
headers = []
[bounce_classifier]
files = ["rules.toml"]
[relay]
next_hop = "[192.0.2.25]:25"
EOF

# run NAME FILE: oobd -t -c FILE; stdout, stderr and status in NAME.*
run() {
	timeout 30 "$OOBD_BIN" -t -c "$2" >"$1.out" 2>"$1.err"
	echo $? >"$1.rc"
}

run good good.toml
check "good config: exit status" 0 "$(cat good.rc)"
check "good config: stdout" "oobd: good.toml: configuration ok" \
    "$(cat good.out)"
check "good config: nothing on stderr" "" "$(cat good.err)"
check "good config: -t creates no log directory" no \
    "$( [ -e log ] && echo yes || echo no)"
check "good config: -t creates no state directory" no \
    "$( [ -e state ] && echo yes || echo no)"

# bad NAME FILE EXPECTED-STDERR: -t exits 1, prints nothing on stdout and
# exactly these error lines on stderr.
bad() {
	run "$1" "$2"
	check "$1: exit status" 1 "$(cat "$1.rc")"
	check "$1: nothing on stdout" "" "$(cat "$1.out")"
	check "$1: error lines" "$3" "$(cat "$1.err")"
}

# variant NAME SED-SCRIPT: good.toml edited into NAME.toml
variant() { sed -e "$2" good.toml >"$1.toml"; }

variant unknown-key 's/^hostname = .*/&\nhostnme = "typo.example"/'
bad unknown-key unknown-key.toml \
    "oobd: unknown-key.toml: [listener] hostnme: unknown key"

variant unknown-section 's/^\[logs\]/[log]\nx = 1\n&/'
bad unknown-section unknown-section.toml \
    "oobd: unknown-section.toml: [log]: unknown section"

variant bad-size 's/"20MB"/"20 parsecs"/'
bad bad-size bad-size.toml \
    'oobd: bad-size.toml: [listener] max_message_size: expected a size such as "20MB"'

variant bad-duration 's/^max_segment_duration = .*/max_segment_duration = "5 fortnights"/'
bad bad-duration bad-duration.toml \
    'oobd: bad-duration.toml: [logs] max_segment_duration: expected a duration such as "5 minutes"'

variant bad-compression 's/"zstd"/"gzip"/'
bad bad-compression bad-compression.toml \
    'oobd: bad-compression.toml: [logs] compression: expected "zstd" or "none"'

variant bad-type 's/^fsync = true/fsync = "yes"/'
bad bad-type bad-type.toml \
    'oobd: bad-type.toml: [logs] fsync: expected true or false'

variant no-port 's/"127.0.0.1:2525", //'
sed -i 's/"\[::1\]:2525"/"[::1]"/' no-port.toml
bad no-port no-port.toml \
    'oobd: no-port.toml: [listener] listen: "[::1]" is not "ip:port" or "[ipv6]:port"'

variant bad-address 's/"127.0.0.1:2525"/"127.0.0.256:2525"/'
bad bad-address bad-address.toml \
    'oobd: bad-address.toml: [listener] listen: "127.0.0.256:2525" is not "ip:port" or "[ipv6]:port"'

variant bad-port 's/"127.0.0.1:2525"/"127.0.0.1:65536"/'
bad bad-port bad-port.toml \
    'oobd: bad-port.toml: [listener] listen: "127.0.0.1:65536" is not "ip:port" or "[ipv6]:port"'

variant bad-relay-hosts 's|"127.0.0.0/8"|"127.0.0.1/8"|'
bad bad-relay-hosts bad-relay-hosts.toml \
    'oobd: bad-relay-hosts.toml: [listener] relay_hosts: 127.0.0.1/8 is not a valid CIDR: host part of address was not zero. Did you mean 127.0.0.0/8?'

# Listener-domains files: the error names the domain file and the entry.
sed 's/log_oob = true/log_oob = "Bogus"/' domains.toml >bogus.toml
variant bad-disposition 's/"domains.toml"/"bogus.toml"/'
bad bad-disposition bad-disposition.toml \
    "oobd: bogus.toml: [\"*.wild.example\"].log_oob: invalid value for field 'log_oob': expected a boolean value or one of 'Ignore', 'LogThenDrop' or 'LogThenRelay'"

sed 's|"192.0.2.0/24"|"192.0.2.1/24"|' domains.toml >hostbits.toml
variant bad-relay-from 's/"domains.toml"/"hostbits.toml"/'
bad bad-relay-from bad-relay-from.toml \
    "oobd: hostbits.toml: [\"relay.example\"].relay_from: invalid value for field 'relay_from': 192.0.2.1/24 is not a valid CIDR: host part of address was not zero. Did you mean 192.0.2.0/24?"

printf '{"bounce.example.com": {"log_oob": "LogThenDrop", "relay_too": true}}\n' \
    >typo.json
variant bad-domain-field 's/"domains.toml"/"typo.json"/'
bad bad-domain-field bad-domain-field.toml \
    "oobd: typo.json: [\"bounce.example.com\"].relay_too: unknown field 'relay_too', expected one of 'log_oob', 'log_arf', 'relay_to', 'relay_from', 'relay_from_authz', 'relay_host' or 'ttl'"

printf '[listener."localhost"."a.example"]\nlog_oob = true\n' >listener.toml
variant bad-listener-key 's/"domains.toml"/"listener.toml"/'
bad bad-listener-key bad-listener-key.toml \
    'oobd: listener.toml: listener."localhost": expected a listener address "ip:port", "[ipv6]:port" or "*"'

variant missing-domains 's/"domains.toml"/"domains.toml", "absent.toml"/'
bad missing-domains missing-domains.toml \
    'oobd: missing-domains.toml: [listener] listener_domains: absent.toml: No such file or directory'

# Rule files: invalid regex (file, label, pattern), unknown extension.
printf '[rules]\nInvalidRecipient = ["^5\\\\d\\\\d 5\\\\.1\\\\.1 ", "(unclosed"]\n' >regex.toml
variant bad-regex 's/"rules.toml"/"regex.toml"/'
bad bad-regex bad-regex.toml \
    'oobd: regex.toml: label "InvalidRecipient", pattern "(unclosed": invalid regex: missing closing parenthesis (at offset 9)'

cp rules.toml rules.yaml
variant bad-extension 's/"rules.toml"/"rules.yaml"/'
bad bad-extension bad-extension.toml \
    'oobd: bad-extension.toml: [bounce_classifier] files: rules.yaml: unsupported file type: the name must end in .toml or .json'

variant missing-rules 's/"rules.toml"/"rules.toml", "absent-rules.toml"/'
bad missing-rules missing-rules.toml \
    'oobd: missing-rules.toml: [bounce_classifier] files: absent-rules.toml: No such file or directory'

# Every error at once: in oobd.toml, in a domain file and in two rule
# files, each file in the order named.
variant many 's/"20MB"/"20 parsecs"/; s/^hostname = .*/&\nhostnme = "typo.example"/; s/"domains.toml"/"bogus.toml"/; s/"rules.toml"/"regex.toml", "rules.yaml"/'
bad many many.toml "oobd: many.toml: [listener] hostnme: unknown key
oobd: many.toml: [listener] max_message_size: expected a size such as \"20MB\"
oobd: bogus.toml: [\"*.wild.example\"].log_oob: invalid value for field 'log_oob': expected a boolean value or one of 'Ignore', 'LogThenDrop' or 'LogThenRelay'
oobd: regex.toml: label \"InvalidRecipient\", pattern \"(unclosed\": invalid regex: missing closing parenthesis (at offset 9)
oobd: many.toml: [bounce_classifier] files: rules.yaml: unsupported file type: the name must end in .toml or .json"

# Values sent to SMTP peers: a CR or LF would add a reply of its own.
variant banner-crlf 's/^hostname = .*/&\nbanner = "ok\\r\\n250 injected"/'
bad banner-crlf banner-crlf.toml \
    'oobd: banner-crlf.toml: [listener] banner: control character (0x0d) not allowed: the value is sent to SMTP peers'
variant hostname-lf 's/^hostname = .*/hostname = "mx.example.com\\n250 x"/'
bad hostname-lf hostname-lf.toml \
    'oobd: hostname-lf.toml: [listener] hostname: control character (0x0a) not allowed: the value is sent to SMTP peers'
variant hostname-space 's/^hostname = .*/hostname = "mx.example.com x"/'
bad hostname-space hostname-space.toml \
    'oobd: hostname-space.toml: [listener] hostname: space (0x20) not allowed: the value is sent to SMTP peers'

# Directories the daemon must create or write: a parent that is a file,
# a directory that is a file.
: >afile
variant log-dir-file 's|^log_dir = .*|log_dir = "afile/log"|'
bad log-dir-file log-dir-file.toml \
    'oobd: log-dir-file.toml: [logs] log_dir: afile/log: cannot be created: afile is not a directory'
variant state-dir-file 's|^state_dir = .*|state_dir = "afile"|'
bad state-dir-file state-dir-file.toml \
    'oobd: state-dir-file.toml: [listener] state_dir: afile: not a directory'
variant spool-dir-file 's|^next_hop = .*|&\nspool_dir = "afile/x/spool"|'
bad spool-dir-file spool-dir-file.toml \
    'oobd: spool-dir-file.toml: [relay] spool_dir: afile/x/spool: cannot be created: afile is not a directory'
check "bad directories: -t creates nothing" "no no" \
    "$( [ -e log ] && echo yes || echo no) $( [ -e state ] && echo yes || echo no)"

# The admin listener on an SMTP listener's address.
variant admin-same 's/^\[bounce_classifier\]/[admin]\nlisten = "127.0.0.1:2525"\n&/'
bad admin-same admin-same.toml \
    'oobd: admin-same.toml: [admin] listen: "127.0.0.1:2525" overlaps [listener] listen "127.0.0.1:2525"'
variant admin-wild 's/"127.0.0.1:2525"/"0.0.0.0:2525"/; s/^\[bounce_classifier\]/[admin]\nlisten = "127.0.0.1:2525"\n&/'
bad admin-wild admin-wild.toml \
    'oobd: admin-wild.toml: [admin] listen: "127.0.0.1:2525" overlaps [listener] listen "0.0.0.0:2525"'

# A certificate without its key: one error, no "(null)".
variant cert-no-key 's/^hostname = .*/&\ntls_certificate = "cert.pem"/'
bad cert-no-key cert-no-key.toml \
    'oobd: cert-no-key.toml: [listener] tls_certificate and tls_private_key go together'

# No listener-domains file: valid, but it accepts nothing (a warning).
variant no-domains 's/^listener_domains = .*/listener_domains = []/'
run no-domains no-domains.toml
check "empty listener_domains: exit status" 0 "$(cat no-domains.rc)"
check "empty listener_domains: ok" "oobd: no-domains.toml: configuration ok" \
    "$(cat no-domains.out)"
check "empty listener_domains: warning" \
    "oobd: no-domains.toml: warning: [listener] listener_domains: empty: every recipient is refused (550 5.7.1)" \
    "$(cat no-domains.err)"

# A syntax error in oobd.toml itself: the TOML parser's position.
printf '[listener]\nlisten = ["127.0.0.1:2525"\n' >syntax.toml
run syntax syntax.toml
check "syntax error: exit status" 1 "$(cat syntax.rc)"
check "syntax error: names the file, line and column" \
    "oobd: syntax.toml:2:28: Error while parsing array: encountered end-of-file" \
    "$(cat syntax.err)"

run missing absent-config.toml
check "missing config: exit status" 1 "$(cat missing.rc)"
check "missing config: error line" \
    "oobd: absent-config.toml: No such file or directory" "$(cat missing.err)"

finish
