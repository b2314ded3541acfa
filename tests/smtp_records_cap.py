# SPDX-License-Identifier: Apache-2.0
"""[logs] max_records_per_message against records multiplied by RCPT.

A DSN listing 10,000 failed recipients, sent to 100 recipients of a
log-only domain, would give 100 x 10,001 records. oobd keeps one
Reception record per recipient and the first max_records_per_message OOB
records of the message (recipient order, then report order), counts the
rest in oobd_records_capped_total, logs event=records-capped, and holds
one record at a time in memory. `oobd parse` applies the same cap.
"""

import json
import os
import subprocess
import tempfile
import urllib.request

from oobdtest import (OOBD, Client, Oobd, check, finish, free_port, not_ok,
                      ok, toml_str)

DOMAIN = "bounce.test.example"
DOMAINS = '["%s"]\nlog_oob = "LogThenDrop"\nlog_arf = "LogThenDrop"\n' % DOMAIN
MAX_MESSAGE = 4 << 20


def dsn(nrcpts, prefix="user"):
    """A DSN whose delivery-status part lists nrcpts failed recipients,
    prefix0@example.com, prefix1@example.com, ..."""
    groups = b"".join(b"Final-Recipient: rfc822; %s%d@example.com\r\n"
                      b"Action: failed\r\nStatus: 5.1.1\r\n"
                      b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
                      % (prefix.encode(), i) for i in range(nrcpts))
    return (b"From: MAILER-DAEMON@mx.example.com\r\n"
            b"To: bounce@" + DOMAIN.encode() + b"\r\n"
            b"Subject: Undelivered Mail Returned to Sender\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status;"
            b" boundary=\"BOUND\"\r\n\r\n"
            b"--BOUND\r\nContent-Type: text/plain\r\n\r\nIt bounced.\r\n\r\n"
            b"--BOUND\r\nContent-Type: message/delivery-status\r\n\r\n"
            b"Reporting-MTA: dns; mx.example.com\r\n\r\n" + groups +
            b"--BOUND\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            b"Subject: x\r\n\r\n--BOUND--\r\n")


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def metric(port, name):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                  timeout=30).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    return None


def transaction(port, rcpts, body, timeout=300):
    c = Client(port, timeout=timeout)
    out = [c.line(), c.cmd("EHLO client.test.example")]
    out.append(c.cmd("MAIL FROM:<>"))
    for r in rcpts:
        out.append(c.cmd("RCPT TO:<%s>" % r))
    out.append(c.cmd("DATA"))
    c.send(body + b".\r\n")
    out.append(c.line())
    c.cmd("QUIT")
    c.close()
    return out


def by_type(recs):
    out = {}
    for r in recs:
        out[r["type"]] = out.get(r["type"], 0) + 1
    return out


# ---- the attack: 10,000 recipients in the DSN, 100 RCPTs ----
# Under AddressSanitizer freed memory waits in a 256 MB quarantine, which
# VmHWM would count: keep it small, so the bound below measures oobd.
opts = os.environ.get("ASAN_OPTIONS", "")
os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + \
    "quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
BIG = dsn(10000)
RCPTS = ["b%d@%s" % (i, DOMAIN) for i in range(100)]
admin = free_port()
d = Oobd(domains=DOMAINS, admin="127.0.0.1:%d" % admin,
         listener={"max_message_size": str(MAX_MESSAGE), "workers": "1"})
try:
    d.start()
    base = status_kb(d.proc.pid, "VmHWM")
    replies = transaction(d.port, RCPTS, BIG)
    check("attack: 100 RCPTs accepted", ["250"] * 100,
          [r[:3] for r in replies[3:103]])
    check("attack: the message accepted", "250 2.0.0 OK ids=",
          replies[-1][:17])
    peak = status_kb(d.proc.pid, "VmHWM")
    capped = metric(admin, "oobd_records_capped_total")
    oob_total = metric(admin, 'oobd_records_total{type="OOB"}')
    normal = transaction(d.port, ["n@" + DOMAIN], dsn(1, "normal"))
    check("normal delivery afterwards", "250 2.0.0 OK ids=", normal[-1][:17])
    check("SIGTERM exit status", 0, d.stop())
    recs = [r for r in d.records() if r["id"] not in normal[-1]]
    check("attack: records written (100 Reception, 10,000 OOB)",
          {"Reception": 100, "OOB": 10000}, by_type(recs))
    oob = [r for r in recs if r["type"] == "OOB"]
    rcpt0 = [r for r in recs if r["type"] == "Reception"][0]
    check("attack: the OOB records are the first recipient's, in report "
          "order", ["user%d@example.com" % i for i in range(10000)],
          [r["recipient"] for r in oob])
    check("attack: every OOB record has the first recipient's id",
          {rcpt0["id"]}, {r["id"] for r in oob})
    check("attack: Reception records, one per RCPT in order", RCPTS,
          [r["recipient"] for r in recs if r["type"] == "Reception"])
    check("attack: oobd_records_capped_total", 99 * 10000, capped)
    check("attack: oobd_records_total{type=\"OOB\"}", 10000, oob_total)
    lines = [ln for ln in d.stderr_text().splitlines()
             if "event=records-capped" in ln]
    check("attack: one records-capped log line", 1, len(lines))
    check("attack: the log line's figures",
          True, bool(lines) and lines[0].endswith(
              "event=records-capped max_records_per_message=10000 "
              "kept_oob=10000 dropped_oob=990000 rcpts=100"))
    # The DSN is 1.3 MB; before the cap the records alone took 1.1 GB.
    print("# VmHWM %d kB at start, %d kB after the attack (DSN %d bytes)" % (
        base, peak, len(BIG)))
    check("attack: peak RSS under 16 x max_message_size", True,
          peak * 1024 < 16 * MAX_MESSAGE)
    check("attack: peak RSS grew by under 8 x max_message_size", True,
          (peak - base) * 1024 < 8 * MAX_MESSAGE)
except Exception as e:
    not_ok("attack harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# ---- a small cap: which records are kept ----
admin = free_port()
d = Oobd(domains=DOMAINS, admin="127.0.0.1:%d" % admin,
         logs={"max_records_per_message": "250"})
try:
    d.start()
    replies = transaction(d.port, ["r%d@%s" % (i, DOMAIN) for i in range(3)],
                          dsn(100))
    check("cap 250: accepted", "250 2.0.0 OK ids=", replies[-1][:17])
    capped = metric(admin, "oobd_records_capped_total")
    replies2 = transaction(d.port, ["r@" + DOMAIN], dsn(250))
    capped2 = metric(admin, "oobd_records_capped_total")
    check("SIGTERM exit status (cap 250)", 0, d.stop())
    recs = [r for r in d.records() if r["id"] not in replies2[-1]]
    seq = []
    for r in recs:
        if r["type"] == "Reception":
            seq.append(("R", r["recipient"]))
        elif seq and seq[-1][0] == "O" and seq[-1][1] == r["id"]:
            seq[-1] = ("O", r["id"], seq[-1][2] + 1, seq[-1][3],
                       r["recipient"])
        else:
            seq.append(("O", r["id"], 1, r["recipient"], r["recipient"]))
    ids = [r["id"] for r in recs if r["type"] == "Reception"]
    check("cap 250: Reception, 100 OOB, Reception, 100 OOB, Reception, "
          "the first 50 OOB",
          [("R", "r0@" + DOMAIN),
           ("O", ids[0], 100, "user0@example.com", "user99@example.com"),
           ("R", "r1@" + DOMAIN),
           ("O", ids[1], 100, "user0@example.com", "user99@example.com"),
           ("R", "r2@" + DOMAIN),
           ("O", ids[2], 50, "user0@example.com", "user49@example.com")],
          seq if len(ids) == 3 else None)
    check("cap 250: oobd_records_capped_total", 50, capped)
    check("cap 250: 250 OOB records to one RCPT: accepted, not capped",
          ("250 2.0.0 OK ids=", 50), (replies2[-1][:17], capped2))
    check("cap 250: one log line, for the capped message only", 1,
          d.stderr_text().count("event=records-capped"))
except Exception as e:
    not_ok("cap 250 harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# ---- oobd parse: the same cap, records printed as they are built ----
# A DSN lists at most 10,000 recipients (dsn.c), so the default cap only
# shows with a lower --max-records.
tmp = tempfile.mkdtemp(prefix="oobd-cap-")
try:
    path = os.path.join(tmp, "dsn.eml")
    with open(path, "wb") as f:
        f.write(dsn(100))
    for args, want_oob, want_err in (
            ([], 100, ""), (["--max-records", "100"], 100, ""),
            (["--max-records", "40"], 40,
             "oobd: %s: records capped: kept the first 40 OOB records, "
             "left out 60 (max_records_per_message)\n" % path)):
        name = "parse %s" % (" ".join(args) or "(default cap)")
        p = subprocess.run([OOBD, "parse", "--recipient", "b@" + DOMAIN] +
                           args + [path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=300)
        recs = [json.loads(ln) for ln in p.stdout.decode().splitlines()]
        check(name + ": exit status", 0, p.returncode)
        check(name + ": records", {"Reception": 1, "OOB": want_oob},
              by_type(recs))
        check(name + ": the OOB records kept",
              ["user%d@example.com" % i for i in range(want_oob)],
              [r["recipient"] for r in recs if r["type"] == "OOB"])
        check(name + ": stderr", want_err, p.stderr.decode())
    path = os.path.join(tmp, "dsn-10000.eml")
    with open(path, "wb") as f:
        f.write(BIG)
    p = subprocess.run([OOBD, "parse", "--recipient", "b@" + DOMAIN, path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=300)
    check("parse 10,000 recipients: all 10,000 OOB records (at the cap)",
          (0, 10000, ""), (p.returncode, p.stdout.count(b'"type":"OOB"'),
                           p.stderr.decode()))
    p = subprocess.run([OOBD, "parse", "--max-records", "0", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    check("parse --max-records 0: usage error", (2, b""),
          (p.returncode, p.stdout))
finally:
    subprocess.run(["rm", "-rf", tmp])

finish()
