# SPDX-License-Identifier: Apache-2.0
"""Running out of file descriptors: the real daemon started with a small
RLIMIT_NOFILE caps max_connections to what the limit allows (with a
warning); once accept() fails for want of descriptors, the listener
pauses instead of spinning (little CPU, a few log lines), and accepts
again once clients have gone."""

import os
import re
import resource
import socket
import stat
import time

import oobdtest
from oobdtest import Client, Oobd, check, finish, not_ok

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
"""
HOST = "mx.test.example"
NOFILE = 64


def cpu_seconds(pid):
    """utime + stime of the process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def connect():
    s = socket.create_connection(("127.0.0.1", d.port), 10)
    c = Client.__new__(Client)
    c.sock, c.buf = s, b""
    return c


def wait_line(pattern, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, d.stderr_text())
        if m:
            return m
        time.sleep(0.05)
    return None


d = Oobd(domains=DOMAINS, listener={"workers": "1"})
# The daemon starts under a shell that sets its descriptor limit (soft and
# hard, so it cannot raise it).
wrapper = os.path.join(d.tmp, "oobd-nofile")
with open(wrapper, "w") as f:
    f.write("#!/bin/sh\nulimit -n %d\nexec %s \"$@\"\n" % (
        NOFILE, os.path.abspath(oobdtest.OOBD)))
os.chmod(wrapper, stat.S_IRWXU)
oobdtest.OOBD = wrapper
held = []
try:
    d.start()
    m = re.search(r"level=warning event=max-connections-capped "
                  r"configured=1000 effective=(\d+) nofile=(\d+) "
                  r"reserved=(\d+) hint=\"raise the descriptor limit "
                  r"\(LimitNOFILE, ulimit -n\)\"", d.stderr_text())
    check("max_connections capped at start, with a warning", True,
          m is not None)
    effective, nofile, reserved = (int(x) for x in m.groups()) if m else \
        (0, 0, 0)
    check("the cap leaves the reserved descriptors", (NOFILE, True),
          (nofile, effective + reserved == NOFILE and effective > 0))

    # The cap holds: one session over it gets 421, from any address.
    held = [connect() for _ in range(effective)]
    check("sessions up to the cap greeted",
          ["220 %s ESMTP oobd" % HOST] * effective,
          [c.line() for c in held])
    c = connect()
    check("session over the cap",
          "421 4.7.0 %s Error: too many connections" % HOST, c.line())
    c.close()

    # Descriptors run out for good: the limit is lowered under the
    # running daemon to what it has open plus 3. A few more sessions get
    # in, the rest wait in the backlog while accept() fails.
    for c in held:
        c.close()
    held = []
    pid = d.proc.pid
    time.sleep(1)   # the daemon sees the closes
    limit = open_fds(pid) + 3
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
    held = [connect() for _ in range(10)]
    check("out of descriptors: accept-error logged", True,
          wait_line(r"event=accept-error listener=\S+ "
                    r"error=\"Too many open files\" errors=1 "
                    r"pause_ms=100") is not None)
    lines0 = d.stderr_text().count("\n")
    cpu0, t0 = cpu_seconds(pid), time.time()
    time.sleep(4)
    cpu1, t1 = cpu_seconds(pid), time.time()
    lines = d.stderr_text().count("\n") - lines0
    print("# while out of descriptors: %d log lines, %.2f s CPU in %.2f s"
          % (lines, cpu1 - cpu0, t1 - t0))
    check("out of descriptors: at most 20 log lines in 4 s", True,
          lines <= 20)
    check("out of descriptors: the listener does not spin (CPU under a "
          "tenth of the time)", True, cpu1 - cpu0 < (t1 - t0) / 10)
    greeted = []
    for c in held:
        c.sock.settimeout(0.2)
        try:
            greeted.append(c.line().startswith("220"))
        except OSError:
            greeted.append(False)
    check("some sessions got in, the others wait", (True, True),
          (sum(greeted) >= 1, sum(greeted) < len(held)))

    # Clients leave: descriptors come back, and accepting resumes.
    for c in held:
        c.close()
    held = []
    got = None
    deadline = time.time() + 30
    while time.time() < deadline:
        c = connect()
        c.sock.settimeout(5)
        try:
            got = c.line()
        except OSError:
            got = None
        c.close()
        if got is not None and got.startswith("220"):
            break
        time.sleep(0.2)
    check("accepting again once clients have gone",
          "220 %s ESMTP oobd" % HOST, got)
    check("accept-resumed logged", True,
          wait_line(r"event=accept-resumed listener=\S+ errors=\d+")
          is not None)
    check("daemon exit status", 0, d.stop())
except Exception as e:
    not_ok("smtp_fds harness", repr(e) + "\n" + d.stderr_text())
finally:
    for c in held:
        c.close()
    d.cleanup()
finish()
