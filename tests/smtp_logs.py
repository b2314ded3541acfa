# SPDX-License-Identifier: Apache-2.0
"""The log files as the daemon writes them: zstd segments named for their
UTC open time (YYYYMMDD-HHMMSS.fraction), rotation by max_file_size and by
max_segment_duration, completed segments read-only, segments found at start
made read-only, compression = "none" as plain JSON lines, and a write
failure (a full file system) answered 451 4.3.0, never 250."""

import calendar
import json
import os
import re
import resource
import signal
import subprocess
import tempfile
import time

import oobdtest
from oobdtest import Client, Oobd, check, corpus, finish, not_ok, to_crlf

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
"""
DSN = corpus("kumomta/rfc3464/1.eml")
NAME = re.compile(r"^(\d{8})-(\d{6})(\.\d{3}|\.\d{6}|\.\d{9})?$")
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def send_dsn(port, rcpt="b@bounce.example.com"):
    """One DSN in its own session; the reply to the end of DATA."""
    c = Client(port, timeout=30)
    try:
        c.line()
        c.cmd("EHLO logs.test.example")
        c.cmd("MAIL FROM:<>")
        c.cmd("RCPT TO:<%s>" % rcpt)
        if not c.cmd("DATA").startswith("354"):
            return None
        c.send(to_crlf(DSN) + b".\r\n")
        r = c.line()
        c.cmd("QUIT")
        return r
    finally:
        c.close()


def segments(log_dir):
    return sorted(n for n in os.listdir(log_dir) if not n.startswith("."))


def read_segment(path, complete=True):
    """The text of a segment: zstdcat for zstd files, as tailers read them.
    A complete segment is one whole zstd frame; an open one (complete=False)
    is a frame not yet finished, which zstdcat reads up to its last flushed
    block and then reports as a premature end."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head == ZSTD_MAGIC:
        p = subprocess.run(["zstdcat", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        if p.returncode != 0 and (complete or
                                  b"premature end" not in p.stderr):
            raise RuntimeError("zstdcat %s: %s" % (path, p.stderr))
        return p.stdout.decode("utf-8")
    with open(path, encoding="utf-8") as f:
        return f.read()


def read_only(path):
    return os.stat(path).st_mode & 0o222 == 0


def name_time(name):
    m = NAME.match(name)
    return calendar.timegm(time.strptime(m.group(1) + m.group(2),
                                         "%Y%m%d%H%M%S"))


def ids_of(text):
    """The message ids in a segment's records, in order, one per record."""
    return [json.loads(l)["id"] for l in text.splitlines()]


def wait_for(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


# ---- zstd segments: naming, content, read-only on close, at start ----
d = Oobd(domains=DOMAINS)
try:
    os.makedirs(d.log_dir)
    # A segment left by an earlier run (complete, still writable) and a
    # dot file, which is not a segment.
    old = os.path.join(d.log_dir, "20250101-000000.5")
    subprocess.run(["zstd", "-q", "-o", old], input=b'{"type":"Reception"}\n',
                   check=True)
    os.chmod(old, 0o644)
    dot = os.path.join(d.log_dir, ".keep")
    open(dot, "w").close()
    os.chmod(dot, 0o644)
    before = int(time.time())
    d.start()
    check("oobd ready", True, wait_for(
        lambda: "event=ready" in d.stderr_text(), 30))
    check("segment found at start made read-only", True, read_only(old))
    check("dot file left writable", 0o644, os.stat(dot).st_mode & 0o777)
    r1 = send_dsn(d.port)
    r2 = send_dsn(d.port)
    after = int(time.time()) + 1
    check("first DSN accepted", True, r1.startswith("250 2.0.0 OK ids="))
    check("second DSN accepted", True, r2.startswith("250 2.0.0 OK ids="))
    new = [n for n in segments(d.log_dir) if n != os.path.basename(old)]
    check("one new segment", 1, len(new))
    name = new[0] if new else ""
    check("segment name YYYYMMDD-HHMMSS.fraction", True,
          bool(NAME.match(name)))
    if NAME.match(name):
        check("segment named for its UTC open time", True,
              before <= name_time(name) <= after)
    seg = os.path.join(d.log_dir, name)
    with open(seg, "rb") as f:
        check("segment is zstd", ZSTD_MAGIC, f.read(4))
    check("open segment writable", False, read_only(seg))
    # Acknowledged means readable now, from the open segment.
    ids = [r.split("ids=")[1] for r in (r1, r2)]
    check("records readable before close (zstdcat)",
          [ids[0], ids[0], ids[1], ids[1]],
          ids_of(read_segment(seg, complete=False)))
    check("SIGTERM exit status", 0, d.stop())
    check("segment read-only after shutdown", True, read_only(seg))
    check("closed segment: same records", [ids[0], ids[0], ids[1], ids[1]],
          ids_of(read_segment(seg)))
    p = subprocess.run(["zstd", "-tq", seg], stderr=subprocess.PIPE)
    check("closed segment: a complete zstd frame (zstd -t)", 0, p.returncode)
    check("old segment untouched", '{"type":"Reception"}\n', read_segment(old))
except Exception as e:
    not_ok("zstd segments harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()


# ---- a torn segment left by a crash is repaired at start, and a SIGTERM
# that comes as soon as the listener answers still ends oobd cleanly ----
LINES = ['{"type":"Reception","id":"%032x","size":%d}' % (i, i * 7919 % 100003)
         for i in range(100000)]
RAW = ("\n".join(LINES) + "\n").encode()
FRAME = subprocess.run(["zstd", "-1", "-q", "-c"], input=RAW,
                       stdout=subprocess.PIPE, check=True).stdout
d = Oobd(domains=DOMAINS)
try:
    os.makedirs(d.log_dir)
    results = []
    for i in range(3):
        torn = os.path.join(d.log_dir, "20250101-00000%d.500" % i)
        with open(torn, "wb") as f:
            f.write(FRAME[:-200])       # the last block cut short
        os.chmod(torn, 0o644)
        d.start()
        rc = d.stop()
        kept = read_segment(torn).splitlines()
        results.append((rc, read_only(torn), 0 < len(kept) < len(LINES),
                        kept == LINES[:len(kept)]))
    check("torn segment repaired at start, SIGTERM at once: exit 0, "
          "read-only, a prefix of the records kept", [(0, True, True, True)] * 3,
          results)
except Exception as e:
    not_ok("torn segment harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# ---- rotation by size: max_file_size = 1 byte, one segment per commit ----
d = Oobd(domains=DOMAINS, logs={"max_file_size": "1"})
try:
    d.start()
    replies = [send_dsn(d.port) for _ in range(4)]
    ids = [r.split("ids=")[1] for r in replies if r.startswith("250 ")]
    check("max_file_size 1: four DSNs accepted", 4, len(ids))
    segs = segments(d.log_dir)
    check("max_file_size 1: a segment per message", 4, len(segs))
    check("max_file_size 1: every segment closed, read-only", [True] * 4,
          [read_only(os.path.join(d.log_dir, s)) for s in segs])
    check("max_file_size 1: each segment holds one message's records",
          [[i, i] for i in ids],
          [ids_of(read_segment(os.path.join(d.log_dir, s))) for s in segs])
    check("max_file_size 1: names distinct and well-formed", (4, 4),
          (len(set(segs)), sum(bool(NAME.match(s)) for s in segs)))
    check("SIGTERM exit status", 0, d.stop())
except Exception as e:
    not_ok("rotation by size harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# ---- rotation by size: a segment closes once it holds max_file_size ----
LIMIT = 6000
d = Oobd(domains=DOMAINS, logs={"max_file_size": '"%dB"' % LIMIT})
try:
    d.start()
    replies = [send_dsn(d.port) for _ in range(10)]
    check("max_file_size 6000B: ten DSNs accepted", 10,
          sum(r.startswith("250 ") for r in replies))
    check("SIGTERM exit status", 0, d.stop())
    segs = segments(d.log_dir)
    texts = [read_segment(os.path.join(d.log_dir, s)) for s in segs]
    sizes = [len(t.encode()) for t in texts]
    # A commit is one message's two records; a segment is closed after the
    # commit that brings it to LIMIT uncompressed bytes or more.
    problems = []
    for i, t in enumerate(texts):
        lines = t.splitlines(True)
        last = sum(len(l.encode()) for l in lines[-2:])
        if i < len(texts) - 1 and not sizes[i] >= LIMIT:
            problems.append("segment %d closed at %d bytes" % (i, sizes[i]))
        if sizes[i] - last >= LIMIT:
            problems.append("segment %d went on past the limit" % i)
        if len(lines) % 2:
            problems.append("segment %d splits a commit" % i)
    check("max_file_size 6000B: segments closed at the limit", [], problems)
    check("max_file_size 6000B: all records kept", 20,
          sum(len(t.splitlines()) for t in texts))
    check("max_file_size 6000B: more than one segment", True, len(segs) > 1)
except Exception as e:
    not_ok("rotation by size 6000B harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# ---- rotation by age: max_segment_duration ----
d = Oobd(domains=DOMAINS, logs={"max_segment_duration": '"1s"'})
try:
    d.start()
    r1 = send_dsn(d.port)
    segs = segments(d.log_dir)
    check("max_segment_duration: first segment", 1, len(segs))
    first = os.path.join(d.log_dir, segs[0]) if segs else ""
    # The timer closes it once it is past its deadline, with no new record.
    closed = wait_for(lambda: read_only(first), 15)
    check("max_segment_duration: idle segment closed, read-only", True, closed)
    r2 = send_dsn(d.port)
    check("SIGTERM exit status", 0, d.stop())
    segs = segments(d.log_dir)
    check("max_segment_duration: the next message opened a new segment", 2,
          len(segs))
    check("max_segment_duration: records split by segment",
          [[r1.split("ids=")[1]] * 2, [r2.split("ids=")[1]] * 2],
          [ids_of(read_segment(os.path.join(d.log_dir, s))) for s in segs])
except Exception as e:
    not_ok("rotation by age harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# ---- compression = "none": plain JSON lines ----
d = Oobd(domains=DOMAINS, logs={"compression": '"none"'})
try:
    d.start()
    r = send_dsn(d.port)
    id_ = r.split("ids=")[1]
    segs = segments(d.log_dir)
    check("plain: one segment", 1, len(segs))
    seg = os.path.join(d.log_dir, segs[0])
    check("plain: name YYYYMMDD-HHMMSS.fraction", True,
          bool(NAME.match(segs[0])))
    with open(seg, "rb") as f:
        raw = f.read()
    check("plain: JSON lines, each ending in a newline", (2, True, True),
          (raw.count(b"\n"), raw.startswith(b'{"type":"Reception","id":"%s"'
                                            % id_.encode()),
           raw.endswith(b"\n")))
    check("plain: the records", [id_, id_], ids_of(raw.decode()))
    check("SIGTERM exit status", 0, d.stop())
    check("plain: read-only after shutdown", True, read_only(seg))
    with open(seg, "rb") as f:
        check("plain: unchanged by the close", raw, f.read())
except Exception as e:
    not_ok("plain harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()


# ---- a write failure answers 451 4.3.0, never 250 ----
def full_disk(compression, name):
    """log_dir on a 256 KiB tmpfs filled up to a few KB by a filler file:
    messages get 250 until the log cannot be written, then 451 4.3.0 and
    never 250 while it stays full; every 250's records are readable; once
    space is freed, 250 again."""
    tmp = tempfile.mkdtemp(prefix="oobd-test-")
    mnt = os.path.join(tmp, "log")
    os.makedirs(mnt)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k",
                              "tmpfs", mnt]).returncode == 0
    if not mounted:
        not_ok("%s: mount a tmpfs for log_dir" % name)
        os.rmdir(mnt)
        os.rmdir(tmp)
        return
    # No free-space floor: this fills the disk to ENOSPC itself (the
    # floors, min_free_space and min_free_inodes, are log_full_disk.py's).
    d = Oobd(domains=DOMAINS, tmp=tmp, logs={"compression": compression,
                                             "min_free_space": "0",
                                             "min_free_inodes": "0"})
    try:
        filler = os.path.join(mnt, ".filler")
        with open(filler, "wb") as f:
            f.write(os.urandom(256 * 1024 - 24 * 1024))
        d.start()
        replies = []
        for _ in range(300):
            r = send_dsn(d.port)
            replies.append(r)
            if not r.startswith("250 "):
                break
        acked = [r.split("ids=")[1] for r in replies if r.startswith("250 ")]
        check("%s: some DSNs accepted before the disk is full" % name, True,
              len(acked) > 0)
        check("%s: then 451 4.3.0" % name,
              "451 4.3.0 Error: local error writing the log: No space left "
              "on device", replies[-1])
        more = [send_dsn(d.port) for _ in range(3)]
        check("%s: still 451 while full" % name, [replies[-1]] * 3, more)
        os.unlink(filler)
        again = send_dsn(d.port)
        check("%s: 250 once there is space" % name, True,
              again.startswith("250 2.0.0 OK ids="))
        if again.startswith("250 "):
            acked.append(again.split("ids=")[1])
        check("%s: SIGTERM exit status" % name, 0, d.stop())
        # The segment that failed may keep its torn tail while the disk is
        # full; the next start repairs it, so that every line is a record.
        d.start()
        check("%s: SIGTERM exit status after restart" % name, 0, d.stop())
        check("%s: every segment read-only after restart" % name, [],
              [s for s in segments(mnt)
               if not read_only(os.path.join(mnt, s))])
        logged = []
        for s in segments(mnt):
            logged += ids_of(read_segment(os.path.join(mnt, s)))
        missing = [i for i in acked if logged.count(i) != 2]
        check("%s: every acknowledged message has its two records" % name,
              [], missing)
    except Exception as e:
        not_ok("%s harness" % name, repr(e) + "\n" + d.stderr_text())
    finally:
        d.stop()
        subprocess.run(["umount", mnt])
        d.cleanup()


if os.geteuid() == 0:
    full_disk('"none"', "full disk, plain")
    full_disk('"zstd"', "full disk, zstd")
else:
    print("# not root: the full-disk checks (a tmpfs log_dir) are left out")


# ---- a file size limit (EFBIG): 451 for the failing commit, then 250 on a
# fresh segment. Works without root. ----
def limit_fsize():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))


d = Oobd(domains=DOMAINS, logs={"compression": '"none"'})
try:
    d.stderr = open(os.path.join(d.tmp, "stderr.log"), "ab")
    d.proc = subprocess.Popen([oobdtest.OOBD, "-c", d.conf], stderr=d.stderr,
                              preexec_fn=limit_fsize)
    deadline = time.time() + 20
    while time.time() < deadline and d.proc.poll() is None:
        try:
            Client(d.port, timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    replies = []
    for _ in range(100):
        r = send_dsn(d.port)
        replies.append(r)
        if not r.startswith("250 "):
            break
    check("file size limit: 451 4.3.0 when the segment cannot grow",
          "451 4.3.0 Error: local error writing the log: File too large",
          replies[-1])
    acked = [r.split("ids=")[1] for r in replies if r.startswith("250 ")]
    r = send_dsn(d.port)
    check("file size limit: the next message gets 250 on a fresh segment",
          True, r.startswith("250 2.0.0 OK ids="))
    if r.startswith("250 "):
        acked.append(r.split("ids=")[1])
    check("SIGTERM exit status", 0, d.stop())
    segs = segments(d.log_dir)
    logged = []
    for s in segs:
        logged += ids_of(read_segment(os.path.join(d.log_dir, s)))
    check("file size limit: every acknowledged message has its two records",
          [], [i for i in acked if logged.count(i) != 2])
    check("file size limit: the failed segment is closed, read-only", True,
          len(segs) >= 2 and read_only(os.path.join(d.log_dir, segs[0])))
except Exception as e:
    not_ok("file size limit harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

finish()
