# SPDX-License-Identifier: Apache-2.0
"""Limits of the real daemon, each with its defined reply: command line
length, header field size, message size, recipients, MIME nesting and
part count, Received hop count, errors per session, connections in total
and per client address, idle and DATA timeouts, memory under a line that
never ends (smtp-robustness §10 items 17-30)."""

import socket
import threading
import time

from oobdtest import (Client, Oobd, check, corpus, finish, not_ok, ok,
                      to_crlf)

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
log_arf = "LogThenDrop"
"""
RCPT = "bounce@bounce.example.com"
DSN = to_crlf(corpus("kumomta/rfc3464/1.eml"))
HOST = "mx.test.example"


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def greeted(port, src=None):
    if src is None:
        c = Client(port)
    else:
        c = Client.__new__(Client)
        c.sock = socket.create_connection(("127.0.0.1", port), 10, (src, 0))
        c.buf = b""
    c.line()
    return c


def ehlo(c, name="client.test.example"):
    c.send("EHLO %s\r\n" % name)
    return c.reply()


def data(c, text, rcpts=(RCPT,), sender=""):
    c.cmd("MAIL FROM:<%s>" % sender)
    for r in rcpts:
        c.cmd("RCPT TO:<%s>" % r)
    first = c.cmd("DATA")
    c.send(text + b".\r\n")
    return first, c.line()


def multipart(parts):
    out = [b"From: a@example.org", b"To: " + RCPT.encode(),
           b"MIME-Version: 1.0",
           b"Content-Type: multipart/mixed; boundary=\"b\"", b""]
    for i in range(parts):
        out += [b"--b", b"Content-Type: text/plain", b"", b"part %d" % i]
    out += [b"--b--", b""]
    return b"\r\n".join(out)


def nested(levels):
    out = [b"From: a@example.org", b"To: " + RCPT.encode(), b"MIME-Version: 1.0"]
    for i in range(levels):
        out += [b"Content-Type: multipart/mixed; boundary=\"n%d\"" % i, b"",
                b"--n%d" % i]
    out += [b"Content-Type: text/plain", b"", b"leaf"]
    for i in reversed(range(levels)):
        out += [b"--n%d--" % i]
    out += [b""]
    return b"\r\n".join(out)


d = Oobd(domains=DOMAINS, listener={
    "trace_headers.received_header": "false",
    "max_message_size": '"64KiB"',
    "max_header_size": "2000",
    "max_mime_parts": "50",
    "max_connections_per_ip": "3",
    "idle_timeout": '"2s"',
    "data_timeout": '"3s"',
    # The pipelining tests below send tens of thousands of RSETs.
    "max_junk_commands": "1000000",
}, logs={"headers": '["X-Long", "X-Short", "X-Fold"]'})
try:
    d.start()

    # §10 item 17: command line length.
    c = greeted(d.port)
    ehlo(c)
    line = "NOOP " + "x" * (512 - 7)
    check("512-octet command line", "250 2.0.0 Ok", c.cmd(line))
    line = "NOOP " + "x" * (2048 - 7)
    check("2048-octet command line (the limit)", "250 2.0.0 Ok", c.cmd(line))
    c.send("NOOP " + "x" * (2049 - 7) + "\r\n")
    check("2049-octet command line", "500 5.5.2 Error: line too long",
          c.line())
    check("closed after an over-long command", True, c.closed())
    c.close()

    # A line that never ends: refused at the limit, memory stays flat.
    before = rss_kb(d.proc.pid)
    c = greeted(d.port)
    chunk = b"y" * 65536
    sent = 0
    try:
        while sent < 100 * 1024 * 1024:
            c.sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    code, lines = c.reply()
    after = rss_kb(d.proc.pid)
    check("endless line refused", (500, ["5.5.2 Error: line too long"]),
          (code, lines))
    check("endless line: far less than 100 MB read", True,
          sent < 10 * 1024 * 1024)
    check("endless line: RSS grows by less than 8 MB", True,
          after - before < 8192)
    c.close()

    # A client that pipelines commands and never reads the replies: oobd
    # stops reading once its replies pile up, so memory stays flat.
    c = greeted(d.port)
    ehlo(c)
    chunk = b"RSET\r\n" * 10000
    sent = 0
    c.sock.settimeout(2)
    try:
        while sent < 100 * 1024 * 1024:
            c.sock.sendall(chunk)
            sent += len(chunk)
    except OSError:     # the send blocks: oobd no longer reads
        pass
    # What was sent fills the socket buffers (a few MB; the kernel may
    # allow up to 32 MB) and 64 KiB of replies at most. RSS is not compared here:
    # under AddressSanitizer the freed buffers of millions of commands
    # stay in its quarantine.
    check("unread replies: oobd stops reading (less than 40 MB taken)", True,
          sent < 40 * 1024 * 1024)
    c.sock.settimeout(10)
    check("unread replies: the first one is in order", "250 2.0.0 Ok",
          c.line())
    c.close()

    # Commands pipelined after the end of DATA while the message is being
    # processed: oobd holds at most 128 KiB of input (the limit for the
    # default max_line_length), stops reading there, and reads on once it
    # has answered what it holds. 300 KB of RSETs, every one answered in
    # order; the sending runs beside the reading, as a real client's.
    c = greeted(d.port)
    ehlo(c)
    c.cmd("MAIL FROM:<>")
    c.cmd("RCPT TO:<%s>" % RCPT)
    check("pipelined after DATA: 354", "354", c.cmd("DATA")[:3])
    rsets = 50000
    sender = threading.Thread(target=c.send, args=(
        DSN + b".\r\n" + b"RSET\r\n" * rsets + b"QUIT\r\n",))
    sender.start()
    first = c.line()
    answers = [c.line() for _ in range(rsets)]
    last = c.line()
    sender.join()
    check("pipelined after DATA: the message accepted", "250 2.0.0 OK ids=",
          first[:17])
    check("pipelined after DATA: 50,000 RSETs answered",
          ["250 2.0.0 Ok"] * rsets, answers)
    check("pipelined after DATA: QUIT answered", "221 2.0.0 Bye", last)
    check("pipelined after DATA: closed", True, c.closed())
    c.close()

    # Header fields over max_header_size lose the excess (Postfix's
    # header_size_limit); long body lines are kept.
    long_value = b"a" * 3000
    msg = DSN.replace(b"MIME-Version: 1.0\r\n", b"MIME-Version: 1.0\r\n"
                      b"X-Long: " + long_value + b"\r\n\tcontinued\r\n"
                      b"X-Short: " + b"s" * 1900 + b"\r\n\tnext\r\n"
                      b"X-Fold: ab\r\n" + b" b\r\n" * 1500, 1)
    # X-Fold reaches 2000 bytes exactly with its 995th continuation line;
    # the rest goes, and no empty line is left to end the header early.
    kept = DSN.replace(b"MIME-Version: 1.0\r\n", b"MIME-Version: 1.0\r\n"
                       b"X-Long: " + long_value[:2000 - 8] + b"\r\n"
                       b"X-Short: " + b"s" * 1900 + b"\r\n\tnext\r\n"
                       b"X-Fold: ab\r\n" + b" b\r\n" * 995, 1)
    c = greeted(d.port)
    ehlo(c, "header.client.example")
    r = data(c, msg)
    check("over-long header field: message accepted", "250 2.0.0 OK ids=",
          r[1][:17])
    c.close()
    def cut(x):
        return x["type"] == "Reception" and "X-Long" in x["headers"]
    recs = d.wait_records(lambda x: any(cut(y) for y in x))
    rec = [x for x in recs if cut(x)][0]
    check("over-long header field cut at max_header_size",
          (len(kept), "a" * 1992, "s" * 1900 + " next", "ab" + " b" * 995),
          (rec["size"], rec["headers"].get("X-Long"),
           rec["headers"].get("X-Short"), rec["headers"].get("X-Fold")))
    check("message with cut header fields still decoded as a DSN",
          ["Reception", "OOB"], [x["type"] for x in recs
                                 if x["session_id"] == rec["session_id"]])

    # §10 item 20: the actual size.
    c = greeted(d.port)
    ehlo_reply = ehlo(c)
    check("EHLO advertises SIZE", True, "SIZE 65536" in ehlo_reply[1])
    check("SIZE over the limit", "552 5.3.4 Message size exceeds fixed "
          "maximum message size", c.cmd("MAIL FROM:<> SIZE=65537"))
    big = DSN.replace(b"from root@localhost",
                      b"from root@localhost\r\n" + (b"z" * 998 + b"\r\n") * 66)
    r = data(c, big)
    check("message over max_message_size", ("354", "552 5.3.4 Error: "
                                            "message too big"),
          (r[0][:3], r[1]))
    check("session in step after 552", "250 2.0.0 Ok", c.cmd("NOOP"))

    # §10 item 21: BODY and unknown parameters.
    check("BODY=8BITMIME", "250 2.1.0 Ok", c.cmd("MAIL FROM:<> BODY=8BITMIME"))
    c.cmd("RSET")
    check("BODY=7BIT", "250 2.1.0 Ok", c.cmd("MAIL FROM:<> BODY=7BIT"))
    c.cmd("RSET")
    check("BODY=FOO", "501 5.5.4 Unsupported BODY type",
          c.cmd("MAIL FROM:<> BODY=FOO"))
    check("unknown MAIL parameter", "555 5.5.4 Unsupported option",
          c.cmd("MAIL FROM:<> FOO=bar"))
    # §10 item 26: paths.
    check("source route in MAIL ignored", "250 2.1.0 Ok",
          c.cmd("MAIL FROM:<@a.example,@b.example:u@d.example>"))
    c.cmd("RSET")
    check("MAIL without a domain", "501 5.1.7 Address must have a domain",
          c.cmd("MAIL FROM:<a>"))
    # §10 item 22: invalid UTF-8.
    c.send(b"NOOP \xff\xfe\r\n")
    check("invalid UTF-8 in a command", "500 5.5.2 Error: bad UTF-8 syntax",
          c.line())
    # §10 item 24: VRFY.
    check("VRFY", "252 2.0.0 Cannot VRFY user, but will accept message and "
          "attempt delivery", c.cmd("VRFY x"))
    # §10 item 23: no CHUNKING.
    check("CHUNKING not advertised", False,
          any(x.startswith("CHUNKING") for x in ehlo_reply[1]))
    c.send("BDAT 10 LAST\r\n0123456789")
    check("BDAT", "521 5.5.1 Error: command not implemented", c.line())
    check("closed after BDAT", True, c.closed())
    c.close()

    # §10 item 19: recipients.
    c = greeted(d.port)
    ehlo(c)
    c.cmd("MAIL FROM:<>")
    got = [c.cmd("RCPT TO:<r%d@bounce.example.com>" % i) for i in range(101)]
    check("100 recipients accepted", ["250 2.1.5 Ok"] * 100, got[:100])
    check("recipient 101", "452 4.5.3 Error: too many recipients", got[100])
    check("DATA after the recipient limit", "354",
          c.cmd("DATA")[:3])
    c.send(DSN + b".\r\n")
    reply = c.line()
    ids = reply[len("250 2.0.0 OK ids="):].split(" ")
    check("message for the 100 accepted recipients", (True, 100),
          (reply.startswith("250 2.0.0 OK ids="), len(ids)))
    c.close()

    # §10 item 27: hop count.
    hops = DSN.replace(b"Date:", b"Received: from x by y; "
                       b"Thu, 7 Jul 1994 17:16:05 -0400\r\n" * 101 + b"Date:", 1)
    c = greeted(d.port)
    ehlo(c)
    check("101 Received headers", "554 5.4.0 Error: too many hops",
          data(c, hops)[1])
    hops = DSN.replace(b"Date:", b"Received: from x by y; "
                       b"Thu, 7 Jul 1994 17:16:05 -0400\r\n" * 100 + b"Date:", 1)
    check("100 Received headers", "250 2.0.0 OK ids=", data(c, hops)[1][:17])

    # §10 item 30: MIME part count and nesting (max_mime_parts = 50; the
    # nesting limit is tested below). 49 entities pass the MIME check
    # and get the reply of a non-report for a log-only domain.
    check("48 parts (49 entities)", "550 5.7.1 relaying not permitted",
          data(c, multipart(48))[1])
    check("50 parts (51 entities)",
          "554 5.6.0 Error: more MIME parts than the limit of 50",
          data(c, multipart(50))[1])
    check("300 parts (refused before parsing)",
          "554 5.6.0 Error: more MIME parts than the limit of 50",
          data(c, multipart(300))[1])
    c.close()

    # §10 item 28: idle timeout after the greeting, and in a transaction.
    c = greeted(d.port)
    check("idle session closed with 421 4.4.2",
          "421 4.4.2 %s Error: timeout exceeded" % HOST, c.line())
    check("closed after the idle timeout", True, c.closed())
    c.close()
    # A client trickling one byte per write (every 0.5 s) is cut off by
    # the DATA deadline (3 s), though each byte resets the idle timer.
    c = greeted(d.port)
    ehlo(c)
    c.cmd("MAIL FROM:<>")
    c.cmd("RCPT TO:<%s>" % RCPT)
    c.cmd("DATA")
    trickled = 0
    c.sock.settimeout(0.5)
    reply = None
    for i in range(120):
        try:
            c.sock.sendall(DSN[i:i + 1])
            trickled += 1
        except OSError:
            break
        try:
            chunk = c.sock.recv(4096)
            c.buf += chunk
            if b"\r\n" in c.buf or not chunk:
                break
        except socket.timeout:
            pass
    c.sock.settimeout(10)
    check("trickling client cut off by the DATA deadline",
          "421 4.4.2 %s Error: timeout exceeded" % HOST, c.line())
    check("trickling client sent less than 120 bytes", True, trickled < 120)
    c.close()

    # §10 item 29: errors per session.
    c = greeted(d.port)
    got = [c.cmd("FOO %d" % i) for i in range(19)]
    check("19 errors", ["500 5.5.2 Error: command not recognized"] * 19, got)
    check("error 20", "500 5.5.2 Error: command not recognized", c.cmd("FOO"))
    check("then 421 too many errors",
          "421 4.7.0 %s Error: too many errors" % HOST, c.line())
    check("closed after too many errors", True, c.closed())
    c.close()

    # Connections per client address (3), others still served.
    held = [greeted(d.port) for _ in range(3)]
    c = Client(d.port)
    check("4th connection from one address",
          "421 4.7.0 %s Error: too many connections from 127.0.0.1" % HOST,
          c.line())
    check("closed", True, c.closed())
    c.close()
    other = greeted(d.port, "127.0.0.2")
    check("another address still served", "250 2.0.0 Ok", other.cmd("NOOP"))
    check("held connection still served", "250 2.0.0 Ok", held[0].cmd("NOOP"))
    for x in held + [other]:
        x.close()
    check("daemon exit status", 0, d.stop())
except Exception as e:
    not_ok("smtp_limits harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# Connections in total (3), from several addresses.
d = Oobd(domains=DOMAINS, listener={"max_connections": "3"})
try:
    d.start()
    held = [greeted(d.port, "127.0.0.%d" % (i + 2)) for i in range(3)]
    c = Client.__new__(Client)
    c.sock = socket.create_connection(("127.0.0.1", d.port), 10,
                                      ("127.0.0.9", 0))
    c.buf = b""
    check("connection over max_connections",
          "421 4.7.0 %s Error: too many connections" % HOST, c.line())
    check("closed", True, c.closed())
    c.close()
    check("held connections still served", ["250 2.0.0 Ok"] * 3,
          [x.cmd("NOOP") for x in held])
    held[0].cmd("QUIT")
    held[0].close()
    ok_again = None
    for _ in range(50):     # the slot frees once the daemon saw the close
        s = socket.create_connection(("127.0.0.1", d.port), 10,
                                     ("127.0.0.9", 0))
        c = Client.__new__(Client)
        c.sock, c.buf = s, b""
        ok_again = c.line()
        c.close()
        if ok_again.startswith("220"):
            break
        time.sleep(0.1)
    check("a slot frees when a client leaves",
          "220 %s ESMTP oobd" % HOST, ok_again)
    for x in held[1:]:
        x.close()

    # §10 item 30: nesting, with the default limits (100 levels). The
    # daemon sees the closes above in its own time: wait for a slot.
    for _ in range(50):
        c = Client(d.port)
        if c.line().startswith("220"):
            break
        c.close()
        time.sleep(0.1)
    ehlo(c)
    check("nesting 100", "550 5.7.1 relaying not permitted",
          data(c, nested(99))[1])
    check("nesting 101", "554 5.6.0 Error: MIME nesting exceeds the limit "
          "of 100", data(c, nested(100))[1])
    check("nesting 2000", "554 5.6.0 Error: MIME nesting exceeds the limit "
          "of 100", data(c, nested(2000))[1])
    c.close()
    check("daemon exit status", 0, d.stop())
except Exception as e:
    not_ok("smtp_limits max_connections harness", repr(e) + "\n" +
           d.stderr_text())
finally:
    d.cleanup()
finish()
