# SPDX-License-Identifier: Apache-2.0
"""SIGKILL while a large message's records are being committed.

The rule after the restart's repair (docs/operations.md, "Reading the
logs"): every record of every acknowledged message is there; of the
message that never got its reply, the records present are a prefix of its
records in order (the Reception record, then OOB records from the first
on), possibly none or all of them, never a record out of order or torn.
Its sender retries, so those records can appear twice (at least once).
"""

import os
import signal
import time

from oobdtest import Client, Oobd, check, finish, not_ok, ok

DOMAIN = "bounce.test.example"
DOMAINS = '["%s"]\nlog_oob = "LogThenDrop"\n' % DOMAIN


def dsn(nrcpts, prefix):
    groups = b"".join(b"Final-Recipient: rfc822; %s%d@example.com\r\n"
                      b"Action: failed\r\nStatus: 5.1.1\r\n"
                      b"Diagnostic-Code: smtp; 550 5.1.1 %s\r\n\r\n"
                      % (prefix.encode(), i, os.urandom(40).hex().encode())
                      for i in range(nrcpts))
    return (b"From: MAILER-DAEMON@mx.example.com\r\n"
            b"To: bounce@" + DOMAIN.encode() + b"\r\n"
            b"Subject: Undelivered Mail Returned to Sender\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status;"
            b" boundary=\"BOUND\"\r\n\r\n"
            b"--BOUND\r\nContent-Type: message/delivery-status\r\n\r\n"
            b"Reporting-MTA: dns; mx.example.com\r\n\r\n" + groups +
            b"--BOUND--\r\n")


def start_tx(port, body):
    c = Client(port, timeout=120)
    c.line()
    c.cmd("EHLO client.test.example")
    c.cmd("MAIL FROM:<>")
    c.cmd("RCPT TO:<b@%s>" % DOMAIN)
    c.cmd("DATA")
    c.send(body + b".\r\n")
    return c


def seg_bytes(log_dir):
    if not os.path.isdir(log_dir):
        return 0
    return sum(os.path.getsize(os.path.join(log_dir, n))
               for n in os.listdir(log_dir) if not n.startswith("."))


outcomes = []
for attempt in range(3):
    d = Oobd(domains=DOMAINS, listener={"workers": "1"},
             logs={"max_records_per_message": "10000"})
    try:
        d.start()
        acked = []
        for i in range(3):
            c = start_tx(d.port, dsn(5, "small%d-" % i))
            reply = c.line()
            c.close()
            check("attempt %d: small message %d acknowledged" % (attempt, i),
                  "250 2.0.0 OK ids=", reply[:17])
            acked.append((reply.split("ids=")[1], "small%d-" % i, 5))
        base = seg_bytes(d.log_dir)
        big = start_tx(d.port, dsn(10000, "big-"))
        # Kill once the big message's records are reaching the segment,
        # or, if its commit is over first, right after its reply.
        deadline = time.time() + 120
        big.sock.settimeout(0.01)
        got = b""
        while time.time() < deadline:
            if seg_bytes(d.log_dir) > base + (64 << 10) * (attempt + 1):
                break
            try:
                chunk = big.sock.recv(4096)
                if not chunk:
                    break
                got += chunk
                if b"\r\n" in got:
                    break
            except OSError:
                pass
        os.kill(d.proc.pid, signal.SIGKILL)
        d.proc.wait()
        big.close()
        big_acked = got.startswith(b"250 ")
        d.stderr.close()
        d.proc = None
        d.start()
        recs = d.records()
        d.stop()
        for mid, prefix, n in acked:
            mine = [r for r in recs if r["id"] == mid]
            check("attempt %d: acknowledged %s: all its records" %
                  (attempt, prefix),
                  ["Reception"] + ["%s%d@example.com" % (prefix, k)
                                   for k in range(n)],
                  [r["type"] if r["type"] != "OOB" else r["recipient"]
                   for r in mine])
        small_ids = {a[0] for a in acked}
        rest = [r for r in recs if r["id"] not in small_ids]
        want = ["Reception"] + ["big-%d@example.com" % k
                                for k in range(10000)]
        got_seq = [r["type"] if r["type"] != "OOB" else r["recipient"]
                   for r in rest]
        check("attempt %d: the killed message's records are a prefix of "
              "its records, in order" % attempt,
              want[:len(got_seq)], got_seq)
        if big_acked:
            check("attempt %d: acknowledged before the kill: all 10,001"
                  % attempt, 10001, len(got_seq))
        outcomes.append((big_acked, len(got_seq)))
        print("# attempt %d: reply before the kill: %s; records of the "
              "big message after repair: %d of 10001" % (
                  attempt, big_acked, len(got_seq)))
    except Exception as e:
        not_ok("attempt %d harness" % attempt, repr(e) + "\n" +
               d.stderr_text())
    finally:
        d.cleanup()
finish()
