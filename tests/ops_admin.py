# SPDX-License-Identifier: Apache-2.0
"""The admin HTTP listener of the real daemon, scraped during an SMTP
session mix: /metrics in Prometheus text format with counters that match
what was sent and what the log files hold, and /api/check-liveness/v1,
which turns 503 once the log cannot be written."""

import os
import re
import shutil
import signal
import time
import urllib.error
import urllib.request

from oobdtest import (SRCDIR, Client, Oobd, check, finish, free_port, not_ok,
                      ok, send_message, to_crlf)

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
log_arf = "LogThenDrop"
"""
with open(os.path.join(SRCDIR, "tests", "data", "sample-dsn.eml"), "rb") as f:
    DSN = to_crlf(f.read())

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$')


def get(port, path):
    """(status, content type, body) of an HTTP GET."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def parse(text):
    """{(name, labels): value} and the problems of the exposition format."""
    samples, problems, typed, helped = {}, [], {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split(" ")[2])
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            typed[parts[2]] = parts[3]
            continue
        m = SAMPLE.match(line)
        if not m:
            problems.append("bad line: %r" % line)
            continue
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        family = name if name in typed else base
        if family not in typed or family not in helped:
            problems.append("no HELP/TYPE for %s" % name)
        try:
            samples[(name, labels)] = float(value)
        except ValueError:
            problems.append("bad value: %r" % line)
    return samples, problems


def wait_metric(port, key, want, timeout=10):
    deadline = time.time() + timeout
    samples = {}
    while time.time() < deadline:
        samples, _ = parse(get(port, "/metrics")[2])
        if samples.get(key) == want:
            break
        time.sleep(0.05)
    return samples


admin = free_port()
d = Oobd(domains=DOMAINS, admin="127.0.0.1:%d" % admin,
         logs={"compression": '"none"', "max_file_size": "1"})
try:
    d.start()
    status, ctype, body = get(admin, "/metrics")
    check("metrics status", 200, status)
    check("metrics content type", "text/plain; version=0.0.4; charset=utf-8",
          ctype)
    samples, problems = parse(body)
    check("exposition format", [], problems)
    # Oobd.start() connects once to see that the daemon listens.
    check("the start probe's connection", 1.0,
          samples.get(("oobd_connections_total", "")))
    check("liveness while healthy", (200, "OK\n"),
          get(admin, "/api/check-liveness/v1")[::2])
    check("unknown path", 404, get(admin, "/nothing")[0])

    # Traffic: 3 bounces, 1 non-report, a relay refusal, an unknown verb.
    for i in range(3):
        r = send_message(d.port, "", ["bounce@bounce.example.com"], DSN)
        check("bounce %d accepted" % i, True, r[5].startswith("250 2.0.0 OK"))
    r = send_message(d.port, "x@example.org", ["bounce@bounce.example.com"],
                     b"Subject: not a report\r\n\r\nhello\r\n")
    check("non-report refused", "550 5.7.1 relaying not permitted", r[5])
    c = Client(d.port)
    c.line()
    c.cmd("EHLO client.test.example")
    c.cmd("MAIL FROM:<a@example.org>")
    check("relay refused", "550 5.7.1 relaying not permitted for 127.0.0.1:%d"
          % c.sock.getsockname()[1], c.cmd("RCPT TO:<x@elsewhere.example>"))
    check("unknown verb", "500 5.5.2 Error: command not recognized",
          c.cmd("FOO"))

    # Scraped while that session is open; Rejection records are written
    # after their reply, so wait for both to be counted.
    wait_metric(admin, ("oobd_records_total", 'type="Rejection"'), 3.0)
    s = wait_metric(admin, ("oobd_sessions", ""), 1.0)
    check("open sessions", 1.0, s.get(("oobd_sessions", "")))
    check("connections", 6.0, s.get(("oobd_connections_total", "")))
    c.cmd("QUIT")
    c.close()
    s = wait_metric(admin, ("oobd_sessions", ""), 0.0)
    check("sessions after QUIT", 0.0, s.get(("oobd_sessions", "")))
    want = {
        ("oobd_messages_total", 'result="accepted"'): 3.0,
        ("oobd_messages_total", 'result="rejected"'): 1.0,
        ("oobd_messages_total", 'result="tempfailed"'): 0.0,
        ("oobd_records_total", 'type="Reception"'): 4.0,
        ("oobd_records_total", 'type="OOB"'): 3.0,
        ("oobd_records_total", 'type="Feedback"'): 0.0,
        ("oobd_records_total", 'type="Rejection"'): 3.0,
        ("oobd_bounce_classifications_total",
         'classification="InvalidRecipient"'): 3.0,
        ("oobd_rejections_total", 'code="550",enhanced_code="5.7.1"'): 2.0,
        ("oobd_rejections_total", 'code="500",enhanced_code="5.5.2"'): 1.0,
        ("oobd_parse_failures_total", ""): 1.0,
        ("oobd_relay_queue_depth", ""): 0.0,
        ("oobd_connections_refused_total", ""): 0.0,
        ("oobd_log_healthy", ""): 1.0,
        ("oobd_log_failures_total", ""): 0.0,
    }
    check("counters after the traffic", want,
          {k: s.get(k) for k in want})
    recs = d.records()
    by_type = {}
    for r in recs:
        by_type[r["type"]] = by_type.get(r["type"], 0) + 1
    check("records counted = records in the log files",
          {"Reception": 4, "OOB": 3, "Rejection": 3}, by_type)
    check("log records in bytes", float(sum(
        os.path.getsize(os.path.join(d.log_dir, n))
        for n in os.listdir(d.log_dir) if not n.startswith("."))),
        s.get(("oobd_log_bytes_total", "")))
    buckets = sorted((float(k[1][4:-1]) if k[1] != 'le="+Inf"' else 1e99, v)
                     for k, v in s.items()
                     if k[0] == "oobd_log_sync_seconds_bucket")
    counts = [v for _, v in buckets]
    check("sync histogram cumulative", counts, sorted(counts))
    check("sync histogram +Inf = count", s.get(("oobd_log_sync_seconds_count",
                                                "")), counts[-1])
    check("every sync timed", s.get(("oobd_log_syncs_total", "")),
          s.get(("oobd_log_sync_seconds_count", "")))
    check("syncs happened", True, s[("oobd_log_sync_seconds_count", "")] >= 7)
    check("sync time summed", True, s[("oobd_log_sync_seconds_sum", "")] > 0)

    # A reload is counted.
    os.kill(d.proc.pid, signal.SIGHUP)
    s = wait_metric(admin, ("oobd_reloads_total", 'result="ok"'), 1.0)
    check("reload counted", (1.0, 0.0), (
        s.get(("oobd_reloads_total", 'result="ok"')),
        s.get(("oobd_reloads_total", 'result="failed"'))))

    # The log directory disappears: each segment is closed after one
    # commit (max_file_size = 1), so the next one cannot be created.
    shutil.rmtree(d.log_dir)
    r = send_message(d.port, "", ["bounce@bounce.example.com"], DSN)
    check("message while the log is broken", True,
          r[5].startswith("451 4.3.0 Error: local error writing the log"))
    status, _, body = get(admin, "/api/check-liveness/v1")
    check("liveness fails with the log", (503,
          "log unhealthy: records cannot be written\n"), (status, body))
    s, problems = parse(get(admin, "/metrics")[2])
    check("log unhealthy in metrics", 0.0, s.get(("oobd_log_healthy", "")))
    check("tempfailed message counted", 1.0,
          s.get(("oobd_messages_total", 'result="tempfailed"')))
    check("451 counted", 1.0, s.get(("oobd_rejections_total",
                                     'code="451",enhanced_code="4.3.0"')))
    check("records of the failed commit not counted", 4.0,
          s.get(("oobd_records_total", 'type="Reception"')))
    check("exit status", 0, d.stop())
except Exception as e:
    not_ok("admin listener", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()

# Without [admin] listen the daemon serves no HTTP; a taken port is an
# error at start.
port = free_port()
d = Oobd(domains=DOMAINS, admin="127.0.0.1:%d" % port)
blocker = None
try:
    import socket
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", port))
    blocker.listen(1)
    try:
        d.start(timeout=20)
        not_ok("admin port taken: start fails")
    except RuntimeError as e:
        check("admin port taken: start fails", True,
              "exited with 1" in str(e))
        check("admin port taken: error", True,
              ("oobd: [admin] listen: 127.0.0.1:%d: cannot listen: Address "
               "already in use" % port) in d.stderr_text())
finally:
    if blocker:
        blocker.close()
    d.cleanup()

finish()
