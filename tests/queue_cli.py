# SPDX-License-Identifier: Apache-2.0
"""`oobd queue` with the real daemon and a real next hop (Postfix's
smtp-sink): messages the hop defers (451 to RCPT) are listed with their
fields (id, size, arrival, attempts, next attempt, hop, sender,
recipient, the deferring reply); `delete ID` removes one from the spool
and its retries, logs it and writes no record; after the hop is replaced
by an accepting one, `flush` delivers the rest at once (the retry
interval is an hour); `delete ALL`; the errors and exit statuses; the
admin endpoints refuse commands without their header, from a web page's
host name, and from a non-loopback peer; and with the daemon stopped,
`list` reads the spool itself."""

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from oobdtest import OOBD, Oobd, check, finish, free_port, not_ok, \
    send_message

DOMAINS = """
["relay.example"]
relay_to = true
"""
BODY = b"From: a@example.org\r\nSubject: queued\r\n\r\nhello\r\n"


class Sink:
    """Postfix's smtp-sink on 127.0.0.1:port, each message in a file."""

    def __init__(self, port, args=()):
        self.dir = tempfile.mkdtemp(prefix="oobd-sink-")
        os.chmod(self.dir, 0o777)
        cmd = ["smtp-sink", "-h", "sink.test.example",
               "-d", os.path.join(self.dir, "m.")] + list(args)
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        self.proc = subprocess.Popen(cmd + ["127.0.0.1:%d" % port, "16"],
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("smtp-sink did not start")

    def dumps(self):
        out = []
        for p in sorted(glob.glob(os.path.join(self.dir, "m.*"))):
            with open(p, "rb") as f:
                out.append(f.read())
        return out

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def queue(d, *args):
    p = subprocess.run([OOBD, "queue", "-c", d.conf] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def records(d):
    """The log's records; a line still being written (no newline yet) is
    left for the next look."""
    out = []
    for name in sorted(os.listdir(d.log_dir)):
        if name.startswith("."):
            continue
        with open(os.path.join(d.log_dir, name), "rb") as f:
            text = f.read().decode()
        out += [json.loads(x) for x in text.split("\n")[:-1] if x]
    return out


def wait_records(d, pred, timeout=30):
    deadline = time.time() + timeout
    while True:
        recs = records(d)
        if pred(recs) or time.time() > deadline:
            return recs
        time.sleep(0.05)


def listed(d):
    rc, out, err = queue(d, "--json", "list")
    if rc != 0:
        raise RuntimeError("queue list: %d %s" % (rc, err))
    return json.loads(out)


def of_type(recs, t):
    return [r for r in recs if r["type"] == t]


def wait(pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def http(port, method, path, headers=None, host="127.0.0.1", src=None):
    """(status, body) of one request, from src (an address) if given."""
    s = socket.create_connection((host, port), 10,
                                 source_address=(src, 0) if src else None)
    req = "%s %s HTTP/1.1\r\n" % (method, path)
    for k, v in (headers or {}).items():
        req += "%s: %s\r\n" % (k, v)
    s.sendall((req + "Connection: close\r\n\r\n").encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


hop = free_port()
admin = free_port()
sink = Sink(hop, ["-r", "RCPT"])            # 4xx to every RCPT
d = Oobd(domains=DOMAINS, admin="127.0.0.1:%d" % admin,
         logs={"compression": '"none"'},
         relay={"next_hop": '"[127.0.0.1]:%d"' % hop,
                "retry_interval": '"1 hour"', "connect_timeout": '"5s"',
                "command_timeout": '"10s"'})
try:
    d.start()
    ids = []
    for who in ("a", "b", "c"):
        r = send_message(d.port, "sender@example.org",
                         ["%s@relay.example" % who], BODY)
        ids.append(r[-2].split("ids=")[1])
    recs = wait_records(d, lambda rs: len(of_type(rs, "TransientFailure"))
                          == 3, timeout=30)
    tfs = {r["id"]: r for r in of_type(recs, "TransientFailure")}
    rcs = {r["id"]: r for r in of_type(recs, "Reception")}
    check("three messages deferred by the hop", sorted(ids), sorted(tfs))

    # ---- list: the fields of each message ----
    j = listed(d)
    check("list --json: the daemon answered", True, j.get("running"))
    msgs = {m["id"]: m for m in j["messages"]}
    check("list: the three messages", sorted(ids), sorted(msgs))
    for i, who in zip(ids, "abc"):
        m, tf = msgs[i], tfs[i]
        resp = tf["response"]
        ec = resp["enhanced_code"]
        want = {
            "id": i, "sender": "sender@example.org",
            "recipient": "%s@relay.example" % who, "queue": "relay.example",
            "hop": "[127.0.0.1]:%d" % hop, "size": rcs[i]["size"],
            "created": rcs[i]["created_time"][:19] + "Z", "attempts": 1,
            "state": "deferred",
            "last_reply": "%d %d.%d.%d %s" % (resp["code"], ec["class"],
                                             ec["subject"], ec["detail"],
                                             resp["content"]),
        }
        check("list %s: fields" % who, want,
              {k: m.get(k) for k in want})
        nxt = time.mktime(time.strptime(m["next_attempt"],
                                        "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        check("list %s: next attempt an hour after the failure" % who, True,
              abs(nxt - (tf["timestamp"] + 3600)) <= 2)
    rc, out, err = queue(d, "list")
    lines = out.splitlines()
    check("list (table): exit 0", 0, rc)
    check("list (table): header, 3 lines per message, summary",
          1 + 3 * 3 + 1, len(lines))
    check("list (table): the summary", "-- %d bytes in 3 messages" %
          sum(rcs[i]["size"] for i in ids), lines[-1])
    first = lines[1:4]
    row = [m for m in lines if m.startswith(ids[0])]
    at = lines.index(row[0]) if row else 0
    check("list (table): a message's lines", [
        "%-32s %10d %-20s %5d %-20s %s" % (
            ids[0], rcs[ids[0]]["size"], msgs[ids[0]]["created"], 1,
            msgs[ids[0]]["next_attempt"], "deferred"),
        "  <sender@example.org> -> <a@relay.example> via [127.0.0.1]:%d"
        % hop, "  (%s)" % msgs[ids[0]]["last_reply"]], lines[at:at + 3])

    # ---- delete ID ----
    before = len(records(d))
    rc, out, err = queue(d, "delete", ids[0])
    check("delete ID: exit 0 and said", (0, "oobd queue: %s: 1 deleted\n" %
                                         ids[0]), (rc, out))
    check("delete ID: gone from the list", sorted(ids[1:]),
          sorted(m["id"] for m in listed(d)["messages"]))
    check("delete ID: its spool file gone", False,
          os.path.exists(os.path.join(d.spool_dir, ids[0])))
    check("delete ID: the others' spool files kept", [True, True],
          [os.path.exists(os.path.join(d.spool_dir, i)) for i in ids[1:]])
    check("delete ID: logged (event=queue-deleted)", True,
          bool(re.search(r"event=queue-deleted id=%s hop=\S+ attempts=1 "
                         r'recipient="a@relay.example"' % ids[0],
                         d.stderr_text())))
    time.sleep(0.5)
    check("delete ID: no record written", before, len(records(d)))
    rc, out, err = queue(d, "delete", ids[0])
    check("delete an unknown ID: exit 1, said", (1, "oobd queue: %s: no "
                                                 "such message\n" % ids[0]),
          (rc, err))

    # ---- the admin endpoints: who may call them ----
    check("flush without X-Oobd-Request: 403", 403,
          http(admin, "POST", "/api/queue/v1/flush")[0])
    check("list with a web page's Host: 403", 403,
          http(admin, "GET", "/api/queue/v1",
               {"Host": "evil.example:%d" % admin})[0])
    check("delete by GET: 405", 405,
          http(admin, "GET", "/api/queue/v1/delete?id=ALL",
               {"X-Oobd-Request": "queue"})[0])
    check("POST to /metrics: 405", 405,
          http(admin, "POST", "/metrics", {"X-Oobd-Request": "queue"})[0])
    check("nothing was flushed or deleted by those", sorted(ids[1:]),
          sorted(m["id"] for m in listed(d)["messages"]))

    # ---- flush, once the hop accepts ----
    sink.stop()
    sink = Sink(hop)
    rc, out, err = queue(d, "flush")
    check("flush: exit 0, 2 retried", (0, "oobd queue: 2 deferred messages "
                                       "retried now\n"), (rc, out))
    recs = wait_records(d, lambda rs: len(of_type(rs, "Delivery")) == 2,
                          timeout=30)
    check("flush: both delivered at once (not in an hour)", sorted(ids[1:]),
          sorted(r["id"] for r in of_type(recs, "Delivery")))
    check("flush: the hop got them", 2, len(sink.dumps()))
    check("flush: queue empty", (0, "Queue is empty\n"),
          queue(d, "list")[:2])
    check("flush: spool empty", True, wait(lambda: os.listdir(d.spool_dir)
                                           == []))
    check("the deleted message never delivered", False,
          any(ids[0] in x.decode("latin-1") for x in sink.dumps()))

    # ---- delete ALL ----
    sink.stop()
    sink = Sink(hop, ["-r", "RCPT"])
    more = []
    for who in ("d", "e"):
        r = send_message(d.port, "", ["%s@relay.example" % who], BODY)
        more.append(r[-2].split("ids=")[1])
    wait_records(d, lambda rs: len(of_type(rs, "TransientFailure")) == 5,
                   timeout=30)
    rc, out, err = queue(d, "delete", "ALL")
    check("delete ALL: exit 0, 2 deleted", (0, "oobd queue: ALL: 2 "
                                            "deleted\n"), (rc, out))
    check("delete ALL: queue and spool empty", ([], []),
          (listed(d)["messages"], os.listdir(d.spool_dir)))

    # ---- a non-loopback peer (the admin listener on every address) ----
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.connect(("192.0.2.1", 9))
    own = probe.getsockname()[0]
    probe.close()
    if own.startswith("127."):
        not_ok("a non-loopback address of this host to test from")
    else:
        aport = free_port()
        d2 = Oobd(domains=DOMAINS, admin="0.0.0.0:%d" % aport,
                  relay={"next_hop": '"[127.0.0.1]:%d"' % hop})
        try:
            d2.start()
            check("a peer at %s (not loopback): 403" % own, 403,
                  http(aport, "GET", "/api/queue/v1", host=own)[0])
            check("the same listener from loopback: 200", 200,
                  http(aport, "GET", "/api/queue/v1")[0])
            check("/metrics stays open to that peer", 200,
                  http(aport, "GET", "/metrics", host=own)[0])
        finally:
            d2.cleanup()

    # ---- the daemon stopped: list reads the spool ----
    r = send_message(d.port, "x@example.org", ["f@relay.example"], BODY)
    last = r[-2].split("ids=")[1]
    wait_records(d, lambda rs: len(of_type(rs, "TransientFailure")) == 6,
                   timeout=30)
    d.stop()
    rc, out, err = queue(d, "--json", "list")
    j = json.loads(out) if rc == 0 else {}
    check("stopped: list exit 0, not running", (0, False),
          (rc, j.get("running")))
    check("stopped: said on stderr", True,
          "oobd is not running" in err and "read-only" in err)
    check("stopped: the spooled message", [{
        "id": last, "sender": "x@example.org", "recipient": "f@relay.example",
        "hop": "[127.0.0.1]:%d" % hop, "state": "spooled"}],
        [{k: m[k] for k in ("id", "sender", "recipient", "hop", "state")}
         for m in j.get("messages", [])])
    rc, out, err = queue(d, "list")
    check("stopped: the table says where it came from", True,
          out.splitlines()[-1].endswith("(read from the spool)"))
    check("stopped: flush exits 3", 3, queue(d, "flush")[0])
    check("stopped: delete exits 3, the file kept", (3, True),
          (queue(d, "delete", last)[0],
           os.path.exists(os.path.join(d.spool_dir, last))))
    check("usage: delete without an ID exits 2", 2, queue(d, "delete")[0])
    check("usage: an unknown verb exits 2", 2, queue(d, "requeue")[0])
except Exception as e:
    not_ok("queue harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()
    sink.stop()
finish()
