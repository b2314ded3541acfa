# SPDX-License-Identifier: Apache-2.0
"""Signals of the real daemon: SIGHUP reloads the configuration, listener
domains, rule files and TLS certificate for new sessions only (an invalid
file keeps the running configuration and logs each error); SIGUSR1 closes
the log segment; SIGTERM/SIGINT drain (421 4.3.2 to idle sessions, DATA
finishes, logs synced, exit 0), within shutdown_timeout."""

import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import time

from oobdtest import (SRCDIR, Client, Oobd, check, finish, not_ok, ok,
                      to_crlf)

RULES = os.path.join(SRCDIR, "conf", "bounce_rules.toml")
with open(os.path.join(SRCDIR, "tests", "data", "sample-dsn.eml"), "rb") as f:
    DSN = to_crlf(f.read())

OLD_DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
"""
NEW_DOMAINS = """
["new.example.com"]
log_oob = "LogThenDrop"
"""


def wait_stderr(d, pattern, count=1, timeout=20):
    """The stderr text once pattern has matched count times (bounded)."""
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        text = d.stderr_text()
        if len(re.findall(pattern, text)) >= count:
            return text
        time.sleep(0.05)
    return text


def rewrite(path, old, new):
    with open(path) as f:
        text = f.read()
    if old not in text:
        raise RuntimeError("%r not in %s" % (old, path))
    with open(path, "w") as f:
        f.write(text.replace(old, new))


def greet(port, ehlo=True):
    c = Client(port)
    banner = c.line()
    if ehlo:
        c.send("EHLO client.test.example\r\n")
        c.reply()
    return c, banner


def send_dsn(c, rcpt="bounce@bounce.example.com"):
    """MAIL, RCPT, DATA and the sample DSN on an open session."""
    out = [c.cmd("MAIL FROM:<>"), c.cmd("RCPT TO:<%s>" % rcpt), c.cmd("DATA")]
    if out[-1].startswith("354"):
        c.send(DSN + b".\r\n")
        out.append(c.line())
    return out


def peer_subject(port):
    """The subject of the certificate a new session gets after STARTTLS."""
    c, _ = greet(port)
    r = c.cmd("STARTTLS")
    if not r.startswith("220"):
        return r
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(c.sock, server_hostname="mx.test.example")
    der = tls.getpeercert(binary_form=True)
    tls.close()
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout",
                          "-subject", "-nameopt", "RFC2253"], input=der,
                         stdout=subprocess.PIPE, check=True).stdout
    return out.decode().strip().replace("subject=", "", 1)


def make_cert(tmp, cn):
    crt = os.path.join(tmp, cn + ".crt")
    key = os.path.join(tmp, cn + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=" + cn], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return crt, key


# ---- SIGHUP ----
d = Oobd(domains=OLD_DOMAINS, logs={"compression": '"none"'})
try:
    crt_a, key_a = make_cert(d.tmp, "a.test.example")
    crt_b, key_b = make_cert(d.tmp, "b.test.example")
    crt = os.path.join(d.tmp, "server.crt")
    key = os.path.join(d.tmp, "server.key")
    for src, dst in ((crt_a, crt), (key_a, key)):
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read())
    rewrite(d.conf, "[listener]\n", "[listener]\ntls_certificate = \"%s\"\n"
            "tls_private_key = \"%s\"\nbanner = \"ESMTP before\"\n"
            % (crt, key))
    d.start()
    check("TLS certificate before reload", "CN=a.test.example",
          peer_subject(d.port))
    old, banner = greet(d.port)
    check("greeting before reload", "220 mx.test.example ESMTP before", banner)

    domains = os.path.join(d.tmp, "listener_domains.toml")
    with open(domains, "w") as f:
        f.write(NEW_DOMAINS)
    rewrite(d.conf, 'banner = "ESMTP before"', 'banner = "ESMTP after"')
    for src, dst in ((crt_b, crt), (key_b, key)):
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read())
    os.kill(d.proc.pid, signal.SIGHUP)
    text = wait_stderr(d, r"event=reloaded ")
    check("reload logged", 1, len(re.findall(
        r"level=info event=reloaded listener_domains=1 rule_files=1 "
        r"rules=\d+ tls=yes\n", text)))

    # The session that was open keeps the old domains...
    check("old session: old domain still accepted", "250 2.1.0 Ok",
          old.cmd("MAIL FROM:<>"))
    check("old session: old domain RCPT", "250 2.1.5 Ok",
          old.cmd("RCPT TO:<bounce@bounce.example.com>"))
    check("old session: new domain refused",
          "550 5.7.1 relaying not permitted for 127.0.0.1:%d"
          % old.sock.getsockname()[1],
          old.cmd("RCPT TO:<x@new.example.com>"))
    check("old session: DATA", "354 End data with <CR><LF>.<CR><LF>",
          old.cmd("DATA"))
    old.send(DSN + b".\r\n")
    r = old.line()
    check("old session: message accepted", True,
          r.startswith("250 2.0.0 OK ids="))
    old.cmd("QUIT")
    old.close()

    # ...new sessions get the new ones, the new banner and certificate.
    new, banner = greet(d.port)
    check("greeting after reload", "220 mx.test.example ESMTP after", banner)
    new.cmd("MAIL FROM:<>")
    check("new session: old domain refused",
          "550 5.7.1 relaying not permitted for 127.0.0.1:%d"
          % new.sock.getsockname()[1],
          new.cmd("RCPT TO:<bounce@bounce.example.com>"))
    check("new session: new domain accepted", "250 2.1.5 Ok",
          new.cmd("RCPT TO:<x@new.example.com>"))
    new.cmd("QUIT")
    new.close()
    check("TLS certificate after reload", "CN=b.test.example",
          peer_subject(d.port))

    # An invalid configuration: every error logged, the old one kept.
    with open(d.conf) as f:
        good_conf = f.read()
    rewrite(d.conf, 'banner = "ESMTP after"',
            'banner = "ESMTP broken"\nmax_errors = "many"\nfrobnicate = 1')
    os.kill(d.proc.pid, signal.SIGHUP)
    text = wait_stderr(d, r"event=reload-failed ")
    errs = re.findall(r"level=error event=reload-error error=\"([^\n]*)\"\n",
                      text)
    check("invalid config: each error logged", sorted([
        '%s: [listener] frobnicate: unknown key' % d.conf,
        '%s: [listener] max_errors: expected a positive integer' % d.conf]),
        sorted(errs))
    check("invalid config: failure logged", 1, len(re.findall(
        r"level=error event=reload-failed errors=2 action=\"kept the "
        r"running configuration\"\n", text)))
    c, banner = greet(d.port)
    check("invalid config: old banner kept", "220 mx.test.example ESMTP after",
          banner)
    c.cmd("MAIL FROM:<>")
    check("invalid config: old domains kept", "250 2.1.5 Ok",
          c.cmd("RCPT TO:<x@new.example.com>"))
    c.close()
    with open(d.conf, "w") as f:
        f.write(good_conf)

    # An invalid listener-domains file, then an invalid rule file.
    with open(domains, "w") as f:
        f.write('["broken.example.com"]\nlog_oob = "Sometimes"\n')
    os.kill(d.proc.pid, signal.SIGHUP)
    text = wait_stderr(d, r"event=reload-failed ", 2)
    errs = re.findall(r"event=reload-error error=\"([^\n]*)\"\n", text)
    check("invalid domains file: its error logged", True,
          len(errs) == 3 and errs[2].startswith(domains + ": ")
          and "log_oob" in errs[2])
    c, _ = greet(d.port)
    c.cmd("MAIL FROM:<>")
    check("invalid domains file: old domains kept", "250 2.1.5 Ok",
          c.cmd("RCPT TO:<x@new.example.com>"))
    c.close()
    with open(domains, "w") as f:
        f.write(NEW_DOMAINS)
    bad_rules = os.path.join(d.tmp, "bad_rules.toml")
    with open(bad_rules, "w") as f:
        f.write('[rules]\nBadRule = ["(unclosed"]\n')
    rewrite(d.conf, "files = [", "files = [%s, " % ('"%s"' % bad_rules))
    os.kill(d.proc.pid, signal.SIGHUP)
    text = wait_stderr(d, r"event=reload-failed ", 3)
    errs = re.findall(r"event=reload-error error=\"([^\n]*)\"\n", text)
    check("invalid rule file: its error logged", True,
          len(errs) == 4 and bad_rules in errs[3] and "BadRule" in errs[3])
    rewrite(d.conf, "files = [%s, " % ('"%s"' % bad_rules), "files = [")
    # A certificate that is not one: the running certificate stays.
    with open(crt, "w") as f:
        f.write("not a certificate\n")
    os.kill(d.proc.pid, signal.SIGHUP)
    text = wait_stderr(d, r"event=reload-failed ", 4)
    errs = re.findall(r"event=reload-error error=\"([^\n]*)\"\n", text)
    check("invalid certificate: its error logged", True,
          len(errs) == 5 and errs[4].startswith(
              crt + ": [listener] tls_certificate: "))
    check("invalid certificate: the running one stays", "CN=b.test.example",
          peer_subject(d.port))
    check("every reload failure logged", 4,
          len(re.findall(r"event=reload-failed ", text)))
    # The running rules still classify: the old session's DSN above.
    recs = d.wait_records(lambda r: len(r) >= 4)
    check("records: the old session's message and both refusals", sorted([
        ("Reception", "bounce@bounce.example.com", "Uncategorized", 250),
        ("OOB", "nobody@example.net", "InvalidRecipient", 550),
        ("Rejection", "bounce@bounce.example.com", "RelayDenied", 550),
        ("Rejection", "", "RelayDenied", 550)]),
        sorted((r["type"], r["recipient"], r["bounce_classification"],
                r["response"]["code"]) for r in recs))

    # ---- SIGUSR1 ----
    segs = sorted(n for n in os.listdir(d.log_dir) if not n.startswith("."))
    check("one segment before SIGUSR1", 1, len(segs))
    first = os.path.join(d.log_dir, segs[0])
    with open(first) as f:
        before = f.read()
    check("segment writable while open", True,
          bool(os.stat(first).st_mode & stat.S_IWUSR))
    os.kill(d.proc.pid, signal.SIGUSR1)
    wait_stderr(d, r"event=log-rotated\n")
    check("SIGUSR1 closes the segment read-only", 0,
          os.stat(first).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    c, _ = greet(d.port)
    r = send_dsn(c, "y@new.example.com")
    c.close()
    check("message after SIGUSR1", True, r[-1].startswith("250 2.0.0 OK ids="))
    segs = sorted(n for n in os.listdir(d.log_dir) if not n.startswith("."))
    check("a new segment after SIGUSR1", 2, len(segs))
    with open(os.path.join(d.log_dir, segs[1])) as f:
        lines = f.read().splitlines()
    check("the new segment holds the new records", 2, len(lines))
    with open(first) as f:
        check("old segment unchanged", before, f.read())
    check("SIGTERM after reloads: exit 0", 0, d.stop())
except Exception as e:
    not_ok("reload and rotate", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()


# ---- log levels, keys that need a restart, escaping ----
d = Oobd(domains=OLD_DOMAINS, listener={"log_level": '"warning"'})
try:
    d.start()
    c, _ = greet(d.port)
    c.cmd("NOOP")
    c.close()
    check("log_level warning: no info lines", [], re.findall(
        r"level=info [^\n]*\n", d.stderr_text()))
    rewrite(d.conf, 'log_level = "warning"', 'log_level = "debug"')
    rewrite(d.conf, "[listener]\n", "[listener]\nworkers = 3\n")
    os.kill(d.proc.pid, signal.SIGHUP)
    text = wait_stderr(d, r"event=reloaded ")
    check("reload with a start-only key changed", 1, len(re.findall(
        r"level=warning event=reload-restart-needed key=\"\[listener\] "
        r"workers\"\n", text)))
    c, _ = greet(d.port)
    sid = None
    # Pipelined text after NOOP (which must end a group): logged escaped.
    c.send(b'NOOP\r\nRSET\x01\xff"\\x\r\n')
    replies = [c.line() for _ in range(2)]
    check("pipelining violation refused", True,
          "554 5.5.0 Error: SMTP protocol synchronization" in replies)
    c.close()
    text = wait_stderr(d, r"event=pipelining-violation ")
    m = re.search(r"session=([0-9a-f-]{36}) level=info event=pipelining-"
                  r"violation at=NOOP input=\"RSET\\x01\\xff\\x22\\x5cx"
                  r"\\x0d\\x0a\"\n", text)
    check("untrusted input escaped, line starts with the session id", True,
          m is not None)
    check("log_level debug after reload: debug lines", True, bool(
        re.search(r"session=%s level=debug event=state from=init to=helo\n"
                  % (m.group(1) if m else "-"), text)))
    check("every line key=value", [], [l for l in text.splitlines() if not
          re.match(r'^(session=[0-9a-f-]{36} )?level=(error|warning|info|'
                   r'debug) event=[a-z-]+( [a-z_]+=("[^"]*"|\S*))*$', l)])
    check("log levels: exit 0", 0, d.stop())
except Exception as e:
    not_ok("log levels", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()


# ---- SIGTERM drain ----
d = Oobd(domains=OLD_DOMAINS)
try:
    d.start()
    idle, _ = greet(d.port)
    mail, _ = greet(d.port)
    check("MAIL before drain", "250 2.1.0 Ok", mail.cmd("MAIL FROM:<>"))
    busy, _ = greet(d.port)
    busy.cmd("MAIL FROM:<>")
    busy.cmd("RCPT TO:<bounce@bounce.example.com>")
    check("DATA before drain", "354 End data with <CR><LF>.<CR><LF>",
          busy.cmd("DATA"))
    half = len(DSN) // 2
    busy.send(DSN[:half])
    # Commands are answered in order: all three sessions are set up.
    check("sessions before drain", "250 2.0.0 Ok", idle.cmd("NOOP"))
    os.kill(d.proc.pid, signal.SIGTERM)
    check("idle session told", "421 4.3.2 mx.test.example Service shutting down",
          idle.line())
    check("idle session closed", True, idle.closed())
    check("session in a transaction told",
          "421 4.3.2 mx.test.example Service shutting down", mail.line())
    check("session in a transaction closed", True, mail.closed())
    try:
        socket.create_connection(("127.0.0.1", d.port), 5).close()
        not_ok("no new connections while draining")
    except ConnectionRefusedError:
        ok("no new connections while draining")
    check("still running while DATA is open", None, d.proc.poll())
    busy.send(DSN[half:] + b".\r\n")
    r = busy.line()
    check("DATA finishes during the drain", True,
          r.startswith("250 2.0.0 OK ids="))
    check("then the session is told",
          "421 4.3.2 mx.test.example Service shutting down", busy.line())
    check("and closed", True, busy.closed())
    rc = d.proc.wait(60)
    check("exit status after drain", 0, rc)
    recs = d.records()
    check("records of the drained transaction", [
        ("Reception", "bounce@bounce.example.com"),
        ("OOB", "nobody@example.net")],
        [(r["type"], r["recipient"]) for r in recs])
    check("421 4.3.2 is not a Rejection record", [],
          [r for r in recs if r["type"] == "Rejection"])
    segs = [n for n in os.listdir(d.log_dir) if not n.startswith(".")]
    check("last segment complete (read-only) at exit", [0],
          [os.stat(os.path.join(d.log_dir, n)).st_mode & 0o222 for n in segs])
    text = d.stderr_text()
    check("drain logged", True, bool(re.search(
        r"level=info event=shutdown signal=15 sessions=3 timeout=30\n"
        r"(.*\n)*level=info event=drained\n(.*\n)*level=info event=stopped\n",
        text)))
    idle.close()
    mail.close()
    busy.close()
except Exception as e:
    not_ok("drain", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# A transaction that never ends: the drain stops at shutdown_timeout.
d = Oobd(domains=OLD_DOMAINS, listener={"shutdown_timeout": '"1s"'})
try:
    d.start()
    stuck, _ = greet(d.port)
    stuck.cmd("MAIL FROM:<>")
    stuck.cmd("RCPT TO:<bounce@bounce.example.com>")
    stuck.cmd("DATA")
    stuck.send(b"Subject: never ends\r\n")
    check("session set up", "250 2.0.0 Ok", greet(d.port)[0].cmd("NOOP"))
    os.kill(d.proc.pid, signal.SIGINT)
    rc = d.proc.wait(60)
    check("SIGINT with a stuck DATA: exit 0", 0, rc)
    check("drain timeout logged", 1, len(re.findall(
        r"level=warning event=drain-timeout sessions=1 jobs=0\n",
        d.stderr_text())))
    check("stuck session closed", True, stuck.closed())
    check("nothing logged for the unfinished message", [], d.records())
except Exception as e:
    not_ok("drain timeout", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# A second signal stops at once.
d = Oobd(domains=OLD_DOMAINS)
try:
    d.start()
    stuck, _ = greet(d.port)
    stuck.cmd("MAIL FROM:<>")
    stuck.cmd("RCPT TO:<bounce@bounce.example.com>")
    stuck.cmd("DATA")
    os.kill(d.proc.pid, signal.SIGTERM)
    wait_stderr(d, r"event=shutdown signal=15 ")
    os.kill(d.proc.pid, signal.SIGTERM)
    check("second SIGTERM: exit 0", 0, d.proc.wait(60))
    check("second SIGTERM logged", 1, len(re.findall(
        r"level=warning event=shutdown-now signal=15 sessions=1\n",
        d.stderr_text())))
    stuck.close()
except Exception as e:
    not_ok("second signal", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

finish()
