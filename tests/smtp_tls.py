# SPDX-License-Identifier: Apache-2.0
"""STARTTLS through the real daemon with a throwaway self-signed
certificate: plaintext pipelined after STARTTLS is discarded, the session
starts over after the handshake, STARTTLS twice or with an argument is
refused, handshakes that never come or are garbage end the session, TLS
below 1.2 is refused, the TLS fields of the records are filled
(smtp-robustness §10 items 12-16), and input sent while a message is
with a worker is read only up to the session's limit, inside TLS as in
plaintext."""

import ctypes
import os
import warnings
import socket
import ssl
import subprocess
import tempfile
import time

from oobdtest import (Client, Oobd, check, corpus, finish, not_ok, to_crlf,
                      toml_str)

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
"""
RCPT = "bounce@bounce.example.com"
DSN = to_crlf(corpus("kumomta/rfc3464/1.eml"))


warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is meant


def make_cert(tmp, name, subject):
    key = os.path.join(tmp, name + ".key")
    crt = os.path.join(tmp, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", subject], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return crt, key


def client_ctx(cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


def starttls(c, ctx):
    """STARTTLS on a greeted, EHLO'd client; returns the 220 line."""
    line = c.cmd("STARTTLS")
    c.sock = ctx.wrap_socket(c.sock)
    return line


def ehlo_lines(c, name):
    c.send("EHLO %s\r\n" % name)
    return c.reply()[1]


PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_DETACH = 0x4206, 0x4207, 17
WALL = 0x40000000


class Frozen:
    """Every thread of a process but the first (oobd's event loop) held
    by ptrace: the workers and the log's sync thread. A message handed
    to a worker then stays there, and its session busy, until thaw()."""

    def __init__(self, pid):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long,
                                     ctypes.c_void_p, ctypes.c_void_p]
        self.libc.ptrace.restype = ctypes.c_long
        self.tids = []
        for tid in sorted(int(t) for t in os.listdir("/proc/%d/task" % pid)):
            if tid == pid:
                continue
            if self.libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0:
                raise OSError(ctypes.get_errno(), "ptrace(SEIZE, %d)" % tid)
            self.tids.append(tid)
            self.libc.ptrace(PTRACE_INTERRUPT, tid, None, None)
            os.waitpid(tid, WALL)

    def thaw(self):
        for tid in self.tids:
            self.libc.ptrace(PTRACE_DETACH, tid, None, None)
        self.tids = []


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def flood(sock, limit, seconds):
    """Bytes without a line end until limit bytes are sent, seconds have
    passed, or a send makes no progress for 2 s (the server stopped
    reading); returns (bytes sent, whether the sending stalled)."""
    chunk = b"x" * 65536
    sent = 0
    deadline = time.time() + seconds
    sock.settimeout(2)
    try:
        while sent < limit and time.time() < deadline:
            sock.sendall(chunk)
            sent += len(chunk)
    except socket.timeout:
        return sent, True
    except OSError:
        pass
    return sent, False


def send_dsn(c, ehlo):
    out = [c.cmd("MAIL FROM:<>"), c.cmd("RCPT TO:<%s>" % RCPT), c.cmd("DATA")]
    c.send(DSN + b".\r\n")
    out.append(c.line())
    return out


tmp = tempfile.mkdtemp(prefix="oobd-test-")
crt, key = make_cert(tmp, "server", "/CN=mx.test.example")
ccert = make_cert(tmp, "client",
                  "/C=US/ST=CA/O=Oobd Test/CN=client.test.example")
d = Oobd(domains=DOMAINS, tmp=tmp, logs={"meta": '["ehlo_domain", "tls"]'},
         listener={"tls_certificate": toml_str(crt),
                   "tls_private_key": toml_str(key),
                   "idle_timeout": '"3s"'})
try:
    d.start()

    # §10 items 12 and 13: plaintext after STARTTLS is never answered; the
    # session starts over; STARTTLS is not offered again nor accepted.
    c = Client(d.port)
    c.line()
    check("EHLO offers STARTTLS", True, "STARTTLS" in ehlo_lines(c, "plain.example"))
    c.send("STARTTLS\r\nHELP\r\n")
    check("STARTTLS with pipelined HELP", "220 2.0.0 Ready to start TLS",
          c.line())
    tls = client_ctx(ccert)
    c.sock = tls.wrap_socket(c.sock)
    check("pipelined plaintext never answered inside TLS", "250 2.0.0 Ok",
          c.cmd("NOOP"))
    check("MAIL without a new EHLO",
          "503 5.5.1 Error: send HELO/EHLO first", c.cmd("MAIL FROM:<>"))
    lines = ehlo_lines(c, "tls.example")
    check("EHLO inside TLS", ["mx.test.example", "PIPELINING",
                              "SIZE 20000000", "8BITMIME", "SMTPUTF8",
                              "ENHANCEDSTATUSCODES"], lines)
    check("STARTTLS twice", "554 5.5.1 Error: TLS already active",
          c.cmd("STARTTLS"))
    r = send_dsn(c, "tls.example")
    check("message over TLS accepted", ["250 2.1.0 Ok", "250 2.1.5 Ok",
                                       "354", "250 2.0.0 OK ids="],
          [r[0], r[1], r[2][:3], r[3][:17]])
    cipher, version = c.sock.cipher()[0], c.sock.version()
    check("QUIT over TLS", "221 2.0.0 Bye", c.cmd("QUIT"))
    c.close()

    # The same without a client certificate.
    c = Client(d.port)
    c.line()
    ehlo_lines(c, "plain2.example")
    check("STARTTLS", "220 2.0.0 Ready to start TLS", starttls(c, client_ctx()))
    ehlo_lines(c, "nocert.example")
    r = send_dsn(c, "nocert.example")
    check("message over TLS without client certificate", "250 2.0.0 OK ids=",
          r[3][:17])
    cipher2, version2 = c.sock.cipher()[0], c.sock.version()
    c.cmd("QUIT")
    c.close()

    recs = d.wait_records(lambda x: sum(r["type"] == "Reception"
                                        for r in x) >= 2)
    rec = [r for r in recs if r["type"] == "Reception"]
    check("Reception TLS fields with a client certificate",
          {"cipher": cipher, "version": version,
           "subject": ["C=US", "ST=CA", "O=Oobd Test",
                       "CN=client.test.example"],
           "peer": "tls.example", "meta": {"ehlo_domain": "tls.example",
                                           "tls": True}},
          {"cipher": rec[0].get("tls_cipher"),
           "version": rec[0].get("tls_protocol_version"),
           "subject": rec[0].get("tls_peer_subject_name"),
           "peer": rec[0]["peer_address"]["name"], "meta": rec[0]["meta"]})
    check("TLS fields follow reception_protocol, before session_id",
          ["reception_protocol", "nodeid", "tls_cipher",
           "tls_protocol_version", "tls_peer_subject_name", "session_id"],
          list(rec[0].keys())[-6:])
    check("TLS protocol at least 1.2", True, version in ("TLSv1.2", "TLSv1.3"))
    oob = [r for r in recs if r["type"] == "OOB"
           and r["session_id"] == rec[0]["session_id"]]
    check("OOB record without TLS fields (as KumoMTA)", [(None, None)],
          [(r.get("tls_cipher"), r.get("tls_protocol_version")) for r in oob])
    check("Reception TLS fields without a client certificate",
          (cipher2, version2, None),
          (rec[1].get("tls_cipher"), rec[1].get("tls_protocol_version"),
           rec[1].get("tls_peer_subject_name", None)))
    rej = [r for r in recs if r["type"] == "Rejection"
           and r["response"]["code"] == 503]
    check("EHLO forgotten after the handshake (Rejection record)",
          [("", {"tls": True})],
          [(r["peer_address"]["name"], r["meta"]) for r in rej])

    # §10 item 14.
    c = Client(d.port)
    c.line()
    ehlo_lines(c, "x.example")
    check("STARTTLS with an argument", "501 5.5.4 Syntax: STARTTLS",
          c.cmd("STARTTLS now"))
    c.close()

    # §10 item 15: no ClientHello (closed at the idle timeout), garbage.
    c = Client(d.port, timeout=30)
    c.line()
    ehlo_lines(c, "x.example")
    check("STARTTLS, then silence", "220 2.0.0 Ready to start TLS",
          c.cmd("STARTTLS"))
    check("closed when the handshake never comes", (True, b""),
          (c.closed(timeout=20), c.buf))
    c.close()
    c = Client(d.port)
    c.line()
    ehlo_lines(c, "x.example")
    c.cmd("STARTTLS")
    c.send(b"EHLO x.example\r\n" * 20)
    check("closed after garbage instead of a ClientHello", True, c.closed())
    c.close()

    # A handshake trickled one byte per write (every 0.5 s) is cut off by
    # the handshake deadline (idle_timeout, 3 s), though each byte arrives
    # within the idle time.
    c = Client(d.port)
    c.line()
    ehlo_lines(c, "x.example")
    c.cmd("STARTTLS")
    hello = bytes.fromhex("16030100c8010000c40303") + b"\x00" * 200
    c.sock.settimeout(0.5)
    trickled, closed = 0, False
    for i in range(60):
        try:
            c.sock.sendall(hello[i:i + 1])
            trickled += 1
            if c.sock.recv(4096) == b"":
                closed = True
                break
        except socket.timeout:
            pass
        except OSError:
            closed = True
            break
    check("trickled handshake cut off by its deadline", (True, True),
          (closed, trickled < 60))
    c.close()

    # close_notify in the middle of DATA, then cleartext.
    c = Client(d.port)
    c.line()
    ehlo_lines(c, "x.example")
    starttls(c, client_ctx())
    ehlo_lines(c, "midclose.example")
    c.cmd("MAIL FROM:<>")
    c.cmd("RCPT TO:<%s>" % RCPT)
    c.cmd("DATA")
    c.send(DSN[:200])
    try:
        raw = c.sock.unwrap()
    except (ssl.SSLError, OSError):
        raw = None
    if raw is not None:
        try:
            raw.sendall(b"\r\n.\r\nMAIL FROM:<>\r\n")
        except OSError:
            pass
        c.sock = raw
        check("closed after close_notify and cleartext in DATA", True,
              c.closed())
    else:
        check("closed after close_notify in DATA", True, True)
    c.close()

    # TLS 1.1 is refused; TLS 1.2 works.
    for maxv, want in ((ssl.TLSVersion.TLSv1_1, False),
                       (ssl.TLSVersion.TLSv1_2, True)):
        c = Client(d.port)
        c.line()
        ehlo_lines(c, "x.example")
        c.cmd("STARTTLS")
        ctx = client_ctx()
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = maxv
        ctx.set_ciphers("DEFAULT@SECLEVEL=0")
        err = ""
        try:
            c.sock = ctx.wrap_socket(c.sock)
            got = c.sock.version()
        except ssl.SSLError as e:
            got, err = None, e.reason
        if want:
            check("TLS 1.2 client accepted", "TLSv1.2", got)
        else:
            check("TLS 1.1 client refused by the server",
                  (None, "TLSV1_ALERT_PROTOCOL_VERSION"), (got, err))
        c.close()

    # openssl s_client -starttls smtp
    p = subprocess.run(["openssl", "s_client", "-starttls", "smtp",
                        "-connect", "127.0.0.1:%d" % d.port, "-brief", "-ign_eof",
                        "-name", "client.test.example"],
                       input=b"quit\r\n",  # "Q" is an s_client command
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    out = p.stdout.decode("utf-8", "replace")
    check("openssl s_client -starttls smtp", (0, True, True),
          (p.returncode, "Protocol version: TLSv1.3" in out,
           "221 2.0.0 Bye" in out))

    c = Client(d.port)
    check("daemon still serves", "220 mx.test.example ESMTP oobd", c.line())
    c.close()
    check("SIGTERM exit status", 0, d.stop())
except Exception as e:
    not_ok("smtp_tls harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# Input sent after the end of DATA while the message is with a worker:
# read only up to the session's input limit, inside TLS as in plaintext,
# so the sending stalls and memory stays flat. The workers are held, so
# the session stays busy for the whole flood (200 MB at most).
MAX_MESSAGE = 10 * 1024 * 1024
tmp = tempfile.mkdtemp(prefix="oobd-test-")
crt, key = make_cert(tmp, "server", "/CN=mx.test.example")
d = Oobd(domains=DOMAINS, tmp=tmp,
         listener={"tls_certificate": toml_str(crt),
                   "tls_private_key": toml_str(key),
                   "max_message_size": '"10MiB"', "workers": "1",
                   "max_junk_commands": "1000000"})
try:
    d.start()
    for mode in ("plaintext", "TLS"):
        c = Client(d.port, timeout=30)
        c.line()
        ehlo_lines(c, "flood.example")
        if mode == "TLS":
            starttls(c, client_ctx())
            ehlo_lines(c, "flood.example")
        c.cmd("MAIL FROM:<>")
        c.cmd("RCPT TO:<%s>" % RCPT)
        c.cmd("DATA")
        frozen = Frozen(d.proc.pid)
        try:
            c.send(DSN + b".\r\n")
            before = vm_hwm_kb(d.proc.pid)
            sent, stalled = flood(c.sock, 200 * 1024 * 1024, 60)
            peak = vm_hwm_kb(d.proc.pid)
        finally:
            frozen.thaw()
        check("%s flood while busy: the server stops reading" % mode,
              (True, True), (stalled, sent < 64 * 1024 * 1024))
        check("%s flood while busy: peak RSS grows by less than "
              "max_message_size" % mode, True,
              (peak - before) * 1024 < MAX_MESSAGE)
        c.sock.settimeout(30)
        check("%s flood while busy: the message accepted" % mode,
              "250 2.0.0 OK ids=", c.line()[:17])
        check("%s flood while busy: then the endless line refused" % mode,
              "500 5.5.2 Error: line too long", c.line())
        c.close()
        print("# %s: %d MB sent, VmHWM %d -> %d kB" % (
            mode, sent >> 20, before, peak))
    # Inside TLS too, commands pipelined after the end of DATA beyond the
    # input limit are all answered, in order, and QUIT closes after the
    # last reply (the close waits for every queued reply).
    c = Client(d.port, timeout=30)
    c.line()
    ehlo_lines(c, "pipe.example")
    starttls(c, client_ctx())
    ehlo_lines(c, "pipe.example")
    c.cmd("MAIL FROM:<>")
    c.cmd("RCPT TO:<%s>" % RCPT)
    c.cmd("DATA")
    rsets = 40000
    c.send(DSN + b".\r\n" + b"RSET\r\n" * rsets + b"QUIT\r\n")
    first = c.line()
    answers = [c.line() for _ in range(rsets)]
    check("TLS pipelined after DATA: all answered, then 221",
          ("250 2.0.0 OK ids=", ["250 2.0.0 Ok"] * rsets, "221 2.0.0 Bye"),
          (first[:17], answers, c.line()))
    c.close()
    check("flood: SIGTERM exit status", 0, d.stop())
except Exception as e:
    not_ok("smtp_tls flood harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# Without a certificate STARTTLS is neither offered nor accepted.
d = Oobd(domains=DOMAINS)
try:
    d.start()
    c = Client(d.port)
    c.line()
    check("no STARTTLS without a certificate", False,
          "STARTTLS" in ehlo_lines(c, "x.example"))
    check("STARTTLS without a certificate", "454 4.7.0 TLS not available",
          c.cmd("STARTTLS"))
    check("plaintext delivery still accepted", "250 2.0.0 OK ids=",
          send_dsn(c, "x.example")[3][:17])
    c.close()
except Exception as e:
    not_ok("smtp_tls no-certificate harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()
finish()
