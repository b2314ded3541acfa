# SPDX-License-Identifier: Apache-2.0
"""[logs] retention with the real daemon: finished (read-only) segments
whose last record is older than the retention are removed, with their
count and bytes in the metrics and one log line each; the segment being
written is never removed however old its records, files not named as
segments and dot files stay, and without retention nothing is removed."""

import os
import re
import signal
import time
import urllib.request

from oobdtest import (SRCDIR, Oobd, check, finish, free_port, send_message,
                      to_crlf)

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
"""
with open(os.path.join(SRCDIR, "tests", "data", "sample-dsn.eml"), "rb") as f:
    DSN = to_crlf(f.read())
DAY = 86400


def metric(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        text = r.read().decode()
    m = re.search(r"^%s (\S+)$" % name, text, re.M)
    return float(m.group(1)) if m else None


def plant(d, name, age, mode=0o444, data=b'{"type":"Reception"}\n'):
    """A file in the log directory, last written age seconds ago."""
    path = os.path.join(d.log_dir, name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    t = time.time() - age
    os.utime(path, (t, t))
    return len(data)


def wait(pred, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


# ---- old finished segments go at the first sweep; the rest stays ----
admin = free_port()
d = Oobd(domains=DOMAINS, admin="127.0.0.1:%d" % admin,
         logs={"retention": '"30 days"', "compression": '"none"'})
try:
    os.makedirs(d.log_dir)
    old = [plant(d, "20250101-000000", 40 * DAY, data=b"x" * 1000),
           plant(d, "20250102-000000.123", 31 * DAY, data=b"y" * 234)]
    plant(d, "20251201-000000", 29 * DAY)         # younger: kept
    plant(d, "notes.txt", 90 * DAY)                # not a segment: kept
    plant(d, ".20250101-000000", 90 * DAY)         # dot file: kept
    plant(d, "20250101-000000.12", 90 * DAY)       # not a segment name
    d.start()
    gone = wait(lambda: not os.path.exists(
        os.path.join(d.log_dir, "20250101-000000")) and not os.path.exists(
        os.path.join(d.log_dir, "20250102-000000.123")))
    check("segments older than 30 days removed", True, gone)
    check("the rest kept", sorted(["20251201-000000", "notes.txt",
                                   ".20250101-000000",
                                   "20250101-000000.12"]),
          sorted(os.listdir(d.log_dir)))
    check("metrics: segments removed", 2.0,
          metric(admin, "oobd_log_segments_removed_total"))
    check("metrics: bytes removed", float(sum(old)),
          metric(admin, "oobd_log_segments_removed_bytes_total"))
    lines = [x for x in d.stderr_text().splitlines()
             if "event=log-segment-removed" in x]
    check("one log line per removal, with file and bytes",
          ["file=20250101-000000 bytes=1000", "file=20250102-000000.123 "
           "bytes=234"],
          sorted(re.search(r"file=\S+ bytes=\d+", x).group(0)
                 for x in lines))
finally:
    d.cleanup()

# ---- the open segment is never removed; once closed and old, it goes ----
admin = free_port()
d = Oobd(domains=DOMAINS, admin="127.0.0.1:%d" % admin,
         logs={"retention": '"3 seconds"', "compression": '"none"'})
try:
    d.start()
    r = send_message(d.port, "", ["bounce@bounce.example.com"], DSN)
    check("a bounce accepted", True, r[5].startswith("250 "))
    names = os.listdir(d.log_dir)
    check("one open segment", 1, len(names))
    seg = os.path.join(d.log_dir, names[0])
    size = os.path.getsize(seg)
    # Its records are 10 seconds old; it is still being written.
    t = time.time() - 10
    os.utime(seg, (t, t))
    time.sleep(3)
    check("the open segment stays, however old its records", True,
          os.path.exists(seg))
    check("metrics: nothing removed", 0.0,
          metric(admin, "oobd_log_segments_removed_total"))
    os.kill(d.proc.pid, signal.SIGUSR1)
    check("SIGUSR1 finishes it (read-only)", True,
          wait(lambda: os.path.exists(seg) and
               not os.stat(seg).st_mode & 0o222))
    check("then, past the retention, it is removed", True,
          wait(lambda: not os.path.exists(seg)))
    check("metrics: 1 segment, its bytes", (1.0, float(size)),
          (metric(admin, "oobd_log_segments_removed_total"),
           metric(admin, "oobd_log_segments_removed_bytes_total")))
finally:
    d.cleanup()

# ---- without retention, nothing is removed ----
d = Oobd(domains=DOMAINS, logs={"compression": '"none"'})
try:
    os.makedirs(d.log_dir)
    plant(d, "20200101-000000", 2000 * DAY)
    d.start()
    time.sleep(2)
    check("no retention: a years-old segment stays", True,
          os.path.exists(os.path.join(d.log_dir, "20200101-000000")))
finally:
    d.cleanup()
finish()
