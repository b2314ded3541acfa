# SPDX-License-Identifier: Apache-2.0
"""Helpers for the tests that run the real oobd daemon.

Each test starts src/oobd on a free loopback port with a configuration
written into a temporary directory, talks SMTP to it, reads back its log
files, and stops it by its PID. Every check prints "ok - NAME" or
"not ok - NAME"; finish() sets the exit status.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

OOBD = os.environ.get("OOBD_BIN", "src/oobd")
SRCDIR = os.environ.get("OOBD_SRCDIR", ".")
SHARED = os.environ.get("OOBD_SHARED", os.path.join(SRCDIR, "..", "shared"))
CORPUS = os.path.join(SHARED, "corpus")

_passed = 0
_failed = 0


def ok(name):
    global _passed
    _passed += 1
    print("ok - " + name, flush=True)


def not_ok(name, detail=""):
    global _failed
    _failed += 1
    print("not ok - " + name, flush=True)
    for line in str(detail).splitlines():
        print("  " + line)


def check(name, expected, actual):
    if expected == actual:
        ok(name)
    else:
        not_ok(name, "expected: %r\nactual:   %r" % (expected, actual))


def finish():
    print("# %d passed, %d failed" % (_passed, _failed))
    sys.exit(1 if _failed else 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def corpus(rel):
    with open(os.path.join(CORPUS, rel), "rb") as f:
        return f.read()


def to_crlf(data):
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data.replace(b"\n", b"\r\n")


def toml_str(s):
    return json.dumps(s)


class Oobd:
    """A running oobd with its own directory, configuration and logs."""

    def __init__(self, domains=None, listener=None, logs=None, rules=None,
                 tmp=None, port=None, admin="", relay=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="oobd-test-")
        self.port = port or free_port()
        self.log_dir = os.path.join(self.tmp, "log")
        self.conf = os.path.join(self.tmp, "oobd.toml")
        self.proc = None
        keys = {"listen": "[%s]" % toml_str("127.0.0.1:%d" % self.port),
                "hostname": '"mx.test.example"',
                "state_dir": toml_str(os.path.join(self.tmp, "state"))}
        if domains is not None:
            dpath = os.path.join(self.tmp, "listener_domains.toml")
            with open(dpath, "w") as f:
                f.write(domains)
            keys["listener_domains"] = "[%s]" % toml_str(dpath)
        keys.update(listener or {})
        lines = ["[listener]"] + ["%s = %s" % kv for kv in keys.items()]
        lines += ["[logs]", "log_dir = %s" % toml_str(self.log_dir)]
        for k, v in (logs or {}).items():
            lines.append("%s = %s" % (k, v))
        # The admin listener is off unless a test asks for an address.
        lines += ["[admin]", "listen = %s" % toml_str(admin)]
        lines.append("[bounce_classifier]")
        rules = rules or [os.path.join(SRCDIR, "conf", "bounce_rules.toml")]
        lines.append("files = [%s]" % ", ".join(toml_str(r) for r in rules))
        if relay is not None:
            # [relay]: the spool in the test directory unless given.
            self.spool_dir = os.path.join(self.tmp, "spool")
            relay = dict({"spool_dir": toml_str(self.spool_dir)}, **relay)
            lines += ["[relay]"] + ["%s = %s" % kv for kv in relay.items()]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, timeout=20):
        self.stderr = open(os.path.join(self.tmp, "stderr.log"), "ab")
        self.proc = subprocess.Popen([OOBD, "-c", self.conf],
                                     stderr=self.stderr)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("oobd exited with %d: %s" % (
                    self.proc.returncode, self.stderr_text()))
            try:
                probe = socket.create_connection(("127.0.0.1", self.port),
                                                 0.2)
            except OSError:
                time.sleep(0.05)
                continue
            # Wait for the daemon to close the probe's session, so it does
            # not count against the connection limits of the test.
            try:
                probe.settimeout(10)
                got = b""
                while b"\n" not in got:
                    chunk = probe.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                if chunk:
                    probe.sendall(b"QUIT\r\n")
                    while probe.recv(4096):
                        pass
            except OSError:
                pass
            probe.close()
            return self
        raise RuntimeError("oobd did not start listening")

    def stderr_text(self):
        with open(os.path.join(self.tmp, "stderr.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            rc = self.proc.wait()
        self.proc = None
        self.stderr.close()
        return rc

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def records(self):
        """Every record in the log directory, in file then line order."""
        out = []
        if not os.path.isdir(self.log_dir):
            return out
        for name in sorted(os.listdir(self.log_dir)):
            path = os.path.join(self.log_dir, name)
            if name.startswith(".") or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                raw = f.read()
            if raw[:4] == b"\x28\xb5\x2f\xfd":
                raw = subprocess.run(["zstd", "-dcq"], input=raw,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL).stdout
            for line in raw.decode("utf-8").splitlines():
                if line:
                    out.append(json.loads(line))
        return out

    def wait_records(self, pred, timeout=10):
        deadline = time.time() + timeout
        recs = []
        while time.time() < deadline:
            recs = self.records()
            if pred(recs):
                return recs
            time.sleep(0.05)
        return recs


class Client:
    """A raw SMTP client: exact bytes out, reply lines in."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reply(self):
        """One whole reply: (code, [lines without the code])."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return (None, lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode("utf-8", "replace")
            lines.append(text[4:])
            if len(text) < 4 or text[3] != "-":
                return (int(text[:3]) if text[:3].isdigit() else None, lines)

    def line(self):
        code, lines = self.reply()
        return "%s %s" % (code, lines[-1] if lines else "")

    def cmd(self, data):
        self.send(data if data.endswith("\r\n") else data + "\r\n")
        return self.line()

    def closed(self, timeout=5):
        """True when the server has closed the connection."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (socket.timeout, ConnectionResetError):
            return False

    def close(self):
        self.sock.close()


def send_message(port, sender, rcpts, data, ehlo="client.test.example"):
    """A whole transaction; returns the replies as "code text" strings."""
    c = Client(port)
    out = [c.line()]
    out.append(c.cmd("EHLO " + ehlo))
    out.append(c.cmd("MAIL FROM:<%s>" % sender))
    for r in rcpts:
        out.append(c.cmd("RCPT TO:<%s>" % r))
    out.append(c.cmd("DATA"))
    if out[-1].startswith("354"):
        body = to_crlf(data)
        body = b"\r\n".join((b"." + l if l.startswith(b".") else l)
                            for l in body.split(b"\r\n"))
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        c.send(body + b".\r\n")
        out.append(c.line())
    out.append(c.cmd("QUIT"))
    c.close()
    return out
