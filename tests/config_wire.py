# SPDX-License-Identifier: Apache-2.0
"""Configuration values sent to SMTP peers: a banner with CR LF in it
stops the daemon at start (it would add a reply of its own); a banner
without is the greeting's one line, and nothing follows it."""

import socket

from oobdtest import Client, Oobd, check, finish, not_ok

d = Oobd(listener={"banner": '"ok\\r\\n250 injected"'})
try:
    try:
        d.start(timeout=10)
        started = True
    except RuntimeError:
        started = False
    check("banner with CR LF: the daemon does not start", False, started)
    check("banner with CR LF: the error names the key", True,
          "[listener] banner: control character (0x0d) not allowed: the "
          "value is sent to SMTP peers" in d.stderr_text())
except Exception as e:
    not_ok("config_wire injected banner harness", repr(e))
finally:
    d.cleanup()

d = Oobd(listener={"banner": '"ESMTP ready; 250 is not a reply here"'})
try:
    d.start()
    c = Client(d.port)
    c.sock.settimeout(1)
    got = b""
    try:
        while True:
            chunk = c.sock.recv(4096)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        pass
    check("the greeting is one line, and nothing follows",
          b"220 mx.test.example ESMTP ready; 250 is not a reply here\r\n", got)
    c.close()
    check("daemon exit status", 0, d.stop())
except Exception as e:
    not_ok("config_wire greeting harness", repr(e) + "\n" + d.stderr_text())
finally:
    d.cleanup()
finish()
