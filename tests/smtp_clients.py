# SPDX-License-Identifier: Apache-2.0
"""Real SMTP clients against the real daemon: swaks (plain and with
PIPELINING) and Python's smtplib send DSNs, ARF reports and plain mail; the
replies they report are checked line by line, and the records read back
from the zstd logs field by field. Domain lookups are case-insensitive in
the files' keys and in the addresses, for exact, wildcard and per-listener
entries."""

import os
import re
import smtplib
import socket
import subprocess
import tempfile
import time

from oobdtest import Client, Oobd, check, corpus, finish, free_port, not_ok, to_crlf

# CRLF line ends, as a client must send them (smtplib sends bytes as given).
DSN = to_crlf(corpus("kumomta/rfc3464/1.eml"))
ARF = to_crlf(corpus("kumomta/rfc5965/1.eml"))
PLAIN = b"From: a@example.org\r\nTo: b@bounce.example.com\r\nSubject: hi\r\n\r\nhello\r\n"

p1 = free_port()
p2 = free_port()
# Keys in mixed case: lookups must not depend on case on either side.
DOMAINS = """
["Bounce.Example.COM"]
log_oob = "LogThenDrop"
log_arf = "LogThenDrop"

["*.Wild.Example"]
log_oob = "LogThenDrop"

[listener."127.0.0.1:%d"."PerListener.Example"]
log_oob = "LogThenDrop"
""" % p1

ID = re.compile(r"^[0-9a-f]{12}1[0-9a-f]{19}$")
EHLO_LINES = ["250-mx.test.example", "250-PIPELINING", "250-SIZE 20000000",
              "250-8BITMIME", "250-SMTPUTF8", "250 ENHANCEDSTATUSCODES"]


def received_len(ehlo, rcpt):
    # "Received: from EHLO (IP)\r\n\tby HOST (oobd) with ESMTP id ID\r\n"
    # "\tfor <RCPT>; Sun, 22 Nov 2026 10:00:00 +0000\r\n"
    return len("Received: from %s (127.0.0.1)\r\n\tby mx.test.example (oobd) "
               "with ESMTP id %s\r\n\tfor <%s>; %s\r\n"
               % (ehlo, "0" * 32, rcpt, "x" * 31))


def swaks(port, *args):
    """Run swaks; (exit status, [server reply lines], [client lines])."""
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port),
                        "--timeout", "30", "--helo", "swaks.test.example"]
                       + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                       timeout=60)
    out = p.stdout.decode("utf-8", "replace").splitlines()
    replies = [l[4:] for l in out if l.startswith(("<-  ", "<** "))]
    errors = [l[4:] for l in out if l.startswith("<** ")]
    sent = [l[4:] for l in out if l.startswith((" -> ", "**> "))]
    return p.returncode, replies, errors, sent


def wait_unread(server_port, client_port, timeout):
    """Wait until the server's socket of a loopback connection has no
    unread bytes (the rx_queue of /proc/net/tcp) and the client's has none
    unsent; False when that does not happen within timeout seconds."""
    local = "0100007F:%04X" % server_port
    remote = "0100007F:%04X" % client_port
    deadline = time.time() + timeout
    while time.time() < deadline:
        queues = {}
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                x = line.split()
                tx, rx = (int(q, 16) for q in x[4].split(":"))
                queues[(x[1], x[2])] = (tx, rx)
        srv = queues.get((local, remote))
        cli = queues.get((remote, local))
        if srv is not None and cli is not None and srv[1] == 0 and \
                cli[0] == 0:
            return True
        time.sleep(0.02)
    return False


def by_id(recs, id_, type_):
    return [r for r in recs if r["id"] == id_ and r["type"] == type_]


def check_fields(name, expected, rec):
    for k, v in expected.items():
        check("%s: %s" % (name, k), v, rec.get(k) if rec else "<no record>")


# What the OOB record of kumomta/rfc3464/1.eml holds, whoever sends it.
OOB_FIELDS = {
    "type": "OOB", "recipient": "louisl@larry.slip.umd.edu", "site": "",
    "size": 0,
    "response": {"code": 426,
                 "enhanced_code": {"class": 4, "subject": 0, "detail": 0},
                 "content": "connection timed out", "command": None},
    "peer_address": {"name": "cs.utk.edu", "addr": "127.0.0.1"},
    "timestamp": 773615749, "event_time": "1994-07-07T21:15:49Z",
    "num_attempts": 0, "bounce_classification": "NoAnswerFromHost",
    "egress_pool": None, "egress_source": None, "source_address": None,
    "feedback_report": None, "meta": {}, "headers": {},
    "delivery_protocol": None, "reception_protocol": "ESMTP",
}

d = Oobd(domains=DOMAINS, listener={
    "listen": '["127.0.0.1:%d", "127.0.0.1:%d"]' % (p1, p2)}, port=p1)
tmp = tempfile.mkdtemp(prefix="oobd-clients-")
try:
    d.start()
    dsn_path = os.path.join(tmp, "dsn.eml")
    with open(dsn_path, "wb") as f:
        f.write(DSN)

    # ---- swaks: a DSN, null sender, recipient in another case ----
    rc, replies, errors, sent = swaks(p1, "--from", "<>", "--to",
                                      "b@BOUNCE.example.com",
                                      "--data", "@" + dsn_path)
    check("swaks DSN: exit status", 0, rc)
    check("swaks DSN: no error replies", [], errors)
    ids = replies[-2].split("ids=")[1] if len(replies) >= 2 else ""
    # What swaks sent between DATA and the final dot (it ends the data
    # with a line break of its own).
    wire = sent[sent.index("DATA") + 1:sent.index(".")] if "." in sent else []
    check("swaks DSN: the data as sent", DSN.decode().split("\r\n"), wire)
    check("swaks DSN: replies", ["220 mx.test.example ESMTP oobd"] +
          EHLO_LINES + ["250 2.1.0 Ok", "250 2.1.5 Ok",
                        "354 End data with <CR><LF>.<CR><LF>",
                        "250 2.0.0 OK ids=" + ids, "221 2.0.0 Bye"], replies)
    check("swaks DSN: one spool id", True, bool(ID.match(ids)))
    check("swaks DSN: commands", ["EHLO swaks.test.example", "MAIL FROM:<>",
                                  "RCPT TO:<b@BOUNCE.example.com>", "DATA"],
          sent[:4])
    recs = d.wait_records(lambda r: len(by_id(r, ids, "OOB")) == 1)
    rec = (by_id(recs, ids, "Reception") or [None])[0]
    oob = (by_id(recs, ids, "OOB") or [None])[0]
    check_fields("swaks DSN Reception", {
        "type": "Reception", "id": ids, "sender": "",
        "recipient": "b@BOUNCE.example.com", "queue": "bounce.example.com",
        "site": "",
        "size": sum(len(l) + 2 for l in wire) + received_len(
            "swaks.test.example", "b@BOUNCE.example.com"),
        "response": {"code": 250, "enhanced_code": None, "content": "",
                     "command": None},
        "peer_address": {"name": "swaks.test.example", "addr": "127.0.0.1"},
        "bounce_classification": "Uncategorized", "feedback_report": None,
        "reception_protocol": "ESMTP"}, rec)
    check_fields("swaks DSN OOB", dict(OOB_FIELDS, id=ids,
                                       sender="b@BOUNCE.example.com",
                                       queue="bounce.example.com"), oob)
    if rec and oob:
        check("swaks DSN: OOB shares the Reception's session and times",
              (rec["session_id"], rec["created"], rec["nodeid"]),
              (oob["session_id"], oob["created"], oob["nodeid"]))

    # ---- swaks with PIPELINING: MAIL, RCPT and DATA in one write ----
    rc, replies, errors, sent = swaks(p1, "--pipeline", "--from", "<>",
                                      "--to", "x@a.b.wild.example",
                                      "--data", "@" + dsn_path)
    check("swaks --pipeline: exit status", 0, rc)
    pids = replies[-2].split("ids=")[1] if len(replies) >= 2 else ""
    check("swaks --pipeline: replies", ["220 mx.test.example ESMTP oobd"] +
          EHLO_LINES + ["250 2.1.0 Ok", "250 2.1.5 Ok",
                        "354 End data with <CR><LF>.<CR><LF>",
                        "250 2.0.0 OK ids=" + pids, "221 2.0.0 Bye"], replies)
    recs = d.wait_records(lambda r: len(by_id(r, pids, "OOB")) == 1)
    check_fields("swaks --pipeline OOB (wildcard key in another case)",
                 dict(OOB_FIELDS, id=pids, sender="x@a.b.wild.example",
                      queue="a.b.wild.example"),
                 (by_id(recs, pids, "OOB") or [None])[0])

    # ---- swaks: relaying denied, and its Rejection record ----
    rc, replies, errors, sent = swaks(p1, "--from", "a@example.org", "--to",
                                      "x@elsewhere.example")
    check("swaks relay denied: exit status (RCPT refused)", 24, rc)
    m = re.match(r"^550 5\.7\.1 relaying not permitted for 127\.0\.0\.1:(\d+)$",
                 errors[0] if errors else "")
    check("swaks relay denied: the 550 5.7.1 reply with the client port",
          True, bool(m))
    check("swaks relay denied: QUIT after it", "221 2.0.0 Bye", replies[-1])
    if m:
        content = errors[0][10:]
        recs = d.wait_records(lambda r: any(
            x["type"] == "Rejection" and x["response"]["content"] == content
            for x in r))
        rej = [x for x in recs if x["type"] == "Rejection" and
               x["response"]["content"] == content]
        check_fields("swaks relay Rejection", {
            "type": "Rejection", "id": "", "sender": "a@example.org",
            "recipient": "", "queue": "", "site": "", "size": 0,
            "response": {"code": 550, "enhanced_code": {
                "class": 5, "subject": 7, "detail": 1}, "content": content,
                "command": "RCPT TO:<x@elsewhere.example>"},
            "peer_address": {"name": "swaks.test.example",
                             "addr": "127.0.0.1"},
            "reception_protocol": None}, rej[0] if rej else None)

    # ---- smtplib: EHLO features, two recipients, one refused ----
    s = smtplib.SMTP("127.0.0.1", p1, local_hostname="smtplib.test.example",
                     timeout=30)
    code, msg = s.ehlo()
    check("smtplib EHLO", (250, b"mx.test.example\nPIPELINING\nSIZE 20000000"
                                b"\n8BITMIME\nSMTPUTF8\nENHANCEDSTATUSCODES"),
          (code, msg))
    check("smtplib EHLO features", {"pipelining": "", "size": "20000000",
                                    "8bitmime": "", "smtputf8": "",
                                    "enhancedstatuscodes": ""},
          s.esmtp_features)
    check("smtplib MAIL with SIZE", (250, b"2.1.0 Ok"),
          s.mail("", ["SIZE=%d" % len(DSN)]))
    check("smtplib RCPT exact domain", (250, b"2.1.5 Ok"),
          s.rcpt("one@bounce.example.com"))
    code, msg = s.rcpt("two@nowhere.example")
    check("smtplib RCPT refused", (550, True), (code, bool(re.match(
        rb"^5\.7\.1 relaying not permitted for 127\.0\.0\.1:\d+$", msg))))
    check("smtplib RCPT per-listener key in another case", (250, b"2.1.5 Ok"),
          s.rcpt("three@perlistener.EXAMPLE"))
    code, msg = s.data(DSN)
    m = re.match(rb"^2\.0\.0 OK ids=([0-9a-f]{32}) ([0-9a-f]{32})$", msg)
    check("smtplib DATA: 250 with two ids", (250, True), (code, bool(m)))
    check("smtplib QUIT", (221, b"2.0.0 Bye"), s.quit())
    if m:
        i1, i2 = m.group(1).decode(), m.group(2).decode()
        recs = d.wait_records(lambda r: len(by_id(r, i2, "OOB")) == 1)
        for id_, rcpt, queue in ((i1, "one@bounce.example.com",
                                  "bounce.example.com"),
                                 (i2, "three@perlistener.EXAMPLE",
                                  "perlistener.example")):
            rec = (by_id(recs, id_, "Reception") or [None])[0]
            check_fields("smtplib Reception for " + rcpt, {
                "sender": "", "recipient": rcpt, "queue": queue,
                "size": len(DSN) + received_len(
                    "smtplib.test.example", rcpt),
                "peer_address": {"name": "smtplib.test.example",
                                 "addr": "127.0.0.1"}}, rec)
            check_fields("smtplib OOB for " + rcpt,
                         dict(OOB_FIELDS, id=id_, sender=rcpt, queue=queue),
                         (by_id(recs, id_, "OOB") or [None])[0])
        check("smtplib: the same session for both", 1, len(set(
            r["session_id"] for r in recs if r["id"] in (i1, i2))))

    # ---- smtplib sendmail: an ARF report, and a plain message refused ----
    s = smtplib.SMTP("127.0.0.1", p1, local_hostname="smtplib.test.example",
                     timeout=30)
    check("smtplib sendmail ARF: nothing refused", {},
          s.sendmail("fbl@isp.example", ["fbl@bounce.example.com"], ARF))
    try:
        s.sendmail("a@example.org", ["b@bounce.example.com"], PLAIN)
        not_ok("smtplib sendmail plain: refused at DATA")
    except smtplib.SMTPDataError as e:
        check("smtplib sendmail plain: refused at DATA",
              (550, b"5.7.1 relaying not permitted"), (e.smtp_code,
                                                       e.smtp_error))
    refused = s.sendmail("", ["x@perlistener.example", "y@nowhere.example"],
                         DSN)
    check("smtplib sendmail: the refused recipient reported", True,
          list(refused) == ["y@nowhere.example"] and
          refused["y@nowhere.example"][0] == 550)
    s.quit()
    recs = d.wait_records(lambda r: any(x["type"] == "Feedback" for x in r))
    fb = [r for r in recs if r["type"] == "Feedback"]
    check("smtplib ARF: one Feedback record", 1, len(fb))
    if fb:
        check_fields("smtplib ARF Feedback", {
            "sender": "fbl@isp.example", "recipient": "fbl@bounce.example.com",
            "queue": "bounce.example.com",
            "size": len(ARF) + received_len("smtplib.test.example",
                                                     "fbl@bounce.example.com"),
            "peer_address": {"name": "smtplib.test.example",
                             "addr": "127.0.0.1"}}, fb[0])
        check("smtplib ARF: feedback type", "abuse",
              fb[0]["feedback_report"]["feedback_type"])

    # ---- a large message is parsed off the event loop ----
    # A DSN returning a 15 MB message. Once the server has read all of its
    # data but the final dot, the dot is sent and another session asks for
    # a NOOP: were the message parsed on the event loop, its 250 would be
    # written before that NOOP's reply; off the loop, the NOOP is answered
    # while a worker is still parsing.
    big_body = b"".join(b"line %07d of the returned message, padded to "
                        b"eighty octets ..................\r\n" % i
                        for i in range(190000))
    big = DSN.replace(b"[original message goes here]\r\n",
                      b"Subject: big\r\n\r\n" + big_body)
    check("large DSN: over 15 MB", True, len(big) > 15000000)
    a = Client(p1, timeout=60)
    b = Client(p1, timeout=60)
    a.line()
    b.line()
    a.cmd("EHLO big.test.example")
    b.cmd("EHLO small.test.example")
    a.cmd("MAIL FROM:<>")
    a.cmd("RCPT TO:<big@bounce.example.com>")
    a.cmd("DATA")
    a.send(big)
    drained = wait_unread(p1, a.sock.getsockname()[1], 60)
    check("large DSN: the server has read the data", True, drained)
    a.send(b".\r\n")
    noop = b.cmd("NOOP")
    a.sock.settimeout(0)
    try:
        early = a.sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        early = b""
    a.sock.settimeout(60)
    check("large DSN: another session answered while it is parsed",
          ("250 2.0.0 Ok", b""), (noop, early))
    r = a.line()
    check("large DSN: accepted", True, r.startswith("250 2.0.0 OK ids="))
    a.cmd("QUIT")
    b.cmd("QUIT")
    a.close()
    b.close()
    if r.startswith("250 "):
        big_id = r.split("ids=")[1]
        recs = d.wait_records(lambda x: len(by_id(x, big_id, "OOB")) == 1)
        rec = (by_id(recs, big_id, "Reception") or [None])[0]
        check("large DSN: Reception size", len(big) + received_len(
            "big.test.example", "big@bounce.example.com"),
            rec["size"] if rec else None)
        check_fields("large DSN OOB", dict(OOB_FIELDS, id=big_id,
                                           sender="big@bounce.example.com",
                                           queue="bounce.example.com"),
                     (by_id(recs, big_id, "OOB") or [None])[0])

    # ---- the per-listener entry is not seen on the other listener ----
    rc, replies, errors, sent = swaks(p2, "--from", "<>", "--to",
                                      "x@PerListener.example",
                                      "--data", "@" + dsn_path)
    check("swaks other listener: RCPT refused", (24, True), (rc, bool(
        errors and errors[0].startswith("550 5.7.1 relaying not permitted "
                                        "for 127.0.0.1:"))))
    check("SIGTERM exit status", 0, d.stop())
except Exception as e:
    not_ok("smtp_clients harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()
    subprocess.run(["rm", "-rf", tmp])
finish()
