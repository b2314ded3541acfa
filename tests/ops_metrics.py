# SPDX-License-Identifier: Apache-2.0
"""The admin listener's standard process_* series and the records by
classification and feedback type, scraped from the running daemon:
each process_* value against what /proc says of the same process, the
feedback and classification counters against the reports sent, and the
whole live exposition through `promtool check metrics`."""

import os
import re
import subprocess
import time
import urllib.request

from oobdtest import (SHARED, SRCDIR, Oobd, check, finish, free_port, not_ok,
                      ok, send_message, to_crlf)

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
log_arf = "LogThenDrop"
"""
with open(os.path.join(SRCDIR, "tests", "data", "sample-dsn.eml"), "rb") as f:
    DSN = to_crlf(f.read())
with open(os.path.join(SHARED, "corpus", "kumomta", "rfc5965", "2.eml"),
          "rb") as f:
    ARF = to_crlf(f.read())


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        return r.read().decode()


def samples(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$', line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): field n is fields[n - 3].
    return fields


admin = free_port()
d = Oobd(domains=DOMAINS, admin="127.0.0.1:%d" % admin)
try:
    d.start()
    pid = d.proc.pid
    for i in range(2):
        r = send_message(d.port, "", ["bounce@bounce.example.com"], DSN)
        check("bounce %d accepted" % i, True, r[5].startswith("250 "))
    r = send_message(d.port, "", ["bounce@bounce.example.com"], ARF)
    check("feedback report accepted", True, r[5].startswith("250 "))
    d.wait_records(lambda recs: sum(x["type"] == "Feedback"
                                    for x in recs) == 1)

    before = proc_stat(pid)
    text = scrape(admin)
    after = proc_stat(pid)
    s = samples(text)
    tck = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGESIZE")

    cpu = s.get("process_cpu_seconds_total", -1)
    lo = (int(before[11]) + int(before[12])) / tck
    hi = (int(after[11]) + int(after[12])) / tck
    check("process_cpu_seconds_total within /proc's utime+stime around "
          "the scrape", True, lo - 0.01 <= cpu <= hi + 0.01)
    with open("/proc/stat") as f:
        btime = int(re.search(r"^btime (\d+)$", f.read(), re.M).group(1))
    start = btime + int(after[19]) / tck
    check("process_start_time_seconds = btime + starttime / CLK_TCK",
          round(start, 2), s.get("process_start_time_seconds"))
    check("process_start_time_seconds within a minute of now", True,
          abs(time.time() - s.get("process_start_time_seconds", 0)) < 60)
    check("process_virtual_memory_bytes = /proc vsize", True,
          min(int(before[20]), int(after[20])) <=
          s.get("process_virtual_memory_bytes", -1) <=
          max(int(before[20]), int(after[20])))
    rss = s.get("process_resident_memory_bytes", -1)
    rss_lo = min(int(before[21]), int(after[21])) * page
    rss_hi = max(int(before[21]), int(after[21])) * page
    check("process_resident_memory_bytes = /proc rss pages x page size",
          True, rss_lo <= rss <= rss_hi)
    with open("/proc/%d/limits" % pid) as f:
        soft = re.search(r"^Max open files\s+(\S+)", f.read(), re.M).group(1)
    check("process_max_fds = the soft RLIMIT_NOFILE",
          float("inf") if soft == "unlimited" else float(soft),
          s.get("process_max_fds"))
    fds = len(os.listdir("/proc/%d/fd" % pid))
    # The scrape's own connection may be open or closed by now: one apart.
    check("process_open_fds = /proc/PID/fd entries (the scrape's socket "
          "aside)", True, fds - 1 <= s.get("process_open_fds", -5) <= fds + 1)

    check("feedback reports by type",
          {'oobd_feedback_reports_total{feedback_type="abuse"}': 1.0},
          {k: v for k, v in s.items()
           if k.startswith("oobd_feedback_reports_total")})
    check("OOB records by classification",
          {'oobd_bounce_classifications_total'
           '{classification="InvalidRecipient"}': 2.0},
          {k: v for k, v in s.items()
           if k.startswith("oobd_bounce_classifications_total")})
    check("records by type: 2 OOB, 1 Feedback",
          (2.0, 1.0), (s.get('oobd_records_total{type="OOB"}'),
                       s.get('oobd_records_total{type="Feedback"}')))
    check("retention counters present and zero", (0.0, 0.0),
          (s.get("oobd_log_segments_removed_total"),
           s.get("oobd_log_segments_removed_bytes_total")))

    # promtool, on what the running daemon serves now.
    live = scrape(admin)
    p = subprocess.run(["promtool", "check", "metrics"], input=live.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    check("promtool check metrics on the live exposition: exit 0 and no "
          "finding", (0, ""), (p.returncode, p.stdout.decode().strip()))
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_virtual_memory_bytes", "process_open_fds",
                 "process_max_fds", "process_start_time_seconds"):
        if re.search(r"^# TYPE %s (counter|gauge)$" % name, live, re.M):
            ok("%s typed" % name)
        else:
            not_ok("%s typed" % name)
finally:
    d.cleanup()
finish()
