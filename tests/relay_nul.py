# SPDX-License-Identifier: Apache-2.0
"""NUL bytes before a dot, through the real daemon and onward to a real
next hop: a line "\\0." followed by a smuggled transaction is refused
under invalid_line_endings "Deny" (550 5.6.0 and a Rejection record,
nothing relayed), loses its NULs under "Fix", and under "Allow" is relayed
with an extra dot, so that a next hop that strips NULs before it looks
for the end of data still sees one message. The next hops are a raw
socket peer that records the exact bytes oobd sends, and Postfix's
smtp-sink."""

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from oobdtest import Client, Oobd, check, finish, free_port, not_ok

DOMAINS = """
["relay.example"]
relay_to = true
"""
RCPT = "x@relay.example"
SMUGGLED = (b"MAIL FROM:<admin@smuggler.example>\r\n"
            b"RCPT TO:<" + RCPT.encode() + b">\r\n"
            b"DATA\r\n"
            b"Subject: smuggled\r\n"
            b"\r\n"
            b"smuggled text\r\n")
# What the client sends between DATA's 354 and the end: a line "\0.",
# the smuggled transaction, a line "\0\0.x" and a NUL inside a line.
TEXT = (b"From: a@example.org\r\nTo: x@relay.example\r\nSubject: nul\r\n"
        b"\r\nfirst\r\n\0.\r\n" + SMUGGLED + b"\0\0.x\r\nin\0side\r\n")


class RawPeer:
    """A next hop on a thread: answers every command with 250 (DATA with
    354), and keeps each message's bytes exactly as oobd sent them,
    dot-stuffing and all, up to and including the final CRLF.CRLF."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.raw = []
        self.mails = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            try:
                self._session(c)
            except OSError:
                pass
            c.close()

    def _session(self, c):
        c.settimeout(30)
        buf = b""

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    raise OSError("closed")
                buf += chunk
            ln, buf = buf.split(b"\r\n", 1)
            return ln

        c.sendall(b"220 peer.test.example ESMTP\r\n")
        while True:
            cmd = line().upper()
            if cmd.startswith(b"QUIT"):
                c.sendall(b"221 2.0.0 Bye\r\n")
                return
            if cmd.startswith(b"MAIL"):
                self.mails += 1
            if cmd != b"DATA":
                c.sendall(b"250 peer.test.example\r\n" if cmd.startswith(
                    (b"EHLO", b"HELO")) else b"250 2.0.0 Ok\r\n")
                continue
            c.sendall(b"354 go ahead\r\n")
            data = b"\r\n" + buf
            while b"\r\n.\r\n" not in data:
                chunk = c.recv(65536)
                if not chunk:
                    raise OSError("closed")
                data += chunk
            end = data.index(b"\r\n.\r\n") + 5
            self.raw.append(data[2:end])
            buf = data[end:]
            c.sendall(b"250 2.0.0 Ok: queued\r\n")

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


class Sink:
    """Postfix's smtp-sink, dumping each message to its own file."""

    def __init__(self, port):
        self.dir = tempfile.mkdtemp(prefix="oobd-sink-")
        os.chmod(self.dir, 0o777)
        cmd = ["smtp-sink", "-h", "sink.test.example",
               "-d", os.path.join(self.dir, "m.")]
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


def send(port):
    """The transaction, then NOOP: the replies from DATA on."""
    c = Client(port)
    c.line()
    c.send("EHLO client.test.example\r\n")
    c.reply()
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<%s>" % RCPT)
    out = [c.cmd("DATA")]
    c.send(TEXT + b".\r\n")
    out.append(c.line())
    out.append(c.cmd("NOOP"))
    c.cmd("QUIT")
    c.close()
    return out


def text_of(raw):
    """A message's bytes on the wire without the Received header oobd
    adds, as a next hop keeps them (dot-stuffing undone), then the same
    for a next hop that strips NULs first."""
    def unstuff(b):
        lines = b[:-5].split(b"\r\n")
        return b"\r\n".join(x[1:] if x.startswith(b".") else x
                            for x in lines) + b"\r\n"
    body = raw.split(b"\r\n\r\n", 1)[0]
    while body.startswith(b"Received:") or body.startswith(b"\t"):
        body = body.split(b"\r\n", 1)[1]
    raw = body + raw[raw.index(b"\r\n\r\n"):]
    # A NUL-stripping next hop ends the message at its first CRLF.CRLF.
    stripped = raw.replace(b"\0", b"")
    stripped = stripped[:stripped.index(b"\r\n.\r\n") + 5]
    return unstuff(raw), unstuff(stripped)


def wait_for(fn, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return fn()


def run(mode, hop_kind):
    hop = free_port()
    peer = RawPeer(hop) if hop_kind == "raw" else Sink(hop)
    d = Oobd(domains=DOMAINS, listener={
        "invalid_line_endings": '"%s"' % mode},
        relay={"next_hop": '"[127.0.0.1]:%d"' % hop,
               "retry_interval": '"1s"', "connect_timeout": '"5s"',
               "command_timeout": '"10s"'},
        logs={"compression": '"none"'})
    name = "%s, %s next hop" % (mode, hop_kind)
    try:
        d.start()
        r = send(d.port)
        if mode == "Deny":
            check(name + ": refused after the real end, in sync",
                  ["354", "550 5.6.0 Error: NUL character in message",
                   "250 2.0.0 Ok"], [r[0][:3], r[1], r[2]])
            recs = d.wait_records(lambda x: len(x) >= 1)
            check(name + ": one Rejection record",
                  [("Rejection", 550, "5.6.0",
                    "Error: NUL character in message")],
                  [(x["type"], x["response"]["code"],
                    x["response"]["enhanced_code"] and "%d.%d.%d" % (
                        x["response"]["enhanced_code"]["class"],
                        x["response"]["enhanced_code"]["subject"],
                        x["response"]["enhanced_code"]["detail"]),
                    x["response"]["content"]) for x in recs])
            time.sleep(1)
            got = peer.raw if hop_kind == "raw" else peer.dumps()
            check(name + ": nothing relayed", [], got)
        else:
            check(name + ": one message accepted, in sync",
                  ["354", "250 2.0.0 OK ids=", "250 2.0.0 Ok"],
                  [r[0][:3], r[1][:17], r[2]])
            recs = d.wait_records(
                lambda x: any(y["type"] == "Delivery" for y in x))
            check(name + ": Reception then Delivery",
                  ["Reception", "Delivery"], [x["type"] for x in recs])
            # What the text is once received: "Fix" removes the NULs.
            want = TEXT if mode == "Allow" else TEXT.replace(b"\0", b"")
            if hop_kind == "raw":
                raw = wait_for(lambda: peer.raw)
                check(name + ": one transaction relayed", (1, 1),
                      (len(raw), peer.mails))
                kept, stripped = text_of(raw[0]) if raw else (None, None)
                check(name + ": the next hop gets the text unchanged",
                      want, kept)
                check(name + ": a NUL-stripping next hop sees the whole "
                      "message, no second transaction", want.replace(
                          b"\0", b""), stripped)
                if mode == "Allow":
                    check(name + ": lines \\0. and \\0\\0.x dot-stuffed",
                          True, b"\r\n.\0.\r\n" in raw[0] and
                          b"\r\n.\0\0.x\r\n" in raw[0])
            else:
                dumps = wait_for(peer.dumps)
                check(name + ": one message delivered", 1, len(dumps))
                # smtp-sink writes LF lines, dot-stuffing undone, and
                # one more line end.
                msg = dumps[0].partition(b"(UTC)\n")[2] if dumps else b""
                body = msg.replace(b"\n", b"\r\n").split(b"\r\n\r\n", 1)
                check(name + ": smtp-sink got the text unchanged",
                      want.split(b"\r\n\r\n", 1)[1] + b"\r\n",
                      body[1] if len(body) == 2 else None)
        check(name + ": no record of the smuggled transaction", [],
              [x for x in d.records() if "smuggler" in x["sender"]])
        check(name + ": daemon exit status", 0, d.stop())
    except Exception as e:
        not_ok(name + " harness", repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()
        peer.stop()


for mode in ("Deny", "Fix", "Allow"):
    for hop_kind in ("raw", "smtp-sink"):
        run(mode, hop_kind)
finish()
