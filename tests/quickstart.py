# SPDX-License-Identifier: Apache-2.0
"""scripts/quickstart as a new user runs it: on a free port, with
127.0.0.1:8025 already taken (the admin listener moves to a free port and
says which), and the commands it prints, pasted as printed (from the top
directory), work: swaks delivers the sample bounce with the null sender
and no warning, zstdcat | jq shows its records, curl reads the metrics.
Ctrl-C (SIGINT) stops it.

OOBD_BIN and OOBD_VAR point quickstart at the binary under test and a
temporary directory (the source tree may be read-only, as in distcheck)."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import shutil
import threading
import time

from oobdtest import OOBD, SRCDIR, check, finish, free_port, not_ok

top = os.path.abspath(SRCDIR)
tmp = tempfile.mkdtemp(prefix="oobd-quickstart-")
port = free_port()

# Something already listens on 8025 (when nothing else does, this test).
blocker = socket.socket()
try:
    blocker.bind(("127.0.0.1", 8025))
    blocker.listen(1)
except OSError:
    blocker.close()
    blocker = None

env = dict(os.environ, OOBD_BIN=os.path.abspath(OOBD),
           OOBD_VAR=os.path.join(tmp, "var"))
out_lines = []
proc = subprocess.Popen([os.path.join(top, "scripts", "quickstart"),
                         str(port)], cwd=top, env=env, stdout=subprocess.PIPE,
                        stderr=open(os.path.join(tmp, "stderr.log"), "wb"))
seen_end = threading.Event()


def reader():
    for raw in proc.stdout:
        out_lines.append(raw.decode().rstrip("\n"))
        if out_lines[-1] == "Stop with Ctrl-C.":
            seen_end.set()


threading.Thread(target=reader, daemon=True).start()


def stderr_text():
    with open(os.path.join(tmp, "stderr.log"), "rb") as f:
        return f.read().decode("utf-8", "replace")


def wait_stderr(text, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in stderr_text():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def commands():
    """The indented commands of the printed text: continuation lines
    ("\\" at the end) joined, as a shell reads them when pasted."""
    cmds, cur = [], ""
    for line in out_lines:
        if not cur and not line.startswith("  "):
            continue
        cur += line.strip()
        if cur.endswith("\\"):
            cur = cur[:-1].rstrip() + " "
            continue
        cmds.append(cur)
        cur = ""
    return cmds


def paste(cmd):
    return subprocess.run(["bash", "-c", cmd], cwd=top,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=120)


try:
    check("quickstart printed its instructions", True,
          seen_end.wait(300) and wait_stderr("event=ready"))
    text = "\n".join(out_lines)
    cmds = commands()
    swaks = [c for c in cmds if c.startswith("swaks ")]
    check("swaks command printed", ["swaks --server 127.0.0.1:%d --from "
                                    "'<>' --to bounce@bounce.example.com "
                                    "--data @tests/data/sample-dsn.eml"
                                    % port], swaks)
    metrics = [line.split("curl ", 1)[1] for line in out_lines
               if line.startswith("Metrics: curl ")]
    admin = metrics[0].split("/")[2] if metrics else ""
    check("metrics not on the busy 8025", True,
          admin.startswith("127.0.0.1:") and admin != "127.0.0.1:8025")
    check("the admin port printed in the first lines", True,
          "metrics on %s." % admin in text)

    r = paste(swaks[0]) if swaks else None
    transcript = r.stdout.decode() if r else ""
    check("swaks: exit 0", 0, r.returncode if r else None)
    check("swaks: no warning", "", r.stderr.decode() if r else None)
    check("swaks: null sender", True, " -> MAIL FROM:<>\n" in transcript)
    check("swaks: message accepted", True,
          "<-  250 2.0.0 OK ids=" in transcript)

    zcat = [c for c in cmds if c.startswith("zstdcat ")]
    check("zstdcat command printed",
          ["zstdcat %s/var/log/* 2>/dev/null | jq ." % tmp], zcat)
    recs = []
    deadline = time.time() + 30
    while zcat and time.time() < deadline:
        r = paste(zcat[0])
        dec, s, recs = json.JSONDecoder(), r.stdout.decode(), []
        i = 0
        while i < len(s):
            while i < len(s) and s[i].isspace():
                i += 1
            if i == len(s):
                break
            obj, i = dec.raw_decode(s, i)
            recs.append(obj)
        if len(recs) >= 2:
            break
        time.sleep(0.2)
    check("records read with the printed command", ["Reception", "OOB"],
          [x.get("type") for x in recs])
    oob = recs[1] if len(recs) > 1 else {}
    check("OOB record", {
        "type": "OOB", "sender": "bounce@bounce.example.com",
        "recipient": "nobody@example.net", "queue": "bounce.example.com",
        "bounce_classification": "InvalidRecipient",
        "response": {"code": 550, "enhanced_code": {"class": 5, "subject": 1,
                                                     "detail": 1},
                     "content": "5.1.1 <nobody@example.net>: Recipient "
                     "address rejected: User unknown in virtual mailbox "
                     "table", "command": None}},
        {k: oob.get(k) for k in ("type", "sender", "recipient", "queue",
                                 "bounce_classification", "response")})
    rec = recs[0] if recs else {}
    check("Reception record: the null sender", ("Reception", ""),
          (rec.get("type"), rec.get("sender")))

    r = paste("curl -fsS " + metrics[0]) if metrics else None
    body = r.stdout.decode() if r else ""
    check("metrics: one message accepted", True,
          'oobd_messages_total{result="accepted"} 1\n' in body)
except Exception as e:
    not_ok("quickstart", repr(e) + "\n" + "\n".join(out_lines) +
           stderr_text())
finally:
    # Ctrl-C: quickstart exec'ed oobd, so its PID is the daemon's.
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        rc = proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    check("Ctrl-C: exit 0", 0, rc)
    if blocker is not None:
        blocker.close()
    shutil.rmtree(tmp, ignore_errors=True)

finish()
