# SPDX-License-Identifier: Apache-2.0
"""The first start works the first time: state_dir, log_dir and spool_dir
whose parents do not exist are created, with their parents, before
anything listens; started as root with [listener] user, each directory is
the user's (0750), the parents it made are root's (0755). A directory that
cannot be created stops the start before any listener is bound, with an
error naming it."""

import os
import pwd
import re
import time

from oobdtest import (OOBD, Oobd, SRCDIR, check, finish, free_port, not_ok,
                      send_message)
import subprocess

DOMAINS = """
["bounce.example.com"]
log_oob = "LogThenDrop"
"""
SAMPLE = open(os.path.join(SRCDIR, "tests", "data", "sample-dsn.eml"),
              "rb").read()
nobody = pwd.getpwnam("nobody")


def with_dirs(d, state, log, spool, root=False):
    """Point d's configuration at these directories (and, for the spool,
    a relay section with a next hop nothing listens on: never used);
    root: run as [listener] user nobody."""
    with open(d.conf) as f:
        conf = f.read()
    conf = conf.replace('state_dir = "%s"' % os.path.join(d.tmp, "state"),
                        'state_dir = "%s"' % state)
    conf = conf.replace('log_dir = "%s"' % d.log_dir, 'log_dir = "%s"' % log)
    conf += '[relay]\nspool_dir = "%s"\nnext_hop = "[127.0.0.1]:%d"\n' % (
        spool, free_port())
    if root:
        conf = conf.replace("[listener]\n", '[listener]\nuser = "nobody"\n', 1)
    with open(d.conf, "w") as f:
        f.write(conf)
    d.log_dir = log


def first_start(root):
    """Start with nested missing directories; root: as root with
    [listener] user nobody, else with no user (as scripts/quickstart)."""
    user = (nobody.pw_uid, nobody.pw_gid) if root else (os.geteuid(),
                                                         os.getegid())
    how = "user nobody" if root else "no user"
    d = Oobd(domains=DOMAINS)
    try:
        os.chmod(d.tmp, 0o755)
        state = os.path.join(d.tmp, "a", "b", "state")
        log = os.path.join(d.tmp, "c", "d", "e", "log")
        spool = os.path.join(d.tmp, "f", "spool")
        with_dirs(d, state, log, spool, root)
        d.start()
        deadline = time.time() + 30
        while "event=ready" not in d.stderr_text() and time.time() < deadline:
            time.sleep(0.05)
        check("%s: ready at the first start" % how, True,
              "event=ready" in d.stderr_text())
        for name, path in (("state_dir", state), ("log_dir", log),
                           ("spool_dir", spool)):
            st = os.stat(path)
            check("%s: %s created, the user's, 0750" % (how, name),
                  (user, 0o750), ((st.st_uid, st.st_gid), st.st_mode & 0o7777))
        for parent in ("a", "a/b", "c", "c/d", "c/d/e", "f"):
            st = os.stat(os.path.join(d.tmp, parent))
            check("%s: parent %s created, 0755" % (how, parent),
                  ((os.geteuid(), os.getegid()), 0o755),
                  ((st.st_uid, st.st_gid), st.st_mode & 0o7777))
        with open(os.path.join(state, "nodeid")) as f:
            nodeid = f.read().strip()
        check("%s: node id written" % how, True,
              re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}",
                           nodeid) is not None)
        r = send_message(d.port, "", ["bounce@bounce.example.com"], SAMPLE)
        check("%s: bounce accepted" % how, True,
              r[5].startswith("250 2.0.0 OK ids="))
        recs = d.wait_records(lambda rs: len(rs) >= 2)
        check("%s: records" % how, ["Reception", "OOB"],
              [x["type"] for x in recs])
        oob = recs[-1] if recs else {}
        check("%s: OOB record" % how, {
            "type": "OOB", "sender": "bounce@bounce.example.com",
            "recipient": "nobody@example.net", "queue": "bounce.example.com",
            "response": {"code": 550, "enhanced_code": {"class": 5,
                                                         "subject": 1,
                                                         "detail": 1},
                         "content": "5.1.1 <nobody@example.net>: Recipient "
                         "address rejected: User unknown in virtual mailbox "
                         "table", "command": None},
            "bounce_classification": "InvalidRecipient", "nodeid": nodeid},
            {k: oob.get(k) for k in ("type", "sender", "recipient", "queue",
                                     "response", "bounce_classification",
                                     "nodeid")})
        segs = [n for n in os.listdir(log) if not n.startswith(".")]
        check("%s: segment written by the user" % how, [user[0]],
              [os.stat(os.path.join(log, n)).st_uid for n in segs])
        check("%s: exit 0" % how, 0, d.stop())
        check("%s: no error logged" % how, [],
              [x for x in d.stderr_text().splitlines() if "level=error" in x])
    except Exception as e:
        not_ok("first start, " + how, repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()


if os.geteuid() == 0:
    first_start(True)
first_start(False)

# A state_dir that cannot be created (its parent is a file): exit 1 before
# any listener is bound, the error names the directory.
d = Oobd(domains=DOMAINS)
try:
    os.chmod(d.tmp, 0o755)
    blocker = os.path.join(d.tmp, "file")
    open(blocker, "w").close()
    state = os.path.join(blocker, "state")
    with_dirs(d, state, os.path.join(d.tmp, "log"),
              os.path.join(d.tmp, "spool"), os.geteuid() == 0)
    p = subprocess.run([OOBD, "-c", d.conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    err = p.stderr.decode()
    check("uncreatable state_dir: exit 1", 1, p.returncode)
    check("uncreatable state_dir: the error",
          ["oobd: %s: cannot create the directory %s: Not a directory"
           % (state, state)],
          [x for x in err.splitlines() if x.startswith("oobd: ")])
    check("uncreatable state_dir: nothing listened", [],
          [x for x in err.splitlines() if "listening" in x])
except Exception as e:
    not_ok("uncreatable state_dir", repr(e))
finally:
    d.cleanup()

finish()
