# SPDX-License-Identifier: Apache-2.0
"""The real daemon as systemd runs it: sd_notify readiness (READY=1 once
the listener accepts, STATUS=, RELOADING=1, STOPPING=1), socket activation
(inherited sockets taken by address, the rest bound by oobd itself), and,
started as root, the switch to the configured unprivileged user."""

import os
import pwd
import grp
import re
import signal
import socket
import subprocess
import time

from oobdtest import (OOBD, Client, Oobd, check, finish, free_port, not_ok,
                      ok, send_message)

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
"""


def recv_notify(sock, timeout=20):
    """The next sd_notify datagram, as text (bounded wait)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(4096).decode()
    except socket.timeout:
        return None


def wait_exit(proc, timeout=60):
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


# ---- sd_notify ----
d = Oobd(domains=DOMAINS)
nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
npath = os.path.join(d.tmp, "notify.sock")
nsock.bind(npath)
try:
    env = dict(os.environ, NOTIFY_SOCKET=npath)
    err = open(os.path.join(d.tmp, "stderr.log"), "wb")
    proc = subprocess.Popen([OOBD, "-c", d.conf], stderr=err, env=env)
    msg = recv_notify(nsock)
    check("READY=1 with a status", "READY=1\nSTATUS=listening on "
          "127.0.0.1:%d; 0 sessions, 0 messages" % d.port, msg)
    # READY=1 came before any connection: the listener accepts already.
    c = Client(d.port)
    check("accepting when READY=1 arrives", "220 mx.test.example ESMTP oobd",
          c.line())
    c.cmd("QUIT")
    c.close()
    r = send_message(d.port, "", ["bounce@bounce.example.com"],
                     b"Subject: x\r\n\r\nnot a report\r\n")
    check("a message", "550 5.7.1 relaying not permitted", r[5])
    # A status goes out on the next tick after a change: the sessions may
    # show up in one before the final one.
    want = "STATUS=listening on 127.0.0.1:%d; 0 sessions, 1 messages" % d.port
    seen = []
    for _ in range(10):
        msg = recv_notify(nsock)
        seen.append(msg)
        if msg in (None, want):
            break
    check("STATUS= follows the traffic", want, seen[-1])
    check("every update a STATUS=", [], [m for m in seen if m is None or
          not re.match(r"^STATUS=listening on 127\.0\.0\.1:%d; [01] "
                       r"sessions, [01] messages$" % d.port, m)])
    os.kill(proc.pid, signal.SIGHUP)
    check("RELOADING=1 on SIGHUP", "RELOADING=1", recv_notify(nsock))
    check("READY=1 after the reload", "READY=1\nSTATUS=listening on "
          "127.0.0.1:%d; 0 sessions, 1 messages" % d.port, recv_notify(nsock))
    os.kill(proc.pid, signal.SIGTERM)
    check("STOPPING=1 on SIGTERM", "STOPPING=1\nSTATUS=draining: 0 sessions "
          "open", recv_notify(nsock))
    check("exit 0", 0, wait_exit(proc))
    err.close()
except Exception as e:
    not_ok("sd_notify", repr(e) + "\n" + d.stderr_text())
finally:
    nsock.close()
    d.cleanup()

# ---- socket activation ----
inherited = free_port()
own = free_port()
unused = free_port()
d = Oobd(domains=DOMAINS, port=inherited, listener={
    "listen": '["127.0.0.1:%d", "127.0.0.1:%d"]' % (inherited, own)})
try:
    err = open(os.path.join(d.tmp, "stderr.log"), "wb")
    # systemd-socket-activate binds, sets LISTEN_FDS/LISTEN_PID and execs.
    proc = subprocess.Popen(["systemd-socket-activate",
                             "-l", "127.0.0.1:%d" % inherited,
                             "-l", "127.0.0.1:%d" % unused,
                             OOBD, "-c", d.conf], stderr=err)
    # It starts oobd on the first connection, as systemd would.
    first = None
    deadline = time.time() + 20
    while first is None and time.time() < deadline and proc.poll() is None:
        try:
            first = Client(inherited, timeout=20)
        except ConnectionRefusedError:
            time.sleep(0.05)
    check("first connection answered by the activated daemon",
          "220 mx.test.example ESMTP oobd", first.line() if first else None)
    if first:
        first.close()
    text = d.stderr_text()
    check("inherited socket taken by address", 1, len(re.findall(
        r"level=info event=socket-inherited addr=127.0.0.1:%d\n" % inherited,
        text)))
    check("unmatched inherited socket released", 1, len(re.findall(
        r"level=warning event=socket-unused addr=127.0.0.1:%d reason=\"no "
        r"\[listener\] listen address matches\"\n" % unused, text)))
    check("listening on both", True, (
        "event=listening addr=127.0.0.1:%d\n" % inherited in text and
        "event=listening addr=127.0.0.1:%d\n" % own in text))
    for port, name in ((inherited, "inherited"), (own, "own")):
        r = send_message(port, "", ["bounce@bounce.example.com"],
                         b"Subject: x\r\n\r\nnot a report\r\n")
        check("SMTP on the %s socket" % name,
              ["220 mx.test.example ESMTP oobd", "250 2.1.0 Ok",
               "250 2.1.5 Ok"], r[0:1] + r[2:4])
    try:
        socket.create_connection(("127.0.0.1", unused), 5).close()
        not_ok("unmatched socket closed")
    except ConnectionRefusedError:
        ok("unmatched socket closed")
    os.kill(proc.pid, signal.SIGTERM)
    check("socket-activated: exit 0", 0, wait_exit(proc))
    err.close()
except Exception as e:
    not_ok("socket activation", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# ---- privileges ----
nobody = pwd.getpwnam("nobody")
d = Oobd(domains=DOMAINS, listener={"user": '"nobody"'})
try:
    if os.geteuid() != 0:
        # Not root: the switch is refused, with the reason.
        try:
            d.start()
            not_ok("user switch refused without root")
        except RuntimeError:
            check("user switch refused without root", True,
                  'oobd: %s: [listener] user: cannot switch to "nobody": '
                  "not started as root\n" % d.conf in d.stderr_text())
    else:
        os.chmod(d.tmp, 0o755)
        d.start()
        # The port accepts once bound, before the switch: wait for ready.
        deadline = time.time() + 20
        while "event=ready " not in d.stderr_text() and time.time() < deadline:
            time.sleep(0.05)
        status = {}
        with open("/proc/%d/status" % d.proc.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                status[k] = v.split()
        u, g = str(nobody.pw_uid), str(nobody.pw_gid)
        check("real, effective, saved and fs uid", [u] * 4, status["Uid"])
        check("real, effective, saved and fs gid", [g] * 4, status["Gid"])
        want_groups = sorted({str(x.gr_gid) for x in grp.getgrall()
                              if "nobody" in x.gr_mem} | {g})
        check("supplementary groups are nobody's", want_groups,
              sorted(status["Groups"]))
        check("no effective capabilities", ["0000000000000000"],
              status["CapEff"])
        check("no permitted capabilities", ["0000000000000000"],
              status["CapPrm"])
        check("no ambient capabilities", ["0000000000000000"],
              status["CapAmb"])
        check("privilege drop logged", 1, len(re.findall(
            r"level=info event=privileges-dropped user=nobody uid=%s gid=%s\n"
            % (u, g), d.stderr_text())))
        for sub in ("log", "state"):
            st = os.stat(os.path.join(d.tmp, sub))
            check("%s directory created for the user" % sub,
                  (nobody.pw_uid, nobody.pw_gid),
                  (st.st_uid, st.st_gid))
        r = send_message(d.port, "", ["bounce@bounce.example.com"],
                         open(os.path.join(os.environ.get("OOBD_SRCDIR", "."),
                                           "tests", "data", "sample-dsn.eml"),
                              "rb").read())
        check("message accepted after the switch", True,
              r[5].startswith("250 2.0.0 OK ids="))
        segs = [n for n in os.listdir(d.log_dir) if not n.startswith(".")]
        check("segment written by the user", [nobody.pw_uid],
              [os.stat(os.path.join(d.log_dir, n)).st_uid for n in segs])
        check("records", ["Reception", "OOB"],
              [r["type"] for r in d.records()])
        check("unprivileged: exit 0", 0, d.stop())
except Exception as e:
    not_ok("privileges", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# An unknown user is a configuration error, for -t and at start.
d = Oobd(domains=DOMAINS, listener={"user": '"no-such-user-oobd"'})
try:
    r = subprocess.run([OOBD, "-t", "-c", d.conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    check("oobd -t: unknown user", (1, 'oobd: %s: [listener] user: no user '
          '"no-such-user-oobd"\n' % d.conf), (r.returncode, r.stderr.decode()))
finally:
    d.cleanup()

# The keys of this part of the configuration, checked by oobd -t.
d = Oobd(domains=DOMAINS, admin="bogus", listener={
    "log_level": '"loud"', "shutdown_timeout": '"0"', "group": '"oobd"'})
try:
    r = subprocess.run([OOBD, "-t", "-c", d.conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    check("oobd -t: process and admin keys", (1, [
        '%s: [listener] log_level: expected "error", "warning", "info" or '
        '"debug"' % d.conf,
        "%s: [listener] shutdown_timeout: must be positive" % d.conf,
        "%s: [listener] group: needs user" % d.conf,
        '%s: [admin] listen: "bogus" is not "ip:port" or "[ipv6]:port"'
        % d.conf]),
        (r.returncode, [l[len("oobd: "):] for l in
                        r.stderr.decode().splitlines()]))
finally:
    d.cleanup()

finish()
