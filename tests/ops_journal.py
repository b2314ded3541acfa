# SPDX-License-Identifier: Apache-2.0
"""journald levels: when stderr is the journal (JOURNAL_STREAM holds the
"DEV:INO" of stderr, as systemd sets it), every log line starts with its
syslog priority "<N>" (sd-daemon.h: <3> error, <4> warning, <6> info,
<7> debug), the level journald files it under; otherwise, and when the
variable names another stream than stderr, lines are plain key=value.

stderr is a file here: JOURNAL_STREAM set to that file's device and inode
is exactly what oobd would see with journald's stream socket."""

import os
import re
import signal
import subprocess
import time

from oobdtest import OOBD, Oobd, check, finish, not_ok, send_message, SRCDIR

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
"""
PRIO = {"error": "<3>", "warning": "<4>", "info": "<6>", "debug": "<7>"}
SAMPLE = open(os.path.join(SRCDIR, "tests", "data", "sample-dsn.eml"),
              "rb").read()


def wait_for(d, text, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in d.stderr_text():
            return True
        time.sleep(0.05)
    return False


def run(journal_stream, verbose=False):
    """Start oobd (-v: debug lines too), deliver a bounce, provoke a
    reload error (an invalid domain file), stop it; its stderr lines and
    exit status."""
    d = Oobd(domains=DOMAINS, listener={"log_level": '"debug"'} if verbose
             else None)
    path = os.path.join(d.tmp, "stderr.log")
    open(path, "wb").close()
    st = os.stat(path)
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    if journal_stream == "stderr":
        env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    elif journal_stream is not None:
        env["JOURNAL_STREAM"] = journal_stream
    saved = os.environ.copy()
    os.environ.clear()
    os.environ.update(env)
    try:
        d.start()
        wait_for(d, "event=ready")
        r = send_message(d.port, "", ["bounce@bounce.example.com"], SAMPLE)
        check("bounce accepted (JOURNAL_STREAM=%s)" % journal_stream, True,
              r[5].startswith("250 "))
        with open(os.path.join(d.tmp, "listener_domains.toml"), "w") as f:
            f.write('["bounce.example.com"]\nlog_oob = "Sometimes"\n')
        os.kill(d.proc.pid, signal.SIGHUP)
        wait_for(d, "event=reload-failed")
        # A second daemon on the invalid domain file does not start: its
        # errors, on its own stderr (the journal when the first's is).
        path2 = os.path.join(d.tmp, "second.log")
        with open(path2, "wb") as f2:
            if journal_stream == "stderr":
                st2 = os.fstat(f2.fileno())
                os.environ["JOURNAL_STREAM"] = "%d:%d" % (st2.st_dev,
                                                          st2.st_ino)
            second = subprocess.run([OOBD, "-c", d.conf], stderr=f2,
                                    stdout=subprocess.DEVNULL, timeout=60)
        with open(path2, "rb") as f2:
            second_err = f2.read().decode()
        rc = d.stop()
        lines = d.stderr_text().splitlines()
        return rc, lines, (second.returncode, second_err)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        d.cleanup()


# ---- stderr is the journal ----
try:
    rc, lines, second = run("stderr", verbose=True)
    check("journal: exit 0", 0, rc)
    bad = []
    levels = set()
    for line in lines:
        m = re.match(r"(<\d>)(?:session=[0-9a-f-]+ )?level=(\w+) ", line)
        if m is None or PRIO.get(m.group(2)) != m.group(1):
            bad.append(line)
        else:
            levels.add(m.group(2))
    check("journal: every line starts with the priority of its level", [],
          bad)
    check("journal: error, info and debug lines seen",
          {"error", "info", "debug"}, levels & {"error", "info", "debug"})
    check("journal: the reload error at priority 3", True,
          any(re.match(r'<3>level=error event=reload-error error=".*'
                       r'listener_domains\.toml', x) for x in lines))
    check("journal: listening at priority 6", True,
          any(re.match(r"<6>level=info event=listening addr=127\.0\.0\.1:",
                       x) for x in lines))
    check("journal: a failed start's errors at priority 3", (1, []),
          (second[0], [x for x in second[1].splitlines()
                       if not x.startswith("<3>oobd: ")]))
    check("journal: the failed start names the domain file", True,
          "listener_domains.toml" in second[1])
except Exception as e:
    not_ok("journal", repr(e))

# ---- not the journal: no variable, or one naming another stream ----
for stream in (None, "1:1", "garbage"):
    try:
        rc, lines, second = run(stream)
        check("plain (JOURNAL_STREAM=%s): exit 0" % stream, 0, rc)
        check("plain (JOURNAL_STREAM=%s): lines start with level=" % stream,
              [], [x for x in lines
                   if not re.match(r"(session=[0-9a-f-]+ )?level=\w+ ", x)])
        check("plain (JOURNAL_STREAM=%s): the reload error" % stream, True,
              any(x.startswith("level=error event=reload-error ")
                  for x in lines))
        check("plain (JOURNAL_STREAM=%s): start errors without a prefix"
              % stream, (1, True, []),
              (second[0], "listener_domains.toml" in second[1],
               [x for x in second[1].splitlines()
                if not x.startswith("oobd: ")]))
    except Exception as e:
        not_ok("plain %s" % stream, repr(e))

finish()
