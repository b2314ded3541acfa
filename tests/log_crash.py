# SPDX-License-Identifier: Apache-2.0
"""Crash safety of the log files: a zstd segment cut at any byte, as a kill
or a crash of the machine can leave it.

oobd receives a few bounces and is killed with SIGKILL, so its segment is
left writable with the zstd frame still open. Then:

1. At every byte offset of that segment, the whole lines a tailer reads
   with zstdcat are a byte-exact prefix of the records, each one JSON.
2. For a sample of offsets (inside the magic number, inside the frame
   header, on both sides of each record boundary, the whole file), oobd is
   started on a log directory holding the cut segment: it logs
   event=log-repaired for it (or removed-empty for an empty file), leaves it
   read-only and complete (zstd -t), keeps exactly the whole lines a reader
   could get from the cut file, and writes the next message to a new
   segment named after it.
"""

import json
import os
import shutil
import signal
import stat
import subprocess

from oobdtest import Oobd, check, corpus, finish, not_ok, ok, send_message

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
"""
MESSAGES = 6
BOUNCE = corpus("kumomta/rfc3464/2.eml")


def zstdcat(raw):
    """What zstdcat prints for raw (it fails on a cut stream, the prefix
    it decoded is still printed)."""
    return subprocess.run(["zstdcat", "-q"], input=raw, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL).stdout


def whole_lines(data):
    """data up to and including its last newline."""
    return data[:data.rfind(b"\n") + 1]


def all_json(data):
    """Whether every line of data (whole lines only) is a JSON object."""
    for line in data.splitlines():
        try:
            if not isinstance(json.loads(line), dict):
                return False
        except ValueError:
            return False
    return True


def segments(log_dir):
    return sorted(n for n in os.listdir(log_dir) if not n.startswith("."))


d = Oobd(domains=DOMAINS)
try:
    # ---- a segment left behind by SIGKILL ----
    d.start()
    acked = 0
    for i in range(MESSAGES):
        r = send_message(d.port, "", ["b%d@bounce.example.com" % i], BOUNCE)
        if r[-2].startswith("250 2.0.0 OK ids="):
            acked += 1
    check("messages acknowledged", MESSAGES, acked)
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    d.stop()
    names = segments(d.log_dir)
    check("one segment after the kill", 1, len(names))
    name = names[0]
    path = os.path.join(d.log_dir, name)
    with open(path, "rb") as f:
        image = f.read()
    check("the killed segment is still writable", True,
          bool(os.stat(path).st_mode & stat.S_IWUSR))
    full = zstdcat(image)
    recs = [json.loads(l) for l in full.splitlines()]
    check("every acknowledged record is readable after the kill",
          [("Reception", "OOB", "OOB")] * MESSAGES,
          [tuple(r["type"] for r in recs[i * 3:i * 3 + 3])
           for i in range(len(recs) // 3)])
    check("the killed segment ends on a line", True, full.endswith(b"\n"))

    # ---- 1. a reader at every cut ----
    readable = []           # whole lines a reader gets at each cut
    bad = []
    for cut in range(len(image) + 1):
        got = zstdcat(image[:cut])
        lines = whole_lines(got)
        # zstdcat passes a file too short to be recognised through as it
        # is, so only its whole lines are compared.
        if not full.startswith(lines) or not all_json(lines):
            bad.append(cut)
        readable.append(lines)
    check("at every one of %d cuts zstdcat reads a prefix of whole JSON "
          "lines" % (len(image) + 1), [], bad[:10])
    check("the whole file reads back every record", full, readable[-1])

    # Record boundaries: the cuts where one more whole line becomes readable.
    bounds = [c for c in range(1, len(image) + 1)
              if len(readable[c]) > len(readable[c - 1])]
    check("every commit becomes readable at its own cut", MESSAGES,
          len(bounds))

    # ---- 2. oobd starting on a cut segment ----
    cuts = {0, 1, 3, 4, 9, len(image) - 1, len(image)}
    for b in bounds:
        cuts.update({b - 1, b, b + 1})
    cuts = sorted(c for c in cuts if 0 <= c <= len(image))
    problems = []
    starts = 0
    for cut in cuts:
        shutil.rmtree(d.log_dir, ignore_errors=True)
        os.makedirs(d.log_dir)
        with open(path, "wb") as f:
            f.write(image[:cut])
        os.chmod(path, 0o644)
        before = len(d.stderr_text())
        d.start()
        starts += 1
        r = send_message(d.port, "", ["after@bounce.example.com"], BOUNCE)
        d.stop()
        log = d.stderr_text()[before:]
        why = []
        if not r[-2].startswith("250 2.0.0 OK ids="):
            why.append("message after the restart: %r" % r[-2])
        now = segments(d.log_dir)
        if cut == 0:
            if "event=log-repaired file=%s action=removed-empty" % name \
                    not in log:
                why.append("no removed-empty line")
            if name in now:
                why.append("the empty segment is still there")
        else:
            if "event=log-repaired file=%s " % name not in log:
                why.append("no log-repaired line for the segment")
            if name not in now:
                why.append("the segment is gone")
            else:
                mode = os.stat(path).st_mode
                if mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
                    why.append("not read-only: %o" % mode)
                if subprocess.run(["zstd", "-q", "-t", path]).returncode != 0:
                    why.append("zstd -t fails")
                with open(path, "rb") as f:
                    kept = zstdcat(f.read())
                if kept != readable[cut]:
                    why.append("kept %d bytes, %d were readable" %
                               (len(kept), len(readable[cut])))
        new = [n for n in now if n != name]
        if len(new) != 1 or new[0] <= name:
            why.append("new segments: %r" % new)
        else:
            with open(os.path.join(d.log_dir, new[0]), "rb") as f:
                data = zstdcat(f.read())
            got = [json.loads(l) for l in data.splitlines()]
            types = [g["type"] for g in got]
            if types != ["Reception", "OOB", "OOB"] or \
                    got[0]["recipient"] != "after@bounce.example.com":
                why.append("new segment holds %r" % types)
        if why:
            problems.append((cut, why))
    check("oobd repairs the segment cut at each of %d offsets, keeps what "
          "was readable and opens a new segment" % starts, [], problems[:5])
except Exception as e:
    not_ok("log crash harness", repr(e) + "\n" + d.stderr_text()[-3000:])
finally:
    d.cleanup()
finish()
