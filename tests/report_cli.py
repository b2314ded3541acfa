# SPDX-License-Identifier: Apache-2.0
"""`oobd report` against an independent count: log segments of generated
records (zstd and plain, finished and cut off mid-frame or mid-line as a
segment being written is), summed up by decoding every complete line
whole in Python and compared with the --json output breakdown by
breakdown; records crafted to mislead a field lookup (nested keys named
like the fields), lines that are not records, --since/--until, --by and
--top in the table, errors; and a live daemon's log read while it writes
it."""

import copy
import datetime
import json
import os
import random
import shutil
import subprocess
import tempfile

from oobdtest import (OOBD, SHARED, SRCDIR, Oobd, check, finish, ok, not_ok,
                      send_message, to_crlf)

TMP = tempfile.mkdtemp(prefix="oobd-report-")
rnd = random.Random(18)


def template(path, kind):
    out = subprocess.run([OOBD, "parse", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=True).stdout
    for line in out.decode().splitlines():
        rec = json.loads(line)
        if rec["type"] == kind:
            return rec
    raise RuntimeError("no %s record in %s" % (kind, path))


K = os.path.join(SHARED, "corpus", "kumomta")
OOB = template(os.path.join(K, "rfc3464", "2.eml"), "OOB")
RECEPTION = template(os.path.join(K, "rfc3464", "2.eml"), "Reception")
FEEDBACK = template(os.path.join(K, "rfc5965", "2.eml"), "Feedback")

CLASSES = ["InvalidRecipient", "BadDomain", "QuotaIssues", "Uncategorized"]
REASONS = ["userunknown", "hostunknown", "mailboxfull", None]
DOMAINS = ["Example.COM", "example.net", "mail.example.org"]
MTAS = ["mx1.example.com", "mx2.example.net"]
FTYPES = ["abuse", "fraud", "not-spam"]
CAMPAIGNS = ["spring", "autumn", None]


def make(i, t0):
    k = rnd.random()
    if k < 0.3:
        r = copy.deepcopy(RECEPTION)
    elif k < 0.85:
        r = copy.deepcopy(OOB)
        r["recipient"] = "user%d@%s" % (i, rnd.choice(DOMAINS))
        r["bounce_classification"] = rnd.choice(CLASSES)
        r["peer_address"]["name"] = rnd.choice(MTAS)
        det = r["oob_detail"]
        reason = rnd.choice(REASONS)
        if reason is not None:
            det["reason"] = reason
            det["hard_bounce"] = reason in ("userunknown", "hostunknown")
        c = rnd.choice(CAMPAIGNS)
        det["trace"] = {"campaign": c, "tenant": "t"} if c else None
    else:
        r = copy.deepcopy(FEEDBACK)
        fr = r["feedback_report"]
        fr["feedback_type"] = rnd.choice(FTYPES)
        fr["reporting_mta"] = {"mta_type": "dns", "name": rnd.choice(MTAS)}
        c = rnd.choice(CAMPAIGNS)
        fr["supplemental_trace"] = {"campaign": c} if c else None
    r["timestamp"] = t0 + i
    return r


def iso(t):
    return datetime.datetime.fromtimestamp(
        t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def dump(r):
    return json.dumps(r, ensure_ascii=False, separators=(",", ":"))


def expected(lines, since=None, until=None):
    """The report's breakdowns, from whole records."""
    by = {k: {} for k in ("type", "classification", "reason", "hard",
                          "domain", "mta", "feedback_type", "campaign")}
    n = skipped = 0

    def bump(k, v):
        by[k][v] = by[k].get(v, 0) + 1
    for line in lines:
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            t = r["type"]
            assert isinstance(t, str)
        except (ValueError, KeyError, AssertionError, TypeError):
            skipped += 1
            continue
        ts = r.get("timestamp")
        if (since is not None and ts < since) or \
                (until is not None and ts >= until):
            continue
        n += 1
        bump("type", t)
        if t == "OOB":
            det = r.get("oob_detail") or {}
            bump("classification", r.get("bounce_classification") or
                 "Uncategorized")
            rc = r["recipient"]
            rc = rc[0] if isinstance(rc, list) else rc
            bump("domain", rc.rsplit("@", 1)[1].lower() if "@" in rc
                 else "(none)")
            bump("mta", (r.get("peer_address") or {}).get("name") or
                 "(unknown)")
            if isinstance(det.get("reason"), str):
                bump("reason", det["reason"])
            hb = det.get("hard_bounce")
            bump("hard", "hard" if hb is True else "soft" if hb is False
                 else "(unknown)")
            bump("campaign", ((det.get("trace") or {}).get("campaign")) or
                 "(none)")
        elif t == "Feedback":
            fr = r.get("feedback_report") or {}
            bump("feedback_type", fr.get("feedback_type") or "(unknown)")
            bump("mta", (fr.get("reporting_mta") or {}).get("name") or
                 "(unknown)")
            bump("campaign", ((fr.get("supplemental_trace") or {})
                              .get("campaign")) or "(none)")
    return n, skipped, by


def report(*args):
    p = subprocess.run([OOBD, "report"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=300)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c"], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def complete_lines(data):
    """The lines of data that end with a newline."""
    return data.decode().split("\n")[:-1]


try:
    t0 = 1796000000
    logdir = os.path.join(TMP, "log")
    os.mkdir(logdir)
    recs = [make(i, t0) for i in range(6000)]
    texts = [dump(r) for r in recs]

    # Records crafted so that a key search on the raw line would go wrong.
    evil = copy.deepcopy(OOB)
    evil["headers"] = {"oob_detail": "x", "recipient": "no@wrong.example"}
    evil["oob_detail"]["trace"] = {
        "x": {"oob_detail": {"reason": "fake", "hard_bounce": True}},
        "campaign": "real", "y": ',"oob_detail":{"reason":"fake2"}}'}
    evil["oob_detail"]["reason"] = "real-reason"
    evil["timestamp"] = t0 + 6000
    strict = copy.deepcopy(OOB)
    del strict["oob_detail"]
    strict["headers"] = {"oob_detail": ["a", "b"]}
    strict["timestamp"] = t0 + 6001
    fb = copy.deepcopy(FEEDBACK)
    fb["feedback_report"]["extensions"] = {
        "supplemental_trace": ["x"], "meta": ["y"], "campaign": ["z"]}
    fb["feedback_report"]["supplemental_trace"] = {
        "campaign": "fbl-real", "n": {"supplemental_trace": {"campaign": "no"}}}
    fb["timestamp"] = t0 + 6002
    # oob_detail's keys in either order around a trace that imitates them.
    before = copy.deepcopy(OOB)
    before["oob_detail"] = {"decoder": "rfc3464", "reason": "r-before",
                            "hard_bounce": False,
                            "trace": {"reason": "fake3", "hard_bounce": True,
                                      "campaign": "c-before"},
                            "returned_message": None}
    before["timestamp"] = t0 + 6003
    after = copy.deepcopy(OOB)
    after["oob_detail"] = {"decoder": "rfc3464", "action": "failed",
                           "trace": {"x": [{"reason": "fake4"}]},
                           "reason": "r-after", "hard_bounce": True,
                           "diagnostic_enhanced_code": {"class": 5},
                           "returned_message": {"subject": ',"reason":"no"'}}
    after["timestamp"] = t0 + 6004
    odd = [dump(evil), dump(strict), dump(fb), dump(before), dump(after),
           "not json at all",
           '{"no_type":1}', '{"type":"Reception","timestamp":%d}' % (t0 + 1)]

    # Finished segments: zstd (several frames) and plain.
    seg1 = ("\n".join(texts[:2000]) + "\n").encode()
    seg1b = ("\n".join(texts[2000:3000]) + "\n").encode()
    with open(os.path.join(logdir, "20261201-000000"), "wb") as f:
        f.write(zstd(seg1) + zstd(seg1b))
    seg2 = ("\n".join(texts[3000:4000] + odd) + "\n").encode()
    with open(os.path.join(logdir, "20261201-010000.5"), "wb") as f:
        f.write(seg2)
    # Segments being written: zstd cut inside a frame, plain mid-line.
    whole3 = zstd(("\n".join(texts[4000:5500]) + "\n").encode())
    cut3 = whole3[:len(whole3) * 3 // 5]
    with open(os.path.join(logdir, "20261201-020000"), "wb") as f:
        f.write(cut3)
    got3 = subprocess.run(["zstd", "-q", "-d", "-c"], input=cut3,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL).stdout
    seg4 = ("\n".join(texts[5500:6000]) + "\n").encode() + \
        texts[5999][: len(texts[5999]) // 2].encode()
    with open(os.path.join(logdir, "20261201-030000"), "wb") as f:
        f.write(seg4)
    # Not read: a dot file (a repair in progress).
    with open(os.path.join(logdir, ".20261201-030000.repair"), "w") as f:
        f.write(texts[0] + "\n")

    lines = complete_lines(seg1) + complete_lines(seg1b) + \
        complete_lines(seg2) + complete_lines(got3) + complete_lines(seg4)
    check("the cut zstd segment yields some but not all of its records",
          True, 0 < len(complete_lines(got3)) < 1500)
    n, skipped, by = expected(lines)
    rc, out, err = report("--json", logdir)
    check("--json: exit 0", 0, rc)
    check("--json: nothing on stderr", "", err)
    j = json.loads(out)
    check("records counted = complete records", n, j["records"])
    check("files read (the dot file left out)", 4, j["files"])
    check("lines that are not records", 2, j["skipped_lines"])
    check("skipped, as Python counts them", skipped, j["skipped_lines"])
    stamps = [json.loads(x)["timestamp"] for x in lines
              if x.startswith('{"type"')]
    check("first and last timestamps", (iso(min(stamps)), iso(max(stamps))),
          (j["first"], j["last"]))
    for k in by:
        check("breakdown %s" % k, by[k], j["by"][k])
    check("crafted OOB: its own reason counted once", 1,
          j["by"]["reason"].get("real-reason"))
    check("crafted OOB: no nested value counted", (None, None),
          (j["by"]["reason"].get("fake"), j["by"]["reason"].get("fake2")))
    check("oob_detail keys before or after the trace: their own values",
          (1, 1, None, None), (j["by"]["reason"].get("r-before"),
                               j["by"]["reason"].get("r-after"),
                               j["by"]["reason"].get("fake3"),
                               j["by"]["reason"].get("fake4")))
    check("crafted Feedback: its own campaign", (1, None),
          (j["by"]["campaign"].get("fbl-real"), j["by"]["campaign"].get("no")))

    # Files named one by one give the same as the directory.
    names = sorted(os.path.join(logdir, x) for x in os.listdir(logdir)
                   if not x.startswith("."))
    rc, out2, _ = report("--json", *names)
    check("files named = their directory", j, json.loads(out2))

    # --since / --until on the records' timestamp.
    since, until = t0 + 1000, t0 + 3500
    n2, _, by2 = expected(lines, since, until)
    rc, out, _ = report("--json", "--since", "@%d" % since, "--until",
                        iso(until), logdir)
    j2 = json.loads(out)
    check("--since/--until: records in the range", n2, j2["records"])
    check("--since/--until: breakdowns", by2, j2["by"])
    check("--since a duration ago: nothing of 2026-11-30 is in the last "
          "hour", 0, json.loads(report("--json", "--since", "1 hour",
                                       logdir)[1])["records"])

    # The table: --by one field, every row, most frequent first.
    rc, out, _ = report("--by", "feedback_type", "--since", "@%d" % since,
                        "--until", "@%d" % until, logdir)
    rows = sorted(by2["feedback_type"].items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(by2["feedback_type"].values())
    want = ["%d records in 4 files, %s to %s" % (n2, iso(since),
                                                 iso(until - 1)),
            "2 lines skipped: not records", "", "Feedback reports by type"]
    want += ["  %10d %5.1f%%  %s" % (c, 100.0 * c / total, name)
             for name, c in rows]
    check("--by feedback_type: the table", want, out.splitlines())
    rc, out, _ = report("--top", "2", "--by", "domain", logdir)
    check("--by shows every row (--top is for the full report)",
          len(by["domain"]), len(out.splitlines()) - 4)
    rc, out, _ = report("--top", "2", logdir)
    sec = out.split("\n\nBounces (OOB) by recipient domain\n")[1]
    sec = sec.split("\n\n")[0].splitlines()
    rest = sorted(by["domain"].values(), reverse=True)[2:]
    check("--top 2: two rows and the rest on one line", [
          3, "  %10d %5.1f%%  (%d more)" % (sum(rest), 100.0 * sum(rest) /
                                           sum(by["domain"].values()),
                                           len(rest))],
          [len(sec), sec[-1]])

    # Errors.
    rc, out, err = report("--json", os.path.join(TMP, "nonesuch"), logdir)
    check("a missing input: exit 1, the rest still counted", (1, n),
          (rc, json.loads(out)["records"]))
    check("a missing input: named on stderr", True,
          "nonesuch: No such file or directory" in err)
    bad = os.path.join(TMP, "corrupt")
    with open(bad, "wb") as f:
        f.write(whole3[:200] + b"\xff" * 5000)
    rc, out, err = report("--json", bad)
    check("corrupt zstd data: exit 1 and named", (1, True),
          (rc, "corrupt zstd data" in err))
    check("--by unknown: exit 2", 2, report("--by", "nonesuch", logdir)[0])
    check("--since not a time: exit 2", 2,
          report("--since", "yesterday-ish", logdir)[0])

    # A live daemon: its open zstd segment, read while it runs.
    os.makedirs(os.path.join(TMP, "live"))
    d = Oobd(domains='["bounce.example.com"]\nlog_oob = "LogThenDrop"\n'
             'log_arf = "LogThenDrop"\n', tmp=os.path.join(TMP, "live"))
    try:
        d.start()
        with open(os.path.join(SRCDIR, "tests", "data", "sample-dsn.eml"),
                  "rb") as f:
            dsn = to_crlf(f.read())
        with open(os.path.join(K, "rfc5965", "2.eml"), "rb") as f:
            arf = to_crlf(f.read())
        for i in range(3):
            send_message(d.port, "", ["bounce@bounce.example.com"], dsn)
        send_message(d.port, "", ["bounce@bounce.example.com"], arf)
        writable = [x for x in os.listdir(d.log_dir)
                    if os.stat(os.path.join(d.log_dir, x)).st_mode & 0o200]
        check("the daemon's segment is still open (writable)", 1,
              len(writable))
        rc, out, err = report("--json", "-c", d.conf)
        j = json.loads(out) if rc == 0 else {}
        check("live: the open segment's records, found through -c",
              (0, {"Reception": 3, "OOB": 3, "Feedback": 1}),
              (rc, j.get("by", {}).get("type")))
        check("live: classification and feedback type",
              ({"InvalidRecipient": 3}, {"abuse": 1}),
              (j.get("by", {}).get("classification"),
               j.get("by", {}).get("feedback_type")))
    finally:
        d.cleanup()
finally:
    shutil.rmtree(TMP, ignore_errors=True)
finish()
