# SPDX-License-Identifier: Apache-2.0
"""Holding connection slots, against the real daemon: connections counted
per client network (a /24) beside per address, the junk command limit
(Postfix's smtpd_junk_command_limit: NOOP, RSET, VRFY, HELP, HELO and
EHLO), and the deadline of the command phase, which NOOPs sent within
the idle timeout do not extend but a message does."""

import socket
import time

from oobdtest import Client, Oobd, check, corpus, finish, not_ok, to_crlf

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
"""
RCPT = "bounce@bounce.example.com"
DSN = to_crlf(corpus("kumomta/rfc3464/1.eml"))
HOST = "mx.test.example"


def greeted(port, src="127.0.0.1"):
    c = Client.__new__(Client)
    c.sock = socket.create_connection(("127.0.0.1", port), 10, (src, 0))
    c.buf = b""
    return c, c.line()


def free_slot(port, src, timeout=10):
    """Connect until the daemon has seen earlier closes (at most timeout)."""
    deadline = time.time() + timeout
    while True:
        c, line = greeted(port, src)
        if line.startswith("220") or time.time() > deadline:
            return c, line
        c.close()
        time.sleep(0.1)


# Per network: 2 per address, 5 per /24.
d = Oobd(domains=DOMAINS, listener={"max_connections_per_ip": "2",
                                    "max_connections_per_network": "5"})
try:
    d.start()
    held, lines = [], []
    for src in ("127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3",
                "127.0.0.4"):
        c, line = greeted(d.port, src)
        held.append(c)
        lines.append(line)
    check("5 connections from 3 addresses of one /24",
          ["220 %s ESMTP oobd" % HOST] * 5, lines)
    c, line = greeted(d.port, "127.0.0.5")
    check("6th connection from the /24, from a new address",
          "421 4.7.0 %s Error: too many connections from 127.0.0.0/24"
          % HOST, line)
    check("closed", True, c.closed())
    c.close()
    c, line = greeted(d.port, "127.0.1.2")
    check("another /24 still served", ("220 %s ESMTP oobd" % HOST,
                                       "250 2.0.0 Ok"),
          (line, c.cmd("NOOP")))
    c.close()
    c, line = greeted(d.port, "127.0.0.2")
    check("the per-address limit still applies",
          "421 4.7.0 %s Error: too many connections from 127.0.0.2"
          % HOST, line)
    c.close()
    held.pop().close()
    c, line = free_slot(d.port, "127.0.0.6")
    check("a slot of the /24 frees when a client leaves",
          "220 %s ESMTP oobd" % HOST, line)
    c.close()
    for x in held:
        x.close()
    check("per network: daemon exit status", 0, d.stop())
except Exception as e:
    not_ok("smtp_slots per-network harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# Junk commands (the default limit, 100) and the command phase deadline.
d = Oobd(domains=DOMAINS, listener={"command_phase_timeout": '"4s"',
                                    "idle_timeout": '"2s"'})
try:
    d.start()
    c, _ = greeted(d.port)
    junk = ["EHLO a.example", "HELO a.example", "NOOP", "RSET", "VRFY x",
            "HELP"]
    got = []
    for i in range(100):
        c.send(junk[i % len(junk)] + "\r\n")
        got.append(c.reply()[0])
    check("100 junk commands answered", [250, 250, 250, 250, 252, 214] * 16
          + [250, 250, 250, 250], got)
    check("the 101st", "421 4.7.0 %s Error: too many commands without mail"
          % HOST, c.cmd("NOOP"))
    check("closed after the junk limit", True, c.closed())
    c.close()

    # A message resets the count: 99 NOOPs, a message, 100 more.
    c, _ = greeted(d.port)
    c.cmd("EHLO b.example")
    got = [c.cmd("NOOP") for _ in range(98)]
    c.cmd("MAIL FROM:<>")
    c.cmd("RCPT TO:<%s>" % RCPT)
    c.cmd("DATA")
    c.send(DSN + b".\r\n")
    accepted = c.line()
    got += [c.cmd("NOOP") for _ in range(100)]
    check("a message resets the junk count", ("250 2.0.0 OK ids=",
                                              ["250 2.0.0 Ok"] * 198),
          (accepted[:17], got))
    c.close()

    # A NOOP a second (within the 2 s idle timeout) for ever: cut at the
    # command phase deadline (4 s), with 421 4.4.2.
    c, _ = greeted(d.port)
    c.sock.settimeout(30)
    answered, last = 0, None
    for _ in range(60):
        c.send("NOOP\r\n")
        last = c.line()
        if not last.startswith("250"):
            break
        answered += 1
        time.sleep(1)
    check("NOOP every second cut by the command phase deadline",
          "421 4.4.2 %s Error: timeout exceeded" % HOST, last)
    check("cut before 30 NOOPs", True, answered < 30)
    check("closed after the deadline", True, c.closed())
    c.close()
    check("deadline logged", True,
          "event=timeout phase=commands" in d.stderr_text())

    # A message restarts the deadline: a message every 2 s keeps the
    # session going past 4 s.
    c, _ = greeted(d.port)
    c.cmd("EHLO c.example")
    replies = []
    for _ in range(4):
        c.cmd("MAIL FROM:<>")
        c.cmd("RCPT TO:<%s>" % RCPT)
        c.cmd("DATA")
        c.send(DSN + b".\r\n")
        replies.append(c.line()[:17])
        time.sleep(1.5)
    check("messages every 1.5 s: the session goes on past the deadline",
          (["250 2.0.0 OK ids="] * 4, "250 2.0.0 Ok"),
          (replies, c.cmd("NOOP")))
    c.close()
    check("junk and deadline: daemon exit status", 0, d.stop())
except Exception as e:
    not_ok("smtp_slots harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()
finish()
