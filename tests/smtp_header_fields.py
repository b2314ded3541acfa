# SPDX-License-Identifier: Apache-2.0
"""[listener] max_header_fields against header-count amplification.

A message of millions of tiny header fields ("a:b\\r\\n" repeated) costs
GMime about a kilobyte per field: 19.9 MB of them took oobd to 4.7 GB.
The DATA reader counts the top-level fields and, past the limit, keeps
nothing more of the message; the worker checks every nested header block
(a MIME part's, a message/rfc822 part's, a delivery-status group) before
GMime sees any. Both answer 554 5.6.0, as the MIME limits do, with a
Rejection record.
"""

import os

from oobdtest import Client, Oobd, check, finish, not_ok

DOMAIN = "bounce.test.example"
DOMAINS = '["%s"]\nlog_oob = "LogThenDrop"\nlog_arf = "LogThenDrop"\n' % DOMAIN
MAX_MESSAGE = 8000000
REFUSED = ("554 5.6.0 Error: more header fields in one header block than "
           "the limit of %d")
HEAD = (b"From: MAILER-DAEMON@mx.example.com\r\n"
        b"To: bounce@" + DOMAIN.encode() + b"\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n")


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def dsn(status_groups=b"", part_header=b"", returned=b"Subject: x\r\n",
        top_fields=b""):
    return (HEAD + top_fields + b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status;"
            b" boundary=\"BOUND\"\r\n\r\n"
            b"--BOUND\r\nContent-Type: text/plain\r\n" + part_header +
            b"\r\nIt bounced.\r\n\r\n"
            b"--BOUND\r\nContent-Type: message/delivery-status\r\n\r\n"
            b"Reporting-MTA: dns; mx.example.com\r\n\r\n"
            b"Final-Recipient: rfc822; user@example.com\r\n"
            b"Action: failed\r\nStatus: 5.1.1\r\n\r\n" + status_groups +
            b"--BOUND\r\nContent-Type: text/rfc822-headers\r\n\r\n" +
            returned + b"\r\n--BOUND--\r\n")


def top(nfields):
    """A DSN whose top-level header has nfields fields in all."""
    return dsn(top_fields=b"X-F: v\r\n" * (nfields - 5))


def transaction(port, body, timeout=600):
    c = Client(port, timeout=timeout)
    out = [c.line(), c.cmd("EHLO client.test.example"),
           c.cmd("MAIL FROM:<>"), c.cmd("RCPT TO:<b@%s>" % DOMAIN),
           c.cmd("DATA")]
    c.send(body + b".\r\n")
    out.append(c.line())
    c.cmd("QUIT")
    c.close()
    return out[-1]


def rejections(d, n):
    recs = d.wait_records(
        lambda r: sum(x["type"] == "Rejection" for x in r) >= n, 30)
    return [{k: r[k] for k in ("sender", "recipient", "response")}
            for r in recs if r["type"] == "Rejection"]


def rejection(limit):
    return {"sender": "", "recipient": "",
            "response": {"code": 554, "enhanced_code": {
                "class": 5, "subject": 6, "detail": 0},
                "content": (REFUSED % limit)[10:], "command": "DATA"}}


# ---- the attack on the top-level header, and nested header blocks ----
d = Oobd(domains=DOMAINS,
         listener={"max_message_size": str(MAX_MESSAGE), "workers": "1"})
try:
    d.start()
    base = status_kb(d.proc.pid, "VmHWM")
    attack = HEAD + b"a:b\r\n" * ((MAX_MESSAGE - 1000) // 5) + b"\r\nx\r\n"
    check("top-level: %d fields refused" % (len(attack) // 5),
          REFUSED % 1000, transaction(d.port, attack))
    peak = status_kb(d.proc.pid, "VmHWM")
    print("# VmHWM %d kB at start, %d kB after %d bytes of fields" % (
        base, peak, len(attack)))
    check("top-level: peak RSS grew by under 2 x max_message_size", True,
          (peak - base) * 1024 < 2 * MAX_MESSAGE)
    check("top-level: peak RSS under 16 x max_message_size", True,
          peak * 1024 < 16 * MAX_MESSAGE)
    check("top-level: 1000 fields accepted", "250 2.0.0 OK ids=",
          transaction(d.port, top(1000))[:17])
    check("top-level: 1001 fields refused", REFUSED % 1000,
          transaction(d.port, top(1001)))

    # Nested blocks reach the worker, which checks them before GMime.
    nested = dsn(part_header=b"X-P: v\r\n" * ((MAX_MESSAGE - 2000) // 8))
    check("MIME part header: %d fields refused" % ((MAX_MESSAGE - 2000) // 8),
          REFUSED % 1000, transaction(d.port, nested))
    peak = status_kb(d.proc.pid, "VmHWM")
    check("MIME part header: peak RSS grew by under 4 x max_message_size",
          True, (peak - base) * 1024 < 4 * MAX_MESSAGE)
    check("delivery-status group of 1001 fields refused", REFUSED % 1000,
          transaction(d.port, dsn(
              status_groups=b"Final-Recipient: rfc822; u@example.com\r\n" +
              b"X-G: v\r\n" * 1000 + b"\r\n")))
    check("returned headers of 1001 fields refused", REFUSED % 1000,
          transaction(d.port, dsn(returned=b"X-R: v\r\n" * 1001)))
    check("returned headers of 1000 fields accepted", "250 2.0.0 OK ids=",
          transaction(d.port, dsn(returned=b"X-R: v\r\n" * 1000))[:17])
    # 5,000 groups of 3 fields: many blocks, none over the limit.
    many = b"".join(b"Final-Recipient: rfc822; u%d@example.com\r\n"
                    b"Action: failed\r\nStatus: 5.1.1\r\n\r\n" % i
                    for i in range(5000))
    check("5,000 delivery-status groups accepted", "250 2.0.0 OK ids=",
          transaction(d.port, dsn(status_groups=many))[:17])
    check("SIGTERM exit status", 0, d.stop())
    check("a Rejection record for each refusal",
          [rejection(1000)] * 5, rejections(d, 5))
    recs = d.records()
    check("the accepted messages' records",
          {"Reception": 3, "OOB": 1 + 1 + 5001},
          {t: sum(r["type"] == t for r in recs)
           for t in ("Reception", "OOB")})
except Exception as e:
    not_ok("smtp_header_fields harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# ---- another limit: both checks read it ----
d = Oobd(domains=DOMAINS, listener={"max_header_fields": "2000"})
try:
    d.start()
    check("max_header_fields 2000: 2000 top-level fields accepted",
          "250 2.0.0 OK ids=", transaction(d.port, top(2000))[:17])
    check("max_header_fields 2000: 2001 top-level fields refused",
          REFUSED % 2000, transaction(d.port, top(2001)))
    check("max_header_fields 2000: returned headers of 2000 accepted",
          "250 2.0.0 OK ids=",
          transaction(d.port, dsn(returned=b"X-R: v\r\n" * 2000))[:17])
    check("max_header_fields 2000: returned headers of 2001 refused",
          REFUSED % 2000,
          transaction(d.port, dsn(returned=b"X-R: v\r\n" * 2001)))
    check("SIGTERM exit status", 0, d.stop())
    check("max_header_fields 2000: a Rejection record for each refusal",
          [rejection(2000)] * 2, rejections(d, 2))
except Exception as e:
    not_ok("smtp_header_fields limit harness", repr(e) + "\n" +
           d.stderr_text())
finally:
    d.cleanup()
finish()
