# SPDX-License-Identifier: Apache-2.0
"""The SMTP dialogue of the real daemon: greeting, EHLO, sequencing, replies
with enhanced codes, relay refusal and the Rejection records it logs."""

import re

from oobdtest import Client, Oobd, check, finish, not_ok, ok

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
log_arf = "LogThenDrop"
"""

d = Oobd(domains=DOMAINS)
try:
    d.start()
    c = Client(d.port)
    check("greeting", "220 mx.test.example ESMTP oobd", c.line())
    c.send("EHLO client.test.example\r\n")
    code, lines = c.reply()
    check("EHLO reply", (250, ["mx.test.example", "PIPELINING",
                               "SIZE 20000000", "8BITMIME", "SMTPUTF8",
                               "ENHANCEDSTATUSCODES"]), (code, lines))
    check("RCPT before MAIL", "503 5.5.1 Error: need MAIL command",
          c.cmd("RCPT TO:<a@bounce.example.com>"))
    check("DATA before MAIL", "503 5.5.1 Error: need MAIL command",
          c.cmd("DATA"))
    check("DATA with argument", "501 5.5.4 Syntax: DATA", c.cmd("DATA x"))
    check("MAIL", "250 2.1.0 Ok", c.cmd("MAIL FROM:<sender@example.org>"))
    check("nested MAIL", "503 5.5.1 Error: nested MAIL command",
          c.cmd("MAIL FROM:<>"))
    check("DATA before RCPT", "503 5.5.1 Error: need RCPT command",
          c.cmd("DATA"))
    check("relay denied",
          "550 5.7.1 relaying not permitted for 127.0.0.1:%d"
          % c.sock.getsockname()[1],
          c.cmd("RCPT TO:<someone@elsewhere.example>"))
    check("DATA after only refused RCPTs", "554 5.5.1 Error: no valid recipients",
          c.cmd("DATA"))
    check("RCPT to a bounce domain", "250 2.1.5 Ok",
          c.cmd("RCPT TO:<b@Bounce.Example.COM>"))
    check("RSET", "250 2.0.0 Ok", c.cmd("RSET"))
    check("RCPT after RSET", "503 5.5.1 Error: need MAIL command",
          c.cmd("RCPT TO:<b@bounce.example.com>"))
    check("NOOP", "250 2.0.0 Ok", c.cmd("NOOP"))
    check("VRFY", "252 2.0.0 Cannot VRFY user, but will accept message and "
          "attempt delivery", c.cmd("VRFY postmaster"))
    check("EXPN", "502 5.5.1 Error: command not implemented",
          c.cmd("EXPN list"))
    check("unknown verb", "500 5.5.2 Error: command not recognized",
          c.cmd("FOO bar"))
    check("SIZE too big", "552 5.3.4 Message size exceeds fixed maximum "
          "message size", c.cmd("MAIL FROM:<> SIZE=20000001"))
    check("SIZE syntax", "501 5.5.4 Bad message size syntax",
          c.cmd("MAIL FROM:<> SIZE=abc"))
    check("non-ASCII without SMTPUTF8",
          "553 5.6.7 Must declare SMTPUTF8 to send unicode address",
          c.cmd("MAIL FROM:<j\u00f6rg@example.com>"))
    check("QUIT", "221 2.0.0 Bye", c.cmd("QUIT"))
    check("closed after QUIT", True, c.closed())
    c.close()

    # HELO before MAIL is required.
    c = Client(d.port)
    c.line()
    check("MAIL before HELO", "503 5.5.1 Error: send HELO/EHLO first",
          c.cmd("MAIL FROM:<>"))
    check("HELO without argument", "501 5.5.4 Syntax: HELO hostname",
          c.cmd("HELO"))
    check("HELO", "250 mx.test.example", c.cmd("HELO old.example"))
    c.cmd("QUIT")
    c.close()

    # Every non-greeting, non-EHLO reply carries a matching enhanced code.
    recs = d.wait_records(lambda r: len([x for x in r
                                         if x["type"] == "Rejection"]) >= 15)
    rej = [r for r in recs if r["type"] == "Rejection"]
    check("Rejection records", 15, len(rej))
    pattern = re.compile(r"^\d\.\d{1,3}\.\d{1,3}$")
    bad = [r for r in rej if str(r["response"]["code"])[0] !=
           str(r["response"]["enhanced_code"]["class"])]
    check("enhanced code class matches the reply code", [], bad)

    relay = [r for r in rej if r["response"]["code"] == 550][0]
    port = relay["response"]["content"].rsplit(":", 1)[1]
    expected = {
        "type": "Rejection", "id": "", "sender": "sender@example.org",
        "recipient": "",
        "queue": "", "site": "", "size": 0,
        "response": {"code": 550,
                     "enhanced_code": {"class": 5, "subject": 7, "detail": 1},
                     "content": "relaying not permitted for 127.0.0.1:" + port,
                     "command": "RCPT TO:<someone@elsewhere.example>"},
        "peer_address": {"name": "client.test.example", "addr": "127.0.0.1"},
        "num_attempts": 0, "egress_pool": None, "egress_source": None,
        "source_address": None, "feedback_report": None, "meta": {},
        "headers": {}, "delivery_protocol": None, "reception_protocol": None,
    }
    for k, v in expected.items():
        check("relay Rejection field " + k, v, relay.get(k))
    check("Rejection timestamp == created", relay["timestamp"],
          relay["created"])
    check("Rejection session_id form", True, bool(re.match(
        r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$",
        relay["session_id"])))
    check("Rejection key order", [
        "type", "id", "sender", "recipient", "queue", "site", "size",
        "response", "peer_address", "timestamp", "event_time", "created",
        "created_time", "num_attempts", "bounce_classification",
        "egress_pool", "egress_source", "source_address", "feedback_report",
        "meta", "headers", "delivery_protocol", "reception_protocol",
        "nodeid", "session_id"], list(relay.keys()))
    nested = [r for r in rej if r["response"]["content"] ==
              "Error: nested MAIL command"][0]
    check("Rejection in a transaction has its sender", "sender@example.org",
          nested["sender"])
    check("Rejection command is the client's line", "MAIL FROM:<>",
          nested["response"]["command"])
    rc = d.stop()
    check("SIGTERM exit status", 0, rc)
except Exception as e:  # a crash of the harness is a failure, not a skip
    not_ok("smtp_basic harness", repr(e) + "\n" + d.stderr_text()
           if hasattr(d, "stderr") else repr(e))
finally:
    d.cleanup()
finish()
