# SPDX-License-Identifier: Apache-2.0
"""No open relay: the 16 MAIL/RCPT combinations of nmap's smtp-open-relay
script, with the server's own name and address, against listener-domain
configurations that log, relay to a configured domain, or name the
server itself; and the address tricks (%, !, quoted local parts, source
routes) for configured domains (smtp-robustness §10 items 32-33)."""

from oobdtest import Client, Oobd, check, finish, not_ok

DOMAIN = "nmap.scanme.org"      # nmap's default test domain
FROM, TO, IP = "antispam", "relaytest", "127.0.0.1"
SRV = "mx.test.example"         # what nmap reads from the greeting


def nmap_tests():
    d, f, t, ip, srv = DOMAIN, FROM, TO, IP, SRV
    return [
        ("", "%s@%s" % (t, d)),
        ("%s@%s" % (f, d), "%s@%s" % (t, d)),
        ("%s@%s" % (f, srv), "%s@%s" % (t, d)),
        ("%s@[%s]" % (f, ip), "%s@%s" % (t, d)),
        ("%s@[%s]" % (f, ip), "%s%%%s@[%s]" % (t, d, ip)),
        ("%s@[%s]" % (f, ip), "%s%%%s@%s" % (t, d, srv)),
        ("%s@[%s]" % (f, ip), "\"%s@%s\"" % (t, d)),
        ("%s@[%s]" % (f, ip), "\"%s%%%s\"" % (t, d)),
        ("%s@[%s]" % (f, ip), "%s@%s@[%s]" % (t, d, ip)),
        ("%s@[%s]" % (f, ip), "\"%s@%s\"@[%s]" % (t, d, ip)),
        ("%s@[%s]" % (f, ip), "%s@%s@%s" % (t, d, srv)),
        ("%s@[%s]" % (f, ip), "@[%s]:%s@%s" % (ip, t, d)),
        ("%s@[%s]" % (f, ip), "@%s:%s@%s" % (srv, t, d)),
        ("%s@[%s]" % (f, ip), "%s!%s" % (d, t)),
        ("%s@[%s]" % (f, ip), "%s!%s@[%s]" % (d, t, ip)),
        ("%s@[%s]" % (f, ip), "%s!%s@%s" % (d, t, srv)),
    ]


DENIED = "550 5.7.1 relaying not permitted for 127.0.0.1:%d"
ROUTING = "553 5.1.3 Address with a routing local part not accepted"
NODOMAIN = "501 5.1.3 Address must have a domain"
SYNTAX = "501 5.1.3 Syntax error in address"
# The reply to each nmap RCPT, in order; DENIED is per connection.
EXPECTED = [DENIED, DENIED, DENIED, DENIED, ROUTING, ROUTING, NODOMAIN,
            NODOMAIN, SYNTAX, ROUTING, SYNTAX, DENIED, DENIED, NODOMAIN,
            ROUTING, ROUTING]

CONFIGS = [
    ("log-only domain", """
["bounce.example.com"]
log_oob = "LogThenDrop"
log_arf = "LogThenDrop"
"""),
    ("the server's own name is a relay_to domain", """
["mx.test.example"]
relay_to = true
log_oob = "LogThenRelay"
relay_host = "[192.0.2.1]:25"
["bounce.example.com"]
log_oob = "LogThenDrop"
"""),
    ("relay_from for another domain", """
["partner.example"]
relay_from = ["192.0.2.0/24"]
["bounce.example.com"]
log_oob = "LogThenDrop"
"""),
]

for name, domains in CONFIGS:
    d = Oobd(domains=domains, listener={"max_errors": "100"})
    try:
        d.start()
        c = Client(d.port)
        greeting = c.line()
        c.send("EHLO %s\r\n" % DOMAIN)
        c.reply()
        port = c.sock.getsockname()[1]
        mails, rcpts = [], []
        for sender, rcpt in nmap_tests():
            c.cmd("RSET")
            mails.append(c.cmd("MAIL FROM:<%s>" % sender))
            rcpts.append(c.cmd("RCPT TO:<%s>" % rcpt))
        check("%s: greeting names the server" % name,
              "220 %s ESMTP oobd" % SRV, greeting)
        check("%s: all 16 MAIL commands accepted" % name,
              ["250 2.1.0 Ok"] * 16, mails)
        check("%s: the 16 nmap RCPT replies" % name,
              [e % port if "%d" in e else e for e in EXPECTED], rcpts)
        check("%s: no RCPT accepted (nmap: not an open relay)" % name, [],
              [r for r in rcpts if r.startswith("2")])

        # Routing tricks for configured domains are refused too.
        c.cmd("RSET")
        c.cmd("MAIL FROM:<>")
        tricks = ["user%%elsewhere.example@%s" % dom for dom in
                  ("bounce.example.com", SRV)]
        tricks += ["elsewhere.example!user@bounce.example.com",
                   "\"user@elsewhere.example\"@bounce.example.com",
                   "\"user%elsewhere.example\"@bounce.example.com",
                   "\"elsewhere.example!user\"@bounce.example.com"]
        check("%s: routing local parts for configured domains" % name,
              [ROUTING] * len(tricks),
              [c.cmd("RCPT TO:<%s>" % t) for t in tricks])
        check("%s: a source route to a configured domain is ignored" % name,
              "250 2.1.5 Ok",
              c.cmd("RCPT TO:<@elsewhere.example:user@bounce.example.com>"))
        check("%s: a source route to another domain is ignored" % name,
              DENIED % port,
              c.cmd("RCPT TO:<@bounce.example.com:user@elsewhere.example>"))
        c.cmd("QUIT")
        c.close()
        recs = d.wait_records(lambda r: sum(x["type"] == "Rejection"
                                            for x in r) >= 23)
        rej = [(r["response"]["code"], r["response"]["command"])
               for r in recs if r["type"] == "Rejection"]
        # Rejection records are written asynchronously: compare as sets.
        check("%s: each refused RCPT has its Rejection record" % name,
              sorted([(int(e[:3]), "RCPT TO:<%s>" % t) for e, (_, t) in
                      zip(EXPECTED, nmap_tests())] +
                     [(553, "RCPT TO:<%s>" % t) for t in tricks] +
                     [(550, "RCPT TO:<@bounce.example.com:"
                       "user@elsewhere.example>")]),
              sorted(rej))
        check("%s: daemon exit status" % name, 0, d.stop())
    except Exception as e:
        not_ok("%s harness" % name, repr(e) + "\n" + d.stderr_text())
    finally:
        d.cleanup()
finish()
