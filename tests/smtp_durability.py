# SPDX-License-Identifier: Apache-2.0
"""Durability: 2,000 DSNs over 20 concurrent sessions, oobd killed with
SIGKILL part-way and restarted; every message whose 250 a client received
must have all its records in the logs, and every line must be JSON."""

import os
import signal
import threading
import time

from oobdtest import Client, Oobd, check, corpus, finish, not_ok, to_crlf

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
"""
TOTAL = 2000
SESSIONS = 20
KILL_AFTER = 700

body = to_crlf(corpus("kumomta/rfc3464/2.eml"))
lock = threading.Lock()
acked = []          # ids whose 250 arrived
sent = [0]


def next_slot():
    with lock:
        if sent[0] >= TOTAL:
            return False
        sent[0] += 1
        return True


def unsend():
    with lock:
        sent[0] -= 1


def session(port):
    """Send messages until the total is reached or the server dies."""
    try:
        c = Client(port, timeout=30)
        c.line()
        c.cmd("EHLO load.test.example")
    except OSError:
        return
    while next_slot():
        try:
            c.send("MAIL FROM:<>\r\nRCPT TO:<b@bounce.example.com>\r\nDATA\r\n")
            replies = [c.line(), c.line(), c.line()]
            if not replies[2].startswith("354"):
                unsend()
                return
            c.send(body + b".\r\n")
            r = c.line()
        except OSError:
            unsend()
            return
        if r.startswith("250 2.0.0 OK ids="):
            with lock:
                acked.append(r.split("ids=")[1])
        else:
            unsend()
            return
    try:
        c.cmd("QUIT")
    except OSError:
        pass


def run_clients(port):
    threads = [threading.Thread(target=session, args=(port,))
               for _ in range(SESSIONS)]
    for t in threads:
        t.start()
    return threads


d = Oobd(domains=DOMAINS, listener={"workers": "2"})
try:
    d.start()
    threads = run_clients(d.port)
    deadline = time.time() + 120
    while len(acked) < KILL_AFTER and time.time() < deadline:
        time.sleep(0.005)
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    for t in threads:
        t.join(60)
    before = len(acked)
    check("messages acknowledged before the kill", True, before >= KILL_AFTER)

    d.start()
    while sent[0] < TOTAL:
        for t in run_clients(d.port):
            t.join(120)
        if len(acked) == before:
            break
    check("every message sent", TOTAL, sent[0])
    check("every message acknowledged", TOTAL, len(acked))
    d.stop()

    try:
        recs = d.records()
        parsed = True
    except ValueError as e:
        parsed = False
        not_ok("every log line is JSON", e)
    if parsed:
        from collections import Counter
        per_id = Counter((r["id"], r["type"]) for r in recs)
        missing = [i for i in acked
                   if per_id[(i, "Reception")] != 1 or per_id[(i, "OOB")] != 2]
        check("every acknowledged message has its Reception and 2 OOB "
              "records exactly once", [], missing[:5])
        check("acknowledged ids are distinct", len(acked), len(set(acked)))
    print("# acknowledged %d before the kill, %d in all" % (before, len(acked)))
except Exception as e:
    not_ok("durability harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()
finish()
