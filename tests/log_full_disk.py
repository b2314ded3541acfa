# SPDX-License-Identifier: Apache-2.0
"""A full log disk, on a small tmpfs mounted for the test (needs root).

- [logs] min_free_space: below it MAIL FROM gets 452 4.3.1 and the
  liveness check says why; with room again, mail is accepted.
- ENOSPC while writing: 451 4.3.0, the failed segment cannot be repaired
  (the copy does not fit); once space returns the tick repairs it; a
  segment still failed at SIGTERM is repaired then (plain: cut in place,
  which needs no space).
"""

import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from oobdtest import (Client, Oobd, check, finish, free_port, not_ok, ok,
                      toml_str)

DOMAIN = "bounce.test.example"
DOMAINS = '["%s"]\nlog_oob = "LogThenDrop"\n' % DOMAIN


def dsn(nrcpts):
    groups = b"".join(b"Final-Recipient: rfc822; user%d@example.com\r\n"
                      b"Action: failed\r\nStatus: 5.1.1\r\n"
                      b"Diagnostic-Code: smtp; 550 5.1.1 %s\r\n\r\n"
                      % (i, os.urandom(300).hex().encode())
                      for i in range(nrcpts))
    return (b"From: MAILER-DAEMON@mx.example.com\r\n"
            b"To: bounce@" + DOMAIN.encode() + b"\r\n"
            b"Subject: Undelivered Mail Returned to Sender\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status;"
            b" boundary=\"BOUND\"\r\n\r\n"
            b"--BOUND\r\nContent-Type: message/delivery-status\r\n\r\n"
            b"Reporting-MTA: dns; mx.example.com\r\n\r\n" + groups +
            b"--BOUND--\r\n")


def send(port, body):
    c = Client(port, timeout=120)
    c.line()
    c.cmd("EHLO client.test.example")
    mail = c.cmd("MAIL FROM:<>")
    if not mail.startswith("250"):
        c.close()
        return mail
    c.cmd("RCPT TO:<b@%s>" % DOMAIN)
    c.cmd("DATA")
    c.send(body + b".\r\n")
    reply = c.line()
    c.close()
    return reply


def liveness(port):
    try:
        r = urllib.request.urlopen(
            "http://127.0.0.1:%d/api/check-liveness/v1" % port, timeout=30)
        return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def fill(mnt, leave):
    """Fill the file system but `leave` bytes."""
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    path = os.path.join(mnt, ".filler")
    with open(path, "ab") as f:
        try:
            f.write(b"\0" * max(0, free - leave))
        except OSError:
            pass
    return path


def segments(log_dir):
    return sorted(n for n in os.listdir(log_dir) if not n.startswith("."))


def wait_for(pred, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def writable(path):
    # Root may write anyway: the mode bits are the "complete" signal.
    return os.stat(path).st_mode & 0o222 != 0


def finished(log_dir, name):
    """Repaired: read-only, or removed when it held nothing."""
    path = os.path.join(log_dir, name)
    return not os.path.exists(path) or not writable(path)


def failed_segments(err):
    return re.findall(r"event=log-segment-failed file=(\S+)", err)


def zstd_ok(path):
    return subprocess.run(["zstd", "-q", "-t", path]).returncode == 0


def run(compress):
    tmp = tempfile.mkdtemp(prefix="oobd-full-")
    mnt = os.path.join(tmp, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt],
                   check=True)
    mode = "zstd" if compress else "plain"
    try:
        log_dir = os.path.join(mnt, "log")
        admin = free_port()
        dtmp = os.path.join(tmp, "d")
        os.mkdir(dtmp)
        d = Oobd(domains=DOMAINS, tmp=dtmp, admin="127.0.0.1:%d" % admin,
                 logs={"compression": '"zstd"' if compress else '"none"',
                       "min_free_space": '"50%"', "min_free_inodes": '"1%"'})
        # The log directory on the small file system.
        text = open(d.conf).read().replace(
            "log_dir = %s" % toml_str(d.log_dir),
            "log_dir = %s" % toml_str(log_dir))
        open(d.conf, "w").write(text)
        d.log_dir = log_dir
        acked = []
        d.start()
        try:
            r = send(d.port, dsn(2))
            acked.append(r)
            check("%s: room: accepted" % mode, "250 2.0.0 OK ids=", r[:17])
            filler = fill(mnt, 1 << 20)	# 1 MB of 4 MB free: below 50%
            check("%s: below min_free_space: 452 4.3.1 at MAIL FROM" % mode,
                  "452 4.3.1 Error: insufficient system storage",
                  send(d.port, dsn(2)))
            code, text = liveness(admin)
            check("%s: below min_free_space: liveness 503 says why" % mode,
                  (503, True), (code, text.startswith(
                      "storage low: new messages are refused: log_dir %s: "
                      % log_dir) and text.rstrip().endswith(
                      "below min_free_space 50%")))
            os.unlink(filler)
            r = send(d.port, dsn(2))
            acked.append(r)
            check("%s: room again: accepted" % mode, "250 2.0.0 OK ids=",
                  r[:17])
            check("%s: room again: liveness 200" % mode, (200, "OK\n"),
                  liveness(admin))
        finally:
            check("%s: SIGTERM exit status" % mode, 0, d.stop())

        # ENOSPC: no floor, a disk filled to the last few KB.
        text = open(d.conf).read().replace('min_free_space = "50%"',
                                           'min_free_space = 0').replace(
            'min_free_inodes = "1%"', "min_free_inodes = 0")
        open(d.conf, "w").write(text)
        d.start()
        try:
            filler = fill(mnt, 32 << 10)
            # Past 256 KB the records wait in a file in log_dir: no room
            # for it, 451 before anything reaches the segment.
            reply = send(d.port, dsn(400))	# ~500 KB of records
            check("%s: ENOSPC in the batch file: 451 4.3.0" % mode,
                  "451 4.3.0 Error: local error writing the log: No space "
                  "left on device", reply)
            # (Its 451's Rejection record may fail on the full disk too.)
            n0 = len(failed_segments(d.stderr_text()))
            reply = send(d.port, dsn(150))	# ~200 KB, kept in memory
            check("%s: ENOSPC: 451 4.3.0" % mode, "451 4.3.0 Error: local error "
                  "writing the log: No space left on device", reply)
            err = d.stderr_text()
            check("%s: ENOSPC: the repair failed for want of space" % mode,
                  True, "event=log-repair-failed" in err)
            # The message's segment, and maybe the next one (the 451's
            # Rejection record) if even that did not fit.
            failed = [n for n in failed_segments(err)[n0:]
                      if os.path.exists(os.path.join(log_dir, n))]
            check("%s: ENOSPC: the message's segment failed, not yet "
                  "repaired" % mode, (True, True),
                  (len(failed) >= 1, bool(failed) and
                   writable(os.path.join(log_dir, failed[0]))))
            failed = failed_segments(err)
            code, text = liveness(admin)
            check("%s: ENOSPC: liveness 503" % mode,
                  (503, "log unhealthy: records cannot be written\n"),
                  (code, text))
            os.unlink(filler)
            repaired = wait_for(lambda: failed and all(
                finished(log_dir, n) for n in failed))
            check("%s: space back: the tick repairs the segment" % mode,
                  True, repaired)
            check("%s: space back: event=log-repaired logged" % mode, True,
                  all("event=log-repaired file=%s " % n in d.stderr_text()
                      for n in failed))
            r = send(d.port, dsn(2))
            acked.append(r)
            check("%s: space back: accepted" % mode, "250 2.0.0 OK ids=",
                  r[:17])
            # Fail again, then stop at once: the repair happens at SIGTERM
            # (zstd: the copy fits now; plain: cut in place even without).
            filler = fill(mnt, 32 << 10)
            check("%s: ENOSPC again: 451" % mode, "451",
                  send(d.port, dsn(150))[:3])
            failed = failed_segments(d.stderr_text())[len(failed):]
            if compress:
                os.unlink(filler)
        finally:
            check("%s: SIGTERM exit status after ENOSPC" % mode, 0, d.stop())
        if os.path.exists(os.path.join(mnt, ".filler")):
            os.unlink(os.path.join(mnt, ".filler"))
        names = segments(log_dir)
        check("%s: at exit every segment is finished (read-only)" % mode,
              [], [n for n in names if writable(os.path.join(log_dir, n))])
        check("%s: the segments failed at SIGTERM were repaired then" % mode,
              True, bool(failed) and all(
                  finished(log_dir, n) and "event=log-repaired file=%s " % n
                  in d.stderr_text() for n in failed))
        if compress:
            check("zstd: every segment passes zstd -t", [],
                  [n for n in names if not zstd_ok(os.path.join(log_dir, n))])
        recs = d.records()
        ids = [a.split("ids=")[1] for a in acked]
        check("%s: every acknowledged message's records are there" % mode,
              [(1, 2)] * 3,
              [(sum(1 for r in recs if r["id"] == i and
                    r["type"] == "Reception"),
                sum(1 for r in recs if r["id"] == i and r["type"] == "OOB"))
               for i in ids])
        print("# %s: records of the refused (451) messages left after "
              "repair: %d" % (mode, sum(1 for r in recs if r["id"] not in
                                        ids)))
    except Exception as e:
        not_ok("%s harness" % mode, repr(e))
    finally:
        subprocess.run(["umount", "-l", mnt])
        subprocess.run(["rm", "-rf", tmp])


if os.geteuid() != 0:
    not_ok("log_full_disk needs root to mount a tmpfs")
else:
    run(True)
    run(False)
finish()
