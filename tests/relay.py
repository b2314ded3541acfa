# SPDX-License-Identifier: Apache-2.0
"""Relaying onward through the real daemon: the spool, the SMTP client and
the Delivery, TransientFailure, Bounce and Expiration records.

Next hops are Postfix's smtp-sink (accepting, or refusing RCPT with 550)
and a scripted raw-socket peer written here, which records the exact
bytes oobd sends and answers what each test needs (451 then 250, a
greeting held until the test releases it, PIPELINING checks, STARTTLS,
SIZE, 8BITMIME, SMTPUTF8). Everything runs on 127.0.0.1."""

import glob
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from oobdtest import (Oobd, check, finish, free_port, not_ok, ok,
                      send_message, to_crlf)

OOBD = os.environ.get("OOBD_BIN", "src/oobd")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")
ID = re.compile(r"^[0-9a-f]{12}1[0-9a-f]{19}$")
RECEIVED = re.compile(
    r"^Received: from client\.test\.example \(127\.0\.0\.1\)\r\n"
    r"\tby mx\.test\.example \(oobd\) with ESMTP id ([0-9a-f]{32})\r\n"
    r"\tfor <([^>]*)>; [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} "
    r"\d\d:\d\d:\d\d \+0000\r\n")

DOMAINS = """
["relay.example"]
relay_to = true

["sink550.example"]
relay_to = true
relay_host = "[127.0.0.1]:%(p550)d"
"""

# A message whose lines need dot-stuffing: a lone ".", a leading dot, and
# a line that would end DATA if sent unstuffed.
BODY = (b"From: a@example.org\r\nTo: x@relay.example\r\nSubject: relay\r\n"
        b"\r\n.\r\n..two dots\r\n.leading\r\nlast line\r\n")


class Peer:
    """A scripted SMTP server on a thread. plan is a list of reply sets
    for successive transactions; a transaction with no plan entry gets
    250s. ehlo is the list of EHLO keywords."""

    def __init__(self, port, ehlo=("PIPELINING", "8BITMIME", "SIZE 10000000"),
                 plan=None, hold=False, tls=None, expect_pipelining=False,
                 tls_break=False):
        self.port = port
        self.ehlo = list(ehlo)
        self.plan = list(plan or [])
        self.tls = tls
        self.tls_break = tls_break
        self.expect_pipelining = expect_pipelining
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.lock = threading.Lock()
        self.conns = []          # per connection: list of commands seen
        self.messages = []       # (mail line, rcpt lines, raw data bytes)
        self.pipelined = []      # per transaction, when expect_pipelining
        self.raw = []            # every byte received, per connection
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._session, args=(c,),
                             daemon=True).start()

    def _session(self, c):
        c.settimeout(20)
        cmds = []
        raw = bytearray()
        with self.lock:
            self.conns.append(cmds)
            self.raw.append(raw)
        f = {"sock": c, "buf": b""}

        def readline():
            while b"\r\n" not in f["buf"]:
                chunk = f["sock"].recv(65536)
                if not chunk:
                    raise EOFError
                raw.extend(chunk)
                f["buf"] += chunk
            line, f["buf"] = f["buf"].split(b"\r\n", 1)
            return line

        def send(s):
            f["sock"].sendall(s.encode() + b"\r\n")

        try:
            self.release.wait(30)
            send("220 peer.test.example ESMTP")
            tx = None
            while True:
                line = readline()
                cmd = line.decode("utf-8", "replace")
                cmds.append(cmd)
                verb = cmd[:4].upper()
                if verb == "EHLO":
                    caps = self.ehlo + (["STARTTLS"] if self.tls and
                                        not isinstance(f["sock"], ssl.SSLSocket)
                                        else [])
                    out = ["250-peer.test.example"] + ["250-" + k for k in caps]
                    out[-1] = "250 " + out[-1][4:]
                    f["sock"].sendall(("\r\n".join(out) + "\r\n").encode())
                elif verb == "HELO":
                    send("250 peer.test.example")
                elif verb == "STAR":
                    send("220 2.0.0 go ahead")
                    if self.tls_break:
                        break
                    f["sock"] = self.tls.wrap_socket(f["sock"],
                                                     server_side=True)
                    f["buf"] = b""
                elif verb == "MAIL":
                    with self.lock:
                        reply = self.plan.pop(0) if self.plan else {}
                    tx = {"mail": cmd, "rcpt": [], "reply": reply}
                    if self.expect_pipelining:
                        # Answer only once RCPT and DATA are here too.
                        more = []
                        try:
                            f["sock"].settimeout(3)
                            more = [readline().decode(), readline().decode()]
                        finally:
                            f["sock"].settimeout(20)
                        cmds.extend(more)
                        with self.lock:
                            self.pipelined.append(
                                len(more) == 2 and more[0].startswith("RCPT")
                                and more[1] == "DATA")
                        send(reply.get("mail", "250 2.1.0 Ok"))
                        tx["rcpt"].append(more[0])
                        send(reply.get("rcpt", "250 2.1.5 Ok"))
                        if not self._data(tx, reply, readline, send):
                            tx = None
                        continue
                    send(reply.get("mail", "250 2.1.0 Ok"))
                elif verb == "RCPT":
                    r = tx["reply"].get("rcpt", "250 2.1.5 Ok")
                    if r.startswith("2"):
                        tx["rcpt"].append(cmd)
                    send(r)
                elif verb == "DATA":
                    if tx is None or not tx["rcpt"]:
                        send("554 5.5.1 Error: no valid recipients")
                    else:
                        self._data(tx, tx["reply"], readline, send)
                elif verb == "RSET":
                    send("250 2.0.0 Ok")
                elif verb == "QUIT":
                    send("221 2.0.0 Bye")
                    break
                else:
                    send("502 5.5.2 Error: command not recognized")
        except (EOFError, OSError, socket.timeout):
            pass
        finally:
            try:
                f["sock"].close()
            except OSError:
                pass

    def _data(self, tx, reply, readline, send):
        r = reply.get("data", "354 End data with <CR><LF>.<CR><LF>")
        send(r)
        if not r.startswith("354"):
            return False
        data = bytearray()
        while True:
            line = readline()
            if line == b".":
                break
            data.extend(line + b"\r\n")
        with self.lock:
            self.messages.append((tx["mail"], tx["rcpt"], bytes(data)))
        send(reply.get("dot", "250 2.0.0 Ok: queued as 1234"))
        return True

    def stop(self):
        self.stopping = True
        self.release.set()
        self.sock.close()
        self.thread.join(5)


class Sink:
    """Postfix's smtp-sink, dumping each message to its own file."""

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
        os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def of_type(recs, t):
    return [r for r in recs if r["type"] == t]


def spool_files(d, wait_empty=True):
    """The spool's files; by default once it is empty (the file goes just
    after the final record is written), waiting at most 10 s."""
    deadline = time.time() + 10
    while True:
        names = sorted(os.listdir(d.spool_dir)) \
            if os.path.isdir(d.spool_dir) else []
        if not names or not wait_empty or time.time() > deadline:
            return names
        time.sleep(0.05)


def relay_oobd(hop_port, extra=None, domains=None, listener=None, **kw):
    relay = {"next_hop": '"[127.0.0.1]:%d"' % hop_port,
             "retry_interval": '"1s"', "connect_timeout": '"5s"',
             "command_timeout": '"10s"'}
    relay.update(extra or {})
    return Oobd(domains=domains or DOMAINS % {"p550": free_port()},
                relay=relay, logs={"compression": '"none"'},
                listener=listener, **kw)


def common_fields(name, rec, reception, site, hop_ip="127.0.0.1"):
    """The fields every relay record shares with its Reception record."""
    for k in ("id", "sender", "recipient", "queue", "size", "created",
              "created_time", "meta", "headers", "nodeid"):
        check("%s %s" % (name, k), reception[k], rec[k])
    check(name + " site", site, rec["site"])
    check(name + " egress", [None, None], [rec["egress_pool"],
                                           rec["egress_source"]])
    check(name + " feedback_report", None, rec["feedback_report"])
    check(name + " reception_protocol", "ESMTP", rec["reception_protocol"])
    check(name + " session_id is a new UUID v4", True,
          bool(UUID4.match(rec.get("session_id", "")))
          and rec["session_id"] != reception["session_id"])


# ---- 1. smtp-sink accepts: the delivered bytes, dot-stuffing, Received ----
def test_sink_accepts():
    hop = free_port()
    sink = Sink(hop)
    d = relay_oobd(hop)
    try:
        d.start()
        r = send_message(d.port, "a@example.org", ["x@relay.example"], BODY)
        check("sink: message accepted", True,
              bool(re.match(r"^250 2.0.0 OK ids=[0-9a-f]{32}$", r[-2])))
        id_ = r[-2].split("ids=")[1]
        recs = d.wait_records(lambda rs: of_type(rs, "Delivery"))
        rec = of_type(recs, "Reception")[0]
        dl = of_type(recs, "Delivery")
        check("sink: one Delivery", 1, len(dl))
        dl = dl[0]
        check("sink: Delivery after Reception", True,
              recs.index(rec) < recs.index(dl))
        common_fields("sink: Delivery", dl, rec, "[127.0.0.1]:%d" % hop)
        check("sink: Delivery id", id_, dl["id"])
        check("sink: Delivery response",
              {"code": 250, "enhanced_code": {"class": 2, "subject": 0,
                                              "detail": 0},
               "content": "Ok", "command": ".\r\n"}, dl["response"])
        check("sink: Delivery peer_address",
              {"name": "127.0.0.1", "addr": "127.0.0.1"}, dl["peer_address"])
        check("sink: Delivery num_attempts", 0, dl["num_attempts"])
        check("sink: Delivery classification", "Uncategorized",
              dl["bounce_classification"])
        check("sink: Delivery delivery_protocol", "ESMTP",
              dl["delivery_protocol"])
        check("sink: Delivery source_address", True, bool(re.match(
            r"^127\.0\.0\.1:\d+$", dl["source_address"]["address"])))
        check("sink: Delivery source_address keys", ["address"],
              list(dl["source_address"].keys()))
        check("sink: Delivery key order", list(rec.keys()), list(dl.keys()))

        dumps = []
        deadline = time.time() + 10
        while not dumps and time.time() < deadline:
            dumps = sink.dumps()
            time.sleep(0.05)
        check("sink: one message delivered", 1, len(dumps))
        dump = dumps[0] if dumps else b""
        # smtp-sink writes LF lines and removes the dot-stuffing again.
        head, _, msg = dump.partition(b"(UTC)\n")
        check("sink: envelope", True,
              b"X-Mail-Args: <a@example.org>\n" in head and
              b"X-Rcpt-Args: <x@relay.example>\n" in head and
              b"X-Helo-Args: mx.test.example\n" in head)
        crlf = msg.replace(b"\n", b"\r\n")
        m = RECEIVED.match(crlf.decode())
        check("sink: Received header first, with the spool id", [id_,
              "x@relay.example"], list(m.groups()) if m else None)
        check("sink: message text after the Received header, dots intact",
              BODY + b"\r\n", crlf[m.end():] if m else None)
        check("sink: size is the relayed bytes",
              len(crlf) - 2, dl["size"])
        check("sink: spool empty after the Delivery", [], spool_files(d))
        check("sink: SIGTERM", 0, d.stop())
    except Exception as e:
        not_ok("sink harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()
        sink.stop()


# ---- 2. exact bytes: dot-stuffing, no bare CR/LF, PIPELINING, reuse ----
def test_exact_bytes():
    hop = free_port()
    peer = Peer(hop, hold=True, expect_pipelining=True)
    d = relay_oobd(hop, listener={"invalid_line_endings": '"Allow"'})
    try:
        d.start()
        bodies = [BODY,
                  b"Subject: bare\r\n\r\nbare LF\nbare CR\rend\r\n.\r\nx",
                  b"Subject: third\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"]
        ids = []
        for i, b in enumerate(bodies):
            c = send_raw(d.port, "a@example.org", "m%d@relay.example" % i, b)
            ids.append(c.split("ids=")[1] if "ids=" in c else None)
        # All three are spooled before the peer even greets: one connection.
        peer.release.set()
        recs = d.wait_records(lambda rs: len(of_type(rs, "Delivery")) == 3)
        dl = of_type(recs, "Delivery")
        check("bytes: three Delivery records", 3, len(dl))
        check("bytes: one connection for the three", 1, len(peer.conns))
        check("bytes: one session id for the three", 1,
              len(set(r["session_id"] for r in dl)))
        check("bytes: MAIL, RCPT and DATA pipelined", [True, True, True],
              peer.pipelined)
        cmds = [c for c in peer.conns[0] if not c.startswith(("MAIL", "RCPT"))]
        check("bytes: command sequence", ["EHLO mx.test.example", "DATA",
                                          "DATA", "DATA", "QUIT"], cmds)
        check("bytes: MAIL lines", [
            "MAIL FROM:<a@example.org> SIZE=%d" % len_of(dl, ids[0]),
            "MAIL FROM:<a@example.org> SIZE=%d" % len_of(dl, ids[1]),
            "MAIL FROM:<a@example.org> SIZE=%d BODY=8BITMIME"
            % len_of(dl, ids[2])], [m[0] for m in peer.messages])
        raw = bytes(peer.raw[0])
        check("bytes: no bare CR or LF anywhere", True,
              b"\r" not in raw.replace(b"\r\n", b"") and
              b"\n" not in raw.replace(b"\r\n", b""))
        texts = [m[2] for m in peer.messages]
        m0 = RECEIVED.match(texts[0].decode())
        check("bytes: first message dot-stuffed on the wire",
              b"From: a@example.org\r\nTo: x@relay.example\r\n"
              b"Subject: relay\r\n\r\n..\r\n...two dots\r\n..leading\r\n"
              b"last line\r\n", texts[0][m0.end():] if m0 else None)
        m1 = RECEIVED.match(texts[1].decode())
        check("bytes: bare LF and CR sent as CRLF",
              b"Subject: bare\r\n\r\nbare LF\r\nbare CR\r\nend\r\n..\r\nx\r\n",
              texts[1][m1.end():] if m1 else None)
        recv = {r["id"]: r["size"] for r in of_type(recs, "Reception")}
        check("bytes: Delivery sizes are the Reception sizes",
              [recv.get(i) for i in ids], [len_of(dl, i) for i in ids])
        check("bytes: first size is the text less its 3 stuffed dots",
              len(texts[0]) - 3, len_of(dl, ids[0]))
        check("bytes: 250 reply content", "Ok: queued as 1234",
              dl[0]["response"]["content"])
        check("bytes: spool empty", [], spool_files(d))
    except Exception as e:
        not_ok("bytes harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()
        peer.stop()


def len_of(dl, id_):
    for r in dl:
        if r["id"] == id_:
            return r["size"]
    return -1


def send_raw(port, sender, rcpt, body):
    """One transaction with body sent as given (dot-stuffed only)."""
    from oobdtest import Client
    c = Client(port)
    c.line()
    c.cmd("EHLO client.test.example")
    c.cmd("MAIL FROM:<%s>" % sender)
    c.cmd("RCPT TO:<%s>" % rcpt)
    c.cmd("DATA")
    lines = body.split(b"\r\n")
    out = b"\r\n".join((b"." + l if l.startswith(b".") else l) for l in lines)
    if not out.endswith(b"\r\n"):
        out += b"\r\n"
    c.send(out + b".\r\n")
    reply = c.line()
    c.cmd("QUIT")
    c.close()
    return reply


# ---- 3. 451 then 250: TransientFailure, backoff, Delivery ----
def test_451_then_250():
    hop = free_port()
    peer = Peer(hop, plan=[{"rcpt": "451 4.3.0 <x@relay.example>: try again"
                                    " later"}])
    d = relay_oobd(hop)
    try:
        d.start()
        r = send_message(d.port, "a@example.org", ["x@relay.example"], BODY)
        id_ = r[-2].split("ids=")[1]
        recs = d.wait_records(lambda rs: of_type(rs, "Delivery"), timeout=20)
        rec = of_type(recs, "Reception")[0]
        tf = of_type(recs, "TransientFailure")
        dl = of_type(recs, "Delivery")
        check("451: records in order", ["Reception", "TransientFailure",
                                        "Delivery"], [x["type"] for x in recs])
        if len(tf) != 1 or len(dl) != 1:
            raise RuntimeError("records: %r" % recs)
        tf, dl = tf[0], dl[0]
        common_fields("451: TransientFailure", tf, rec, "[127.0.0.1]:%d" % hop)
        check("451: TransientFailure response",
              {"code": 451, "enhanced_code": {"class": 4, "subject": 3,
                                              "detail": 0},
               "content": "<x@relay.example>: try again later",
               "command": "RCPT TO:<x@relay.example>\r\n"}, tf["response"])
        check("451: TransientFailure num_attempts", 0, tf["num_attempts"])
        check("451: TransientFailure classified (the 4.x.x rule)",
              "TransientFailure",
              tf["bounce_classification"])
        check("451: TransientFailure peer", {"name": "127.0.0.1",
                                            "addr": "127.0.0.1"},
              tf["peer_address"])
        check("451: Delivery num_attempts", 1, dl["num_attempts"])
        check("451: Delivery id", id_, dl["id"])
        check("451: two connections", 2, len(peer.conns))
        check("451: RSET after the refusal", ["EHLO mx.test.example", "RSET",
                                              "QUIT"],
              [c for c in peer.conns[0] if c[:4] in ("EHLO", "RSET", "QUIT")])
        check("451: retry not before retry_interval", True,
              ts(dl) - ts(tf) >= 1.0)
        check("451: one message delivered", 1, len(peer.messages))
        check("451: spool empty", [], spool_files(d))
    except Exception as e:
        not_ok("451 harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()
        peer.stop()


def ts(rec):
    """event_time as float seconds."""
    t = rec["event_time"]
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z$", t)
    import calendar
    secs = calendar.timegm(tuple(int(x) for x in m.groups()[:6]))
    return secs + (float(m.group(7)) if m.group(7) else 0.0)


# ---- 4. smtp-sink answers 550: Bounce, via the domain's relay_host ----
def test_550():
    hop = free_port()
    p550 = free_port()
    sink = Sink(p550, ["-f", "RCPT", "-B",
                       "550 5.1.1 <y@sink550.example>: Recipient address "
                       "rejected: User unknown"])
    d = relay_oobd(hop, domains=DOMAINS % {"p550": p550})
    try:
        d.start()
        r = send_message(d.port, "a@example.org", ["y@sink550.example"], BODY)
        check("550: accepted first", True, r[-2].startswith("250 2.0.0 OK"))
        recs = d.wait_records(lambda rs: of_type(rs, "Bounce"))
        rec = of_type(recs, "Reception")[0]
        b = of_type(recs, "Bounce")
        check("550: records", ["Reception", "Bounce"], [x["type"] for x in recs])
        b = b[0]
        common_fields("550: Bounce", b, rec, "[127.0.0.1]:%d" % p550)
        check("550: Bounce response",
              {"code": 550, "enhanced_code": {"class": 5, "subject": 1,
                                              "detail": 1},
               "content": "<y@sink550.example>: Recipient address rejected: "
                          "User unknown",
               "command": "RCPT TO:<y@sink550.example>\r\n"}, b["response"])
        check("550: Bounce classification", "InvalidRecipient",
              b["bounce_classification"])
        check("550: Bounce num_attempts", 0, b["num_attempts"])
        check("550: Bounce delivery_protocol", "ESMTP", b["delivery_protocol"])
        # smtp-sink opens a dump file at MAIL; no text ever reaches it.
        check("550: no message text delivered", [],
              [x for x in sink.dumps() if x])
        check("550: spool empty", [], spool_files(d))
    except Exception as e:
        not_ok("550 harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()
        sink.stop()


# ---- 5. next hop down: backoff, then Expiration ----
def test_down_then_expired():
    hop = free_port()      # nothing listens there
    d = relay_oobd(hop, extra={"retry_interval": '"1s"', "retry_factor": "2",
                               "max_age": '"4s"'})
    try:
        d.start()
        r = send_message(d.port, "a@example.org", ["x@relay.example"], BODY)
        check("down: accepted", True, r[-2].startswith("250 2.0.0 OK"))
        recs = d.wait_records(lambda rs: of_type(rs, "Expiration"), timeout=30)
        rec = of_type(recs, "Reception")[0]
        tfs = of_type(recs, "TransientFailure")
        ex = of_type(recs, "Expiration")
        types = [x["type"] for x in recs]
        check("down: Reception, TransientFailures, then one Expiration",
              ["Reception"] + ["TransientFailure"] * len(tfs) + ["Expiration"],
              types)
        check("down: at least two attempts", True, len(tfs) >= 2)
        check("down: num_attempts count up", list(range(len(tfs))),
              [t["num_attempts"] for t in tfs])
        want = "oobd internal: failed to connect to [127.0.0.1]:%d: " \
               "Connection refused" % hop
        for i, t in enumerate(tfs):
            check("down: TransientFailure %d response" % i,
                  {"code": 400, "enhanced_code": None, "content": want,
                   "command": None}, t["response"])
            check("down: TransientFailure %d no peer" % i, None,
                  t["peer_address"])
            common_fields("down: TransientFailure %d" % i, t, rec,
                          "[127.0.0.1]:%d" % hop)
        # Backoff: 1s after the first failure, 2s after the second.
        for i in range(1, len(tfs)):
            check("down: delay before attempt %d at least %ds" % (i + 1,
                                                                   2 ** (i - 1)),
                  True, ts(tfs[i]) - ts(tfs[i - 1]) >= 2 ** (i - 1))
        ex = ex[0]
        check("down: Expiration response code",
              (551, {"class": 5, "subject": 4, "detail": 7}, None),
              (ex["response"]["code"], ex["response"]["enhanced_code"],
               ex["response"]["command"]))
        check("down: Expiration content", True, bool(re.match(
            r"^Next delivery time would be at \S+Z which exceeds the expiry "
            r"time \S+Z configured via max_age$", ex["response"]["content"])))
        check("down: Expiration num_attempts", len(tfs), ex["num_attempts"])
        check("down: Expiration delivery_protocol and peer", [None, None],
              [ex["delivery_protocol"], ex["peer_address"]])
        check("down: Expiration id", rec["id"], ex["id"])
        check("down: spool empty after the Expiration", [], spool_files(d))
    except Exception as e:
        not_ok("down harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()


# ---- 6. kill -9 between spool and delivery, then a restart ----
def test_kill9_restart():
    hop = free_port()
    d = relay_oobd(hop, extra={"retry_interval": '"1 hour"'})
    peer = None
    try:
        d.start()
        r = send_message(d.port, "a@example.org", ["x@relay.example"], BODY)
        id_ = r[-2].split("ids=")[1]
        d.wait_records(lambda rs: of_type(rs, "TransientFailure"))
        check("kill9: spooled while the hop is down", [id_],
              spool_files(d, wait_empty=False))
        d.stop(signal.SIGKILL)
        # An interrupted spool write, as a crash in the middle leaves it.
        tmp = os.path.join(d.spool_dir, ".tmp-0d9a2c4e1b2a11ef8f3c0242ac120002")
        with open(tmp, "wb") as f:
            f.write(b'{"v":1,"id":"0d9a')
        peer = Peer(hop)
        d.start()
        recs = d.wait_records(lambda rs: of_type(rs, "Delivery"), timeout=20)
        time.sleep(0.5)     # a second Delivery would show up by now
        recs = d.records()
        dl = of_type(recs, "Delivery")
        check("kill9: exactly one Delivery", 1, len(dl))
        check("kill9: it is the spooled message", id_, dl[0]["id"] if dl
              else None)
        check("kill9: peer got one message", 1, len(peer.messages))
        check("kill9: Reception logged once", 1,
              len(of_type(recs, "Reception")))
        check("kill9: spool empty, temporary file removed", [],
              spool_files(d))
        err = d.stderr_text()
        check("kill9: recovery reported", True,
              'event=spool-recovered dir="%s" messages=1 '
              'incomplete_removed=1' % d.spool_dir in err)
        check("kill9: incomplete file reported", True,
              'event=spool-incomplete file=".tmp-0d9a2c4e1b2a11ef8f3c0242ac'
              '120002" action=removed' in err)
        m = RECEIVED.match(peer.messages[0][2].decode()) if peer.messages \
            else None
        check("kill9: delivered text intact after the restart",
              BODY.replace(b"\r\n.", b"\r\n.."),
              peer.messages[0][2][m.end():] if m else None)
        check("kill9: SIGTERM", 0, d.stop())
    except Exception as e:
        not_ok("kill9 harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()
        if peer:
            peer.stop()


# ---- 6b. kill -9 while connected to the next hop, before its greeting ----
def test_kill9_in_session():
    hop = free_port()
    held = Peer(hop, hold=True)
    d = relay_oobd(hop)
    peer = None
    try:
        d.start()
        r = send_message(d.port, "a@example.org", ["x@relay.example"], BODY)
        id_ = r[-2].split("ids=")[1]
        deadline = time.time() + 10
        while not held.conns and time.time() < deadline:
            time.sleep(0.05)
        check("kill9 in session: oobd connected to the hop", 1,
              len(held.conns))
        d.stop(signal.SIGKILL)
        held.stop()
        peer = Peer(hop)
        d.start()
        d.wait_records(lambda rs: of_type(rs, "Delivery"), timeout=20)
        time.sleep(0.5)
        recs = d.records()
        check("kill9 in session: records", ["Reception", "Delivery"],
              [x["type"] for x in recs])
        check("kill9 in session: the spooled message delivered once",
              [id_], [x["id"] for x in of_type(recs, "Delivery")])
        check("kill9 in session: peer got one message", 1,
              len(peer.messages))
        check("kill9 in session: nothing reached the first peer", [],
              held.messages)
        check("kill9 in session: spool empty", [], spool_files(d))
    except Exception as e:
        not_ok("kill9 in session harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()
        held.stop()
        if peer:
            peer.stop()


# ---- 6c. the spool cannot be written: 451, nothing logged as received ----
def test_spool_failure():
    hop = free_port()
    peer = Peer(hop)
    d = relay_oobd(hop)
    try:
        d.start()
        os.rename(d.spool_dir, d.spool_dir + ".away")
        r = send_message(d.port, "a@example.org", ["x@relay.example"], BODY)
        check("spool failure: 451", "451 4.3.0 Error: local error writing "
              "the spool", r[-2])
        os.rename(d.spool_dir + ".away", d.spool_dir)
        recs = d.wait_records(lambda rs: of_type(rs, "Rejection"))
        check("spool failure: only the Rejection record", ["Rejection"],
              [x["type"] for x in recs])
        check("spool failure: Rejection response",
              {"code": 451, "enhanced_code": {"class": 4, "subject": 3,
                                              "detail": 0},
               "content": "Error: local error writing the spool",
               "command": "DATA"}, recs[0]["response"] if recs else None)
        r = send_message(d.port, "a@example.org", ["x@relay.example"], BODY)
        check("spool failure: the next message goes through", True,
              r[-2].startswith("250 2.0.0 OK ids="))
        recs = d.wait_records(lambda rs: of_type(rs, "Delivery"))
        check("spool failure: only the second message delivered", 1,
              len(peer.messages))
    except Exception as e:
        not_ok("spool failure harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()
        peer.stop()


# ---- 7. configuration errors: no next hop, a loop ----
def run_check(conf):
    p = subprocess.run([OOBD, "-t", "-c", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    return p.returncode, p.stderr.decode()


def test_config():
    d = Oobd(domains='["relay.example"]\nrelay_to = true\n'
                     '["fbl.example"]\nlog_arf = "LogThenRelay"\n'
                     '["ok.example"]\nrelay_to = true\n'
                     'relay_host = "[192.0.2.1]:25"\n')
    try:
        rc, err = run_check(d.conf)
        check("config: relaying domains without next hop (-t)", (1, [
            "oobd: %s: listener_domains: \"relay.example\": it relays "
            "(relay_to or LogThenRelay) but has no relay_host, and [relay] "
            "next_hop is not set" % d.conf,
            "oobd: %s: listener_domains: \"fbl.example\": it relays "
            "(relay_to or LogThenRelay) but has no relay_host, and [relay] "
            "next_hop is not set" % d.conf]), (rc, err.splitlines()))
        try:
            d.start(timeout=5)
            not_ok("config: start refused without next hop")
        except RuntimeError as e:
            check("config: start refused without next hop", True,
                  "it relays (relay_to or LogThenRelay) but has no "
                  "relay_host" in str(e))
    finally:
        d.cleanup()
    port = free_port()
    d = Oobd(domains='["loop.example"]\nrelay_to = true\n'
                     'relay_host = "[127.0.0.1]:%d"\n' % port, port=port,
             relay={"next_hop": '"127.0.0.1:%d"' % port})
    try:
        rc, err = run_check(d.conf)
        check("config: next hop is our own listener (-t)", (1, [
            "oobd: %s: listener_domains: \"loop.example\" relay_host: "
            "\"[127.0.0.1]:%d\" is one of oobd's own listen addresses "
            "(a mail loop)" % (d.conf, port),
            "oobd: %s: [relay] next_hop: \"127.0.0.1:%d\" is one of oobd's "
            "own listen addresses (a mail loop)" % (d.conf, port)]),
              (rc, err.splitlines()))
    finally:
        d.cleanup()
    d = Oobd(listener={"listen": '["0.0.0.0:%d"]' % port},
             relay={"next_hop": '"[127.0.0.1]:%d"' % port})
    try:
        rc, err = run_check(d.conf)
        check("config: loop through a wildcard listener (-t)", (1, [
            "oobd: %s: [relay] next_hop: \"[127.0.0.1]:%d\" is one of oobd's "
            "own listen addresses (a mail loop)" % (d.conf, port)]),
              (rc, err.splitlines()))
    finally:
        d.cleanup()
    d = Oobd(relay={"next_hop": '"[127.0.0.1]"'})
    try:
        rc, err = run_check(d.conf)
        check("config: malformed next_hop (-t)", (1, [
            "oobd: %s: [relay] next_hop: \"[127.0.0.1]\": expected ':port' "
            "after ']' (expected \"[ip]:port\" or \"host:port\")" % d.conf]),
              (rc, err.splitlines()))
    finally:
        d.cleanup()


# ---- 7b. a host name that leads back to oobd: refused at connect ----
def test_loop_by_name():
    port = free_port()
    d = Oobd(domains='["relay.example"]\nrelay_to = true\n'
                     'relay_host = "localhost:%d"\n' % port, port=port,
             relay={"retry_interval": '"1 hour"'},
             logs={"compression": '"none"'})
    try:
        d.start()
        r = send_message(d.port, "a@example.org", ["x@relay.example"], BODY)
        check("loop: accepted", True, r[-2].startswith("250 2.0.0 OK"))
        recs = d.wait_records(lambda rs: of_type(rs, "TransientFailure"))
        tf = of_type(recs, "TransientFailure")
        check("loop: TransientFailure, no peer",
              ({"code": 400, "enhanced_code": None,
                "content": "oobd internal: next hop localhost:%d is one of "
                           "oobd's own listeners (a mail loop)" % port,
                "command": None}, None, "localhost:%d" % port),
              (tf[0]["response"], tf[0]["peer_address"], tf[0]["site"])
              if tf else None)
        check("loop: nothing received back", 1,
              len(of_type(d.records(), "Reception")))
    except Exception as e:
        not_ok("loop harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()


# ---- 8. STARTTLS, SMTPUTF8 and SIZE ----
def test_tls_utf8_size(tmpdir):
    key = os.path.join(tmpdir, "key.pem")
    crt = os.path.join(tmpdir, "crt.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=peer.test.example"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    hop = free_port()
    peer = Peer(hop, ehlo=("8BITMIME", "SMTPUTF8", "SIZE 2000"), tls=ctx)
    d = relay_oobd(hop)
    try:
        d.start()
        c = send_utf8(d.port)
        check("tls: SMTPUTF8 message accepted", True,
              c.startswith("250 2.0.0 OK"))
        big = b"Subject: big\r\n\r\n" + b"x" * 3000 + b"\r\n"
        r = send_message(d.port, "a@example.org", ["big@relay.example"], big)
        recs = d.wait_records(lambda rs: of_type(rs, "Delivery") and
                              of_type(rs, "Bounce"))
        dl = of_type(recs, "Delivery")
        check("tls: one Delivery", 1, len(dl))
        dl = dl[0] if dl else {}
        check("tls: Delivery over TLS", True,
              dl.get("tls_protocol_version") in ("TLSv1.2", "TLSv1.3")
              and bool(dl.get("tls_cipher")))
        check("tls: EHLO again after STARTTLS", ["EHLO mx.test.example",
                                                "STARTTLS",
                                                "EHLO mx.test.example"],
              peer.conns[0][:3])
        check("tls: SMTPUTF8 and BODY=8BITMIME on MAIL, without PIPELINING",
              "MAIL FROM:<a@example.org> SIZE=%d BODY=8BITMIME SMTPUTF8"
              % dl.get("size", 0), peer.messages[0][0] if peer.messages
              else None)
        check("tls: UTF-8 recipient", ["RCPT TO:<j\u00f6rg@relay.example>"],
              peer.messages[0][1] if peer.messages else None)
        b = of_type(recs, "Bounce")[0]
        check("tls: over the SIZE limit is a Bounce without MAIL",
              {"code": 552, "enhanced_code": {"class": 5, "subject": 3,
                                              "detail": 4},
               "content": "oobd: the message (%d bytes) exceeds the next "
                          "hop's SIZE limit of 2000 bytes" % b["size"],
               "command": None}, b["response"])
        check("tls: one MAIL in all", 1, sum(1 for cn in peer.conns for x in cn
                                            if x.startswith("MAIL")))
    except Exception as e:
        not_ok("tls harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()
        peer.stop()


# ---- 8b. STARTTLS that fails, and tls_verify ----
def test_tls_fallback_verify(tmpdir):
    key = os.path.join(tmpdir, "key2.pem")
    crt = os.path.join(tmpdir, "crt2.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=peer.test.example",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    # The hop offers STARTTLS, then hangs up: oobd goes on in the clear.
    hop = free_port()
    peer = Peer(hop, tls=ctx, tls_break=True)
    d = relay_oobd(hop)
    try:
        d.start()
        send_message(d.port, "a@example.org", ["x@relay.example"], BODY)
        recs = d.wait_records(lambda rs: of_type(rs, "Delivery"))
        check("tls fallback: Reception then Delivery, no TransientFailure",
              ["Reception", "Delivery"], [x["type"] for x in recs])
        dl = of_type(recs, "Delivery")[0]
        check("tls fallback: delivered in the clear", [None, None],
              [dl.get("tls_cipher"), dl.get("tls_protocol_version")])
        check("tls fallback: second connection skips STARTTLS",
              [["EHLO mx.test.example", "STARTTLS"],
               ["EHLO mx.test.example"]],
              [[c for c in cn if c[:4] in ("EHLO", "STAR")]
               for cn in peer.conns])
        check("tls fallback: logged", True, "event=relay-tls-failed" in
              d.stderr_text())
    except Exception as e:
        not_ok("tls fallback harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()
        peer.stop()
    # tls_verify without the CA: a TransientFailure, nothing in the clear.
    hop = free_port()
    peer = Peer(hop, tls=ctx)
    d = relay_oobd(hop, extra={"tls_verify": "true",
                               "tls_ca_file": json.dumps(os.path.join(
                                   tmpdir, "crt.pem")),
                               "retry_interval": '"1 hour"'})
    try:
        d.start()
        send_message(d.port, "a@example.org", ["x@relay.example"], BODY)
        recs = d.wait_records(lambda rs: of_type(rs, "TransientFailure"))
        tf = of_type(recs, "TransientFailure")
        check("tls verify: unknown CA is a TransientFailure", True,
              bool(tf) and tf[0]["response"]["code"] == 400 and
              tf[0]["response"]["content"].startswith(
                  "oobd internal: STARTTLS: ") and
              "certificate verify failed" in tf[0]["response"]["content"])
        check("tls verify: nothing sent in the clear", [], peer.messages)
    except Exception as e:
        not_ok("tls verify harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()
        peer.stop()
    # tls_verify with the hop's CA: verified by its IP address.
    hop = free_port()
    peer = Peer(hop, tls=ctx)
    d = relay_oobd(hop, extra={"tls_verify": "true",
                               "tls_ca_file": json.dumps(crt)})
    try:
        d.start()
        send_message(d.port, "a@example.org", ["x@relay.example"], BODY)
        recs = d.wait_records(lambda rs: of_type(rs, "Delivery"))
        dl = of_type(recs, "Delivery")
        check("tls verify: delivered over verified TLS", True,
              bool(dl) and dl[0].get("tls_protocol_version") in
              ("TLSv1.2", "TLSv1.3"))
    except Exception as e:
        not_ok("tls verify ok harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()
        peer.stop()


def send_utf8(port):
    from oobdtest import Client
    c = Client(port)
    c.line()
    c.cmd("EHLO client.test.example")
    c.cmd("MAIL FROM:<a@example.org> SMTPUTF8 BODY=8BITMIME")
    c.cmd("RCPT TO:<j\u00f6rg@relay.example>")
    c.cmd("DATA")
    c.send("Subject: gr\u00fc\u00dfe\r\n\r\nh\u00e9\r\n.\r\n".encode())
    reply = c.line()
    c.cmd("QUIT")
    c.close()
    return reply


tmpdir = tempfile.mkdtemp(prefix="oobd-relay-")
try:
    test_sink_accepts()
    test_exact_bytes()
    test_451_then_250()
    test_550()
    test_down_then_expired()
    test_kill9_restart()
    test_kill9_in_session()
    test_spool_failure()
    test_config()
    test_loop_by_name()
    test_tls_utf8_size(tmpdir)
    test_tls_fallback_verify(tmpdir)
finally:
    shutil.rmtree(tmpdir, ignore_errors=True)
finish()
