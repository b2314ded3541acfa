# SPDX-License-Identifier: Apache-2.0
"""Listener domains and dispositions through the real daemon: KumoMTA's
five-message scenario (log_oob_arf.rs), whole records field by field,
wildcard and per-listener lookups."""

import os
import re
import socket
import subprocess
import time

from oobdtest import (Client, Oobd, check, corpus, finish, free_port, not_ok,
                      send_message, to_crlf)

DSN = corpus("kumomta/rfc3464/1.eml")
ARF = corpus("kumomta/rfc5965/1.eml")
PLAIN = b"From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"

p1 = free_port()
p2 = free_port()
DOMAINS = """
["example.com"]
relay_to = false
log_oob = true
log_arf = "LogThenRelay"

["thendrop.example.com"]
log_oob = "LogThenDrop"
log_arf = "LogThenDrop"

["*.wild.example"]
log_oob = "LogThenDrop"

[listener."127.0.0.1:%d"."perlistener.example"]
log_oob = "LogThenDrop"
""" % p1

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")
ID = re.compile(r"^[0-9a-f]{12}1[0-9a-f]{19}$")


def received_len(ehlo, rcpt, hostname="mx.test.example"):
    # "Received: from EHLO (IP)\r\n\tby HOST (oobd) with ESMTP id ID\r\n"
    # "\tfor <RCPT>; Sun, 22 Nov 2026 10:00:00 +0000\r\n"
    return len("Received: from %s (127.0.0.1)\r\n\tby %s (oobd) with ESMTP "
               "id %s\r\n\tfor <%s>; %s\r\n" % (ehlo, hostname, "0" * 32,
                                                rcpt, "x" * 31))


# The next hop of the LogThenRelay reports: smtp-sink, accepting all.
hop = free_port()
sink = subprocess.Popen(["smtp-sink"] + (["-u", "nobody"] if os.geteuid() == 0
                                         else []) +
                        ["127.0.0.1:%d" % hop, "16"], stderr=subprocess.DEVNULL)
for _ in range(200):
    try:
        socket.create_connection(("127.0.0.1", hop), 0.2).close()
        break
    except OSError:
        time.sleep(0.05)
d = Oobd(domains=DOMAINS, listener={
    "listen": '["127.0.0.1:%d", "127.0.0.1:%d"]' % (p1, p2)}, port=p1,
    relay={"next_hop": '"[127.0.0.1]:%d"' % hop})
try:
    d.start()
    r1 = send_message(p1, "", ["bounce@example.com"], DSN)
    r2 = send_message(p1, "", ["bounce@thendrop.example.com"], DSN)
    r3 = send_message(p1, "fbl@isp.example", ["fbl@example.com"], ARF)
    r4 = send_message(p1, "fbl@isp.example", ["fbl@thendrop.example.com"], ARF)
    r5 = send_message(p1, "a@example.org", ["b@example.com"], PLAIN)
    for i, r in enumerate((r1, r2, r3, r4)):
        check("report %d accepted" % (i + 1), True,
              bool(re.match(r"^250 2.0.0 OK ids=[0-9a-f]{32}$", r[-2])))
    check("plain message refused", "550 5.7.1 relaying not permitted", r5[-2])
    check("plain message RCPT accepted (log-only domain)", "250 2.1.5 Ok", r5[3])

    recs = d.wait_records(lambda r: sum(x["type"] == "Rejection" for x in r) >= 1
                          and sum(x["type"] == "Delivery" for x in r) >= 2
                          and len(r) >= 10)
    counts = {}
    for r in recs:
        counts[r["type"]] = counts.get(r["type"], 0) + 1
    check("record counts", {"Reception": 3, "OOB": 2, "Feedback": 2,
                            "Delivery": 2, "Rejection": 1}, counts)
    check("Delivery records: the two LogThenRelay reports",
          sorted([r1[-2].split("ids=")[1], r3[-2].split("ids=")[1]]),
          sorted(r["id"] for r in recs if r["type"] == "Delivery"))

    # The DSN for example.com: its Reception, then its OOB record.
    rec = [r for r in recs if r["type"] == "Reception"
           and r["recipient"] == "bounce@example.com"][0]
    oob = [r for r in recs if r["type"] == "OOB"
           and r["sender"] == "bounce@example.com"][0]
    check("Reception before its OOB", True, recs.index(rec) < recs.index(oob))
    id_ = r1[-2].split("ids=")[1]
    expected_rec = {
        "type": "Reception", "id": id_, "sender": "",
        "recipient": "bounce@example.com", "queue": "example.com", "site": "",
        "size": len(to_crlf(DSN)) + received_len("client.test.example",
                                                 "bounce@example.com"),
        "response": {"code": 250, "enhanced_code": None, "content": "",
                     "command": None},
        "peer_address": {"name": "client.test.example", "addr": "127.0.0.1"},
        "num_attempts": 0, "bounce_classification": "Uncategorized",
        "egress_pool": None, "egress_source": None, "source_address": None,
        "feedback_report": None, "meta": {}, "headers": {},
        "delivery_protocol": None, "reception_protocol": "ESMTP",
    }
    for k, v in expected_rec.items():
        check("Reception " + k, v, rec[k])
    check("Reception nodeid", True, bool(UUID4.match(rec["nodeid"])))
    check("Reception session_id", True, bool(UUID4.match(rec["session_id"])))
    check("Reception id is a UUID v1", True, bool(ID.match(rec["id"])))
    expected_oob = {
        "type": "OOB", "id": id_, "sender": "bounce@example.com",
        "recipient": "louisl@larry.slip.umd.edu", "queue": "example.com",
        "site": "", "size": 0,
        "response": {"code": 426,
                     "enhanced_code": {"class": 4, "subject": 0, "detail": 0},
                     "content": "connection timed out", "command": None},
        "peer_address": {"name": "cs.utk.edu", "addr": "127.0.0.1"},
        "timestamp": 773615749, "event_time": "1994-07-07T21:15:49Z",
        "created": rec["created"], "created_time": rec["created_time"],
        "num_attempts": 0, "egress_pool": None, "egress_source": None,
        "source_address": None, "feedback_report": None, "meta": {},
        "headers": {}, "delivery_protocol": None,
        "reception_protocol": "ESMTP", "nodeid": rec["nodeid"],
        "session_id": rec["session_id"],
        "oob_detail": {"decoder": "rfc3464", "action": "failed",
                       "status_comment": None, "remote_mta": None,
                       "diagnostic_type": "smtp", "trace": None,
                       "reason": "networkerror", "hard_bounce": False,
                       "returned_message": None},
    }
    for k, v in expected_oob.items():
        check("OOB " + k, v, oob.get(k))
    check("OOB key order", list(rec.keys()) + ["oob_detail"], list(oob.keys()))

    fb = [r for r in recs if r["type"] == "Feedback"
          and r["recipient"] == "fbl@example.com"][0]
    check("Feedback sender", "fbl@isp.example", fb["sender"])
    check("Feedback id", r3[-2].split("ids=")[1], fb["id"])
    check("Feedback response", {"code": 250, "enhanced_code": None,
                                "content": "", "command": None}, fb["response"])
    check("Feedback type", "abuse", fb["feedback_report"]["feedback_type"])
    check("Feedback size", len(to_crlf(ARF)) + received_len(
        "client.test.example", "fbl@example.com"), fb["size"])

    rej = [r for r in recs if r["type"] == "Rejection"][0]
    check("DATA Rejection", {"sender": "", "recipient": "",
                             "response": {"code": 550, "enhanced_code": {
                                 "class": 5, "subject": 7, "detail": 1},
                                 "content": "relaying not permitted",
                                 "command": "DATA"}},
          {k: rej[k] for k in ("sender", "recipient", "response")})
    plain_rec = [r for r in recs if r["type"] == "Reception"
                 and r["recipient"] == "b@example.com"]
    check("plain message Reception logged", 1, len(plain_rec))

    # Wildcards and per-listener entries.
    denied = "550 5.7.1 relaying not permitted for 127.0.0.1:"
    check("wildcard domain", "250 2.1.5 Ok",
          send_message(p1, "", ["x@a.b.wild.example"], DSN)[3])
    check("wildcard needs a label", denied,
          send_message(p1, "", ["x@wild.example"], DSN)[3][:len(denied)])
    check("per-listener entry on its listener", "250 2.1.5 Ok",
          send_message(p1, "", ["x@perlistener.example"], DSN)[3])
    check("per-listener entry not on another listener", denied,
          send_message(p2, "", ["x@perlistener.example"], DSN)[3][:len(denied)])
    check("SIGTERM exit status", 0, d.stop())
except Exception as e:
    not_ok("dispositions harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()
    sink.terminate()
    sink.wait(10)
finish()
