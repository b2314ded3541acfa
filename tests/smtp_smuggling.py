# SPDX-License-Identifier: Apache-2.0
"""Line framing and SMTP smuggling through the real daemon: every malformed
end-of-data candidate of smtp-robustness §10 item 1 (and bare CR, NUL,
CR CR LF) followed by a smuggled transaction, under invalid_line_endings
"Deny", "Fix" and "Allow"; bare LF/CR/NUL in commands; dot-stuffing; lines
longer than the read buffer; a message sent one byte per write;
pipelining synchronisation and early talkers."""

import socket

from oobdtest import (Client, Oobd, check, corpus, finish, not_ok, ok,
                      to_crlf)

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
log_arf = "LogThenDrop"
"""

RCPT = "bounce@bounce.example.com"
DSN = to_crlf(corpus("kumomta/rfc3464/1.eml"))
ANCHOR = b"from root@localhost"
assert DSN.count(ANCHOR) == 1

# What the client smuggles after a fake end of data.
SMUGGLED = (b"MAIL FROM:<admin@smuggler.example>\r\n"
            b"RCPT TO:<" + RCPT.encode() + b">\r\n"
            b"DATA\r\n"
            b"From: admin@smuggler.example\r\n"
            b"Subject: smuggled\r\n"
            b"\r\n"
            b"smuggled text\r\n")

# name, bytes placed after ANCHOR (then SMUGGLED follows), the bytes oobd
# stores in place of them under "Allow" and under "Fix", and the reply
# under "Deny" (None: accepted). A line that starts after a CRLF and with
# a dot loses the dot (dot-stuffing); "Fix" turns every lone CR or LF
# into CRLF and removes NULs.
LF = "550 5.5.2 Error: bare <LF> received"
CR = "550 5.5.2 Error: bare <CR> received"
NUL = "550 5.6.0 Error: NUL character in message"
VECTORS = [
    ("LF.LF", b"\n.\n", b"\n.\n", b"\r\n.\r\n", LF),
    ("LF.CRLF", b"\n.\r\n", b"\n.\r\n", b"\r\n.\r\n", LF),
    ("CRLF.LF", b"\r\n.\n", b"\r\n\n", b"\r\n\r\n", LF),
    ("CR.CRLF", b"\r.\r\n", b"\r.\r\n", b"\r\n.\r\n", CR),
    ("CR.CR", b"\r.\r", b"\r.\r", b"\r\n.\r\n", CR),
    ("CR.LF", b"\r.\n", b"\r.\n", b"\r\n.\r\n", LF),
    ("LF.CR", b"\n.\r", b"\n.\r", b"\r\n.\r\n", LF),
    ("CRLF.CR", b"\r\n.\r", b"\r\n\r", b"\r\n\r\n", CR),
    ("CRCRLF.CRCRLF", b"\r\r\n.\r\r\n", b"\r\r\n\r\r\n",
     b"\r\n\r\n\r\n\r\n", CR),
    ("CRLF NUL.CRLF", b"\r\n\0.\r\n", b"\r\n\0.\r\n", b"\r\n.\r\n", NUL),
    ("bare CR", b" a\rb\r\n", b" a\rb\r\n", b" a\r\nb\r\n", CR),
    ("NUL", b" a\0b\r\n", b" a\0b\r\n", b" ab\r\n", NUL),
    ("CR CR LF", b" x\r\r\n", b" x\r\r\n", b" x\r\n\r\n", CR),
]


def message_with(vector):
    return DSN.replace(ANCHOR, ANCHOR + vector + SMUGGLED)


def transaction(port, ehlo, data, byte_by_byte=False):
    """EHLO/MAIL/RCPT/DATA, data as is (it ends with CRLF.CRLF), then NOOP
    and QUIT; returns the replies from the end of data on."""
    c = Client(port)
    c.line()
    c.send("EHLO %s\r\n" % ehlo)
    c.reply()
    c.cmd("MAIL FROM:<>")
    c.cmd("RCPT TO:<%s>" % RCPT)
    out = [c.cmd("DATA")]
    if byte_by_byte:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            c.send(data[i:i + 1])
    else:
        c.send(data)
    out.append(c.line())
    out.append(c.cmd("NOOP"))
    out.append(c.cmd("QUIT"))
    c.close()
    return out


def by_ehlo(recs, name):
    """The records of the sessions that used EHLO name."""
    ids = {r["session_id"] for r in recs
           if (r.get("peer_address") or {}).get("name") == name}
    return [r for r in recs if r["session_id"] in ids]


def summary(r):
    return (r["type"], r["sender"], r["recipient"], r["response"]["code"],
            r["response"]["content"], r["size"])


def run_mode(mode):
    d = Oobd(domains=DOMAINS, listener={
        "invalid_line_endings": '"%s"' % mode,
        "trace_headers.received_header": "false"})
    try:
        d.start()
        expected = {}
        for i, (name, vec, allow, fix, deny) in enumerate(VECTORS):
            ehlo = "v%d.client.example" % i
            data = message_with(vec) + b".\r\n"
            replies = transaction(d.port, ehlo, data)
            stored = DSN.replace(ANCHOR, ANCHOR + {
                "Allow": allow, "Fix": fix, "Deny": vec}[mode] + SMUGGLED)
            refused = mode == "Deny" and deny is not None
            if refused:
                check("%s %s: refused after the real end of data" % (mode, name),
                      [ "354 End data with <CR><LF>.<CR><LF>", deny,
                        "250 2.0.0 Ok", "221 2.0.0 Bye"], replies)
                expected[ehlo] = [("Rejection", "", "", 550, deny[10:], 0)]
            else:
                ok_reply = replies[1].startswith("250 2.0.0 OK ids=")
                check("%s %s: one message accepted, in sync" % (mode, name),
                      ["354", True, "250 2.0.0 Ok", "221 2.0.0 Bye"],
                      [replies[0][:3], ok_reply, replies[2], replies[3]])
                expected[ehlo] = [("Reception", "", RCPT, 250, "", len(stored)),
                                  ("OOB", RCPT, "louisl@larry.slip.umd.edu",
                                   426, "connection timed out", 0)]
        n = sum(len(v) for v in expected.values())
        recs = d.wait_records(lambda r: len(r) >= n)
        for i, (name, *_rest) in enumerate(VECTORS):
            ehlo = "v%d.client.example" % i
            check("%s %s: the records of the connection" % (mode, name),
                  expected[ehlo], [summary(r) for r in by_ehlo(recs, ehlo)])
        check("%s: no record of a smuggled transaction" % mode, [],
              [r for r in recs if "smuggler" in r["sender"]
               or "smuggler" in r["recipient"]])
        check("%s: record count" % mode, n, len(recs))
        check("%s: daemon exit status" % mode, 0, d.stop())
    except Exception as e:
        not_ok("%s harness" % mode, repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()


for mode in ("Deny", "Fix", "Allow"):
    run_mode(mode)

# Commands, dot-stuffing, long lines, byte-by-byte, pipelining, early talkers.
d = Oobd(domains=DOMAINS, listener={"trace_headers.received_header": "false",
                                    "greet_wait": '"1s"'})
try:
    d.start()

    def greeted():
        c = Client(d.port)
        check("greeting after greet_wait", "220 mx.test.example ESMTP oobd",
              c.line())
        return c

    # §10 item 2: a command ending in a bare LF; what follows never runs.
    c = greeted()
    c.send("EHLO x.example\nMAIL FROM:<>\r\n")
    check("bare LF command", "550 5.5.2 Error: bare <LF> received", c.line())
    check("closed after bare LF command", (True, b""), (c.closed(), c.buf))
    c.close()
    # §10 item 3: a bare CR inside a command; the RCPT after it never runs.
    c = greeted()
    c.send("EHLO x.example\r\n")
    c.reply()
    c.send("MAIL FROM:<a@example.org>\rRCPT TO:<%s>\r\n" % RCPT)
    check("bare CR in a command", "500 5.5.2 Error: bare <CR> received",
          c.line())
    check("closed after bare CR command", (True, b""), (c.closed(), c.buf))
    c.close()
    c = greeted()
    c.send(b"NOOP\0x\r\n")
    check("NUL in a command", "500 5.5.2 Error: NUL character in command",
          c.line())
    check("closed after NUL command", True, c.closed())
    c.close()

    # §10 item 8: input before the greeting.
    c = Client(d.port)
    c.send("EHLO early.example\r\n")
    check("pregreet", (554, ["5.5.0 Error: SMTP protocol synchronization"]),
          c.reply())
    check("closed after pregreet, no greeting", (True, b""),
          (c.closed(), c.buf))
    c.close()
    check("pregreet logged with its input", True,
          'event=pregreet input="EHLO early.example\\x0d\\x0a"' in
          d.stderr_text())

    # §10 item 9: a legal pipelined group, replies in order.
    c = greeted()
    c.send("EHLO pipe.example\r\n")
    c.reply()
    c.send("MAIL FROM:<>\r\nRCPT TO:<%s>\r\nRCPT TO:<b%s>\r\nDATA\r\n"
           % (RCPT, RCPT))
    check("pipelined MAIL RCPT RCPT DATA",
          ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok",
           "354 End data with <CR><LF>.<CR><LF>"],
          [c.line() for _ in range(4)])
    c.send(DSN + b".\r\nQUIT\r\n")
    check("pipelined message accepted", "250 2.0.0 OK ids=", c.line()[:17])
    check("QUIT pipelined after the end of data", "221 2.0.0 Bye", c.line())
    c.close()

    # §10 item 10: message text before the 354; EHLO with MAIL after it.
    c = greeted()
    c.send("EHLO pipe.example\r\n")
    c.reply()
    c.send("MAIL FROM:<>\r\nRCPT TO:<%s>\r\nDATA\r\nSubject: early\r\n" % RCPT)
    check("text before 354", ["250 2.1.0 Ok", "250 2.1.5 Ok",
                              "554 5.5.0 Error: SMTP protocol synchronization"],
          [c.line() for _ in range(3)])
    check("closed after text before 354", (True, b""), (c.closed(), c.buf))
    c.close()
    c = greeted()
    c.send("EHLO pipe.example\r\nMAIL FROM:<>\r\n")
    check("EHLO with MAIL pipelined",
          "554 5.5.0 Error: SMTP protocol synchronization", c.line())
    check("closed after EHLO+MAIL", (True, b""), (c.closed(), c.buf))
    c.close()
    c = greeted()
    c.send("HELO old.example\r\n")
    c.line()
    c.send("MAIL FROM:<>\r\nRCPT TO:<%s>\r\n" % RCPT)
    check("HELO client may not pipeline",
          "554 5.5.0 Error: SMTP protocol synchronization", c.line())
    c.close()

    # §10 item 11: other protocols on port 25.
    for first in ("GET / HTTP/1.1", "POST /", "CONNECT x.example:25",
                  "Subject: x"):
        c = greeted()
        c.send(first + "\r\n")
        check("non-SMTP first line %r" % first,
              "221 2.7.0 Error: I can break rules, too. Goodbye.", c.line())
        check("closed after %r" % first, True, c.closed())
        c.close()

    # §10 items 5, 6 and 18: dot-stuffing, lines longer than the 64 KiB
    # read piece (the piece after the cut starts with ".\r\n"), 1000 and
    # 10 000 octet lines, a line starting with two dots, the line ".."
    long_cut = b"A" * 65536 + b".\r\n"
    lines = (b"..stuffed\r\n" + b"..\r\n" + b"B" * 998 + b"\r\n" +
             b"C" * 9998 + b"\r\n" + long_cut + b"." + long_cut)
    sent = DSN.replace(ANCHOR, ANCHOR + b"\r\n" + lines)
    stored = DSN.replace(ANCHOR, ANCHOR + b"\r\n" + (
        b".stuffed\r\n" + b".\r\n" + b"B" * 998 + b"\r\n" + b"C" * 9998 +
        b"\r\n" + long_cut + long_cut))
    for bytewise in (False, True):
        how = "one byte per write" if bytewise else "one write"
        ehlo = "dots%d.client.example" % bytewise
        r = transaction(d.port, ehlo, sent + b".\r\n", byte_by_byte=bytewise)
        check("dot-stuffed message (%s) accepted" % how,
              ["354", "250 2.0.0 OK ids=", "250 2.0.0 Ok"],
              [r[0][:3], r[1][:17], r[2]])
        recs = d.wait_records(lambda x: len(by_ehlo(x, ehlo)) >= 2)
        check("dot-stuffed message (%s) records" % how,
              [("Reception", "", RCPT, 250, "", len(stored)),
               ("OOB", RCPT, "louisl@larry.slip.umd.edu", 426,
                "connection timed out", 0)],
              [summary(x) for x in by_ehlo(recs, ehlo)])

    # §10 item 6: the empty message; the session goes on.
    r = transaction(d.port, "empty.client.example", b".\r\n")
    check("empty message", ["354 End data with <CR><LF>.<CR><LF>",
                            "550 5.7.1 relaying not permitted",
                            "250 2.0.0 Ok", "221 2.0.0 Bye"], r)

    # A smuggling vector sent one byte per write is still body text: one
    # message, refused for its NUL after the real end (the default "Deny").
    r = transaction(d.port, "slow.client.example",
                    message_with(b"\r\n\0.\r\n") + b".\r\n", byte_by_byte=True)
    check("NUL vector byte by byte: one message, refused, in sync",
          ["354", NUL, "250 2.0.0 Ok"], [r[0][:3], r[1], r[2]])
    recs = d.wait_records(lambda x: len(by_ehlo(x, "slow.client.example")) >= 1)
    check("NUL vector byte by byte: records", ["Rejection"],
          [x["type"] for x in by_ehlo(recs, "slow.client.example")])
    check("no smuggled record", [], [x for x in recs
                                     if "smuggler" in x["sender"]])
    check("daemon exit status", 0, d.stop())
except Exception as e:
    not_ok("smtp_smuggling harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()
finish()
