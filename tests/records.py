# SPDX-License-Identifier: Apache-2.0
"""records.py - look at the JSON lines that `oobd parse` printed, for the
shell tests. Standard library only.

usage:
  records.py summary FILE    one line: "TYPE sender>recipient code C.S.D
                             action" per record, records joined by " ; "
  records.py stable FILE     the records without the fields that change from
                             run to run (id, times, nodeid), one per line
  records.py whole-1 FILE CLASSIFICATION
                             check the records of kumomta/rfc3464/1.eml field
                             by field; prints "ok" or the differences
  records.py json FILE       "ok" when every line is one compact JSON object
                             (serde_json style: no spaces, raw UTF-8, "/" as
                             is); else the first bad line number
"""
import json
import re
import sys
from datetime import datetime, timezone

VOLATILE = ("id", "timestamp", "event_time", "created", "created_time",
            "nodeid")
UUID_EPOCH = 0x01B21DD213814000   # 1582-10-15 to 1970-01-01 in 100 ns


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def summary(recs):
    out = []
    for r in recs:
        resp = r.get("response") or {}
        e = resp.get("enhanced_code")
        enh = "%s.%s.%s" % (e["class"], e["subject"], e["detail"]) \
            if e else "-"
        rcpt = r.get("recipient")
        if isinstance(rcpt, list):
            rcpt = ",".join(rcpt)
        action = (r.get("oob_detail") or {}).get("action") or "-"
        out.append("%s %s>%s %s %s %s" % (r.get("type"), r.get("sender"),
                                          rcpt, resp.get("code"), enh,
                                          action))
    return " ; ".join(out)


def uuid1_time(hexid):
    """(unix seconds, nanoseconds) of a UUID v1 in 32-hex simple form."""
    t = int(hexid[13:16] + hexid[8:12] + hexid[0:8], 16) - UUID_EPOCH
    return t // 10**7, (t % 10**7) * 100


def rfc3339(sec, nsec):
    """As chrono's to_rfc3339_opts(AutoSi, true)."""
    s = datetime.fromtimestamp(sec, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S")
    if nsec == 0:
        return s + "Z"
    if nsec % 10**6 == 0:
        return s + ".%03dZ" % (nsec // 10**6)
    if nsec % 1000 == 0:
        return s + ".%06dZ" % (nsec // 1000)
    return s + ".%09dZ" % nsec


def whole_1(recs, classification):
    """kumomta/rfc3464/1.eml parsed with no options but --rules; the OOB
    record's bounce_classification depends on the rules."""
    problems = []

    def want(what, exp, got):
        if exp == got:
            return
        if isinstance(exp, dict) and isinstance(got, dict):
            for k in list(exp) + [k for k in got if k not in exp]:
                if exp.get(k, "(absent)") != got.get(k, "(absent)"):
                    problems.append("%s.%s: expected %s, got %s" % (
                        what, k, json.dumps(exp.get(k, "(absent)")),
                        json.dumps(got.get(k, "(absent)"))))
            return
        problems.append("%s: expected %s, got %s" % (
            what, json.dumps(exp), json.dumps(got)))

    want("record types", ["Reception", "OOB"], [r.get("type") for r in recs])
    if len(recs) != 2:
        return problems
    rec, oob = recs
    order = ["type", "id", "sender", "recipient", "queue", "site", "size",
             "response", "peer_address", "timestamp", "event_time",
             "created", "created_time", "num_attempts",
             "bounce_classification", "egress_pool", "egress_source",
             "source_address", "feedback_report", "meta", "headers",
             "delivery_protocol", "reception_protocol", "nodeid"]

    # Both records: the spool id and its time, the node id.
    for name, r in (("Reception", rec), ("OOB", oob)):
        rid = r.get("id", "")
        if not re.fullmatch(r"[0-9a-f]{32}", rid) or rid[12] != "1":
            problems.append("%s id: not a UUID v1 in simple form: %r"
                            % (name, rid))
            continue
        sec, nsec = uuid1_time(rid)
        want(name + " created (the id's time)", sec, r.get("created"))
        want(name + " created_time (the id's time)", rfc3339(sec, nsec),
             r.get("created_time"))
        if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
                            r"[0-9a-f]{4}-[0-9a-f]{12}", r.get("nodeid", "")):
            problems.append("%s nodeid: not a UUID: %r"
                            % (name, r.get("nodeid")))
    want("the same id in both records", rec.get("id"), oob.get("id"))
    want("the same nodeid in both records", rec.get("nodeid"),
         oob.get("nodeid"))

    # Reception: now, to the To: address, no Return-Path so sender "".
    want("Reception keys", order, list(rec))
    ts = rec.get("timestamp")
    if not isinstance(ts, int) or abs(ts - rec.get("created", 0)) > 5:
        problems.append("Reception timestamp %r not the reception time" % ts)
    else:
        ev = rec.get("event_time", "")
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|"
                            r"\.\d{9})?Z", ev) or not ev.startswith(
                                rfc3339(ts, 0)[:-1]):
            problems.append("Reception event_time %r does not match "
                            "timestamp %r" % (ev, ts))
    fixed = {k: v for k, v in rec.items() if k not in VOLATILE}
    want("Reception fields", {
        "type": "Reception",
        "sender": "",
        "recipient": "owner-info-mime@cs.utk.edu",
        "queue": "cs.utk.edu",
        "site": "",
        "size": 1312,
        "response": {"code": 250, "enhanced_code": None, "content": "",
                     "command": None},
        "peer_address": {"name": "", "addr": "0.0.0.0"},
        "num_attempts": 0,
        "bounce_classification": "Uncategorized",
        "egress_pool": None,
        "egress_source": None,
        "source_address": None,
        "feedback_report": None,
        "meta": {},
        "headers": {},
        "delivery_protocol": None,
        "reception_protocol": "ESMTP",
    }, fixed)

    # OOB: KumoMTA's fields, then oob_detail.
    want("OOB keys", order + ["oob_detail"], list(oob))
    fixed = {k: v for k, v in oob.items()
             if k not in VOLATILE + ("oob_detail",)}
    want("OOB fields", {
        "type": "OOB",
        "sender": "owner-info-mime@cs.utk.edu",
        "recipient": "louisl@larry.slip.umd.edu",
        "queue": "cs.utk.edu",
        "site": "",
        "size": 0,
        # "smtp; 426 connection timed out" with Status 4.0.0.
        "response": {"code": 426,
                     "enhanced_code": {"class": 4, "subject": 0, "detail": 0},
                     "content": "connection timed out", "command": None},
        "peer_address": {"name": "cs.utk.edu", "addr": "0.0.0.0"},
        "num_attempts": 0,
        # The single-line form is "426 4.0.0 connection timed out".
        "bounce_classification": classification,
        "egress_pool": None,
        "egress_source": None,
        "source_address": None,
        "feedback_report": None,
        "meta": {},
        "headers": {},
        "delivery_protocol": None,
        "reception_protocol": "ESMTP",
    }, fixed)
    # Last-Attempt-Date: Thu, 7 Jul 1994 17:15:49 -0400
    want("OOB timestamp", 773615749, oob.get("timestamp"))
    want("OOB event_time", "1994-07-07T21:15:49Z", oob.get("event_time"))
    d = oob.get("oob_detail")
    if not isinstance(d, dict):
        problems.append("oob_detail: not an object: %r" % (d,))
    else:
        if not isinstance(d.get("decoder"), str) or not d["decoder"]:
            problems.append("oob_detail.decoder: %r" % d.get("decoder"))
        want("oob_detail.action", "failed", d.get("action"))
        for k, v in (("status_comment", None), ("remote_mta", None),
                     ("diagnostic_type", "smtp"), ("trace", None)):
            if k in d:
                want("oob_detail." + k, v, d[k])
    return problems


def compact(path):
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            try:
                obj = json.loads(line)
            except ValueError:
                return "line %d: not JSON" % n
            if not isinstance(obj, dict) or json.dumps(
                    obj, separators=(",", ":"), ensure_ascii=False) != line:
                return "line %d: not compact serde_json style" % n
    return "ok"


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "summary":
        print(summary(load(path)))
    elif cmd == "stable":
        for r in load(path):
            print(json.dumps({k: v for k, v in r.items()
                              if k not in VOLATILE}, ensure_ascii=False))
    elif cmd == "whole-1":
        problems = whole_1(load(path), sys.argv[3])
        print("\n".join(problems) if problems else "ok")
    elif cmd == "json":
        print(compact(path))
    else:
        sys.exit("records.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
