#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Build the seed corpora of the fuzz targets.

Usage: mkseeds.py SRCDIR CORPUSDIR OUTDIR

For every target, OUTDIR/NAME/ receives the hand-written seeds of
SRCDIR/fuzz/seeds/NAME/ and seeds derived from the shared corpus of real
messages and rule files (CORPUSDIR) and from the source tree's conf/. Every
seed starts with the target's flag byte (see each fuzz_NAME.c).
"""

import base64
import glob
import hashlib
import json
import os
import sys

src, corpus, out = sys.argv[1:4]
counts = {}


def put(target, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    counts[target] = counts.get(target, 0) + 1


def read(path):
    with open(path, "rb") as f:
        return f.read()


def files(pattern):
    return sorted(glob.glob(os.path.join(corpus, pattern)))


def crlf(data):
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data.replace(b"\n", b"\r\n")


def dot_stuff(data):
    lines = crlf(data).split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


# The hand-written seeds, as they are.
for d in sorted(glob.glob(os.path.join(src, "fuzz", "seeds", "*"))):
    for f in sorted(glob.glob(os.path.join(d, "*"))):
        put(os.path.basename(d), read(f))

messages = files("sisimai/maildir/*.eml") + files("kumomta/rfc3464/*.eml")
feedback = files("sisimai/maildir/arf-*.eml") + files("kumomta/rfc5965/*.eml")
# Decoders: every real message, DSNs (with --all on every other) and ARF.
for i, f in enumerate(messages + files("sisimai/maildir-crlf/*.eml") +
                      files("sisimai/maildir-cr/*.eml")):
    put("dsn", bytes([i & 1]) + read(f))
for f in feedback:
    put("arf", b"\0" + read(f))
for f in messages[::10]:
    put("arf", b"\0" + read(f))
# The non-standard bounce decoders: every real message; SES's JSON events.
for i, f in enumerate(messages):
    put("textbounce", bytes([i & 1]) + read(f))
for f in files("sisimai/maildir/lhost-amazonses-*.eml"):
    put("sesnotify", b"\0" + read(f))

# Sessions: real messages sent one line at a time, and pipelined.
session_msgs = files("kumomta/rfc3464/*.eml") + files("kumomta/rfc5965/*.eml")
session_msgs += messages[::20]
for i, f in enumerate(session_msgs):
    body = dot_stuff(read(f))
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    rcpt = b"b@bounce.example.com" if i % 3 else b"x@fbl.example.com"
    env = (b"EHLO mx.example.net\r\nMAIL FROM:<>\r\nRCPT TO:<" + rcpt +
           b">\r\nDATA\r\n")
    put("smtp_session", bytes([i % 3]) + env + body + b".\r\nQUIT\r\n")
    if i % 4 == 0:
        put("smtp_session", bytes([4 | i % 3]) +
            b"EHLO mx.example.net\r\nMAIL FROM:<>\r\nRCPT TO:<" + rcpt +
            b">\r\nDATA\r\n")

# X-KumoRef: the real header, header blocks, and encodings of payloads.
for f in files("kumomta/*/*.eml"):
    text = read(f).replace(b"\r\n", b"\n")
    head = text.split(b"\n\n", 1)[0] + b"\n"
    put("kumoref", b"\1" + head)
    for line in head.split(b"\n"):
        if line.lower().startswith(b"x-kumoref:"):
            put("kumoref", b"\0" + line.split(b":", 1)[1])
for payload in ({"recipient": "a@example.com"},
                {"campaign": "c", "tenant": "t", "n": 1, "f": 1.5,
                 "l": [1, None, True], "o": {"k": "v\u00e9"}}):
    p = dict(payload)
    p["_@_"] = "\\_/"
    enc = base64.b64encode(json.dumps(p, sort_keys=True,
                                      separators=(",", ":")).encode())
    folded = b"\r\n\t".join(enc[i:i + 75] for i in range(0, len(enc), 75))
    put("kumoref", b"\0" + folded)
    put("kumoref", b"\1Subject: x\nX-Other: 1\nX-KumoRef: " + folded + b"\n")

# Rule files with a few subjects to classify after the NUL.
subjects = (b"550 5.1.1 <nobody@example.com>: Recipient address rejected: "
            b"User unknown in local recipient table\n"
            b"452 4.2.2 The email account that you tried to reach is over "
            b"quota\n"
            b"554 5.7.1 Service unavailable; Client host blocked using "
            b"zen.spamhaus.org\n"
            b"421 4.7.0 Try again later, closing connection\n"
            b"550 5.7.1 \xe2\x80\x9cmessage rejected\xe2\x80\x9d \xff\n")
for f in files("kumomta/bounce_classifier/*.toml") + [
        os.path.join(src, "conf", "bounce_rules.toml")]:
    put("rules", b"\0" + read(f) + b"\0" + subjects)

# Configuration and listener domains from the source tree's examples.
put("config", b"\0" + read(os.path.join(src, "conf", "oobd.toml")))
put("domains", b"\0" + read(os.path.join(src, "conf",
                                         "listener_domains.toml")))

for t in sorted(counts):
    print("seeds %s: %d" % (t, counts[t]))
