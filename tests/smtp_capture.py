# SPDX-License-Identifier: Apache-2.0
"""smtp_capture.py - a minimal SMTP server for tests: it accepts every
message and writes each one's DATA to OUTDIR/msg-N.eml exactly as received
(dot-stuffing undone, CRLF line ends kept), with the envelope beside it in
OUTDIR/msg-N.env ("MAIL FROM" line, then one "RCPT TO" line per recipient).

usage: smtp_capture.py OUTDIR PORTFILE [LIFETIME]

It listens on 127.0.0.1 on a port chosen by the kernel, writes that port to
PORTFILE once it is listening, and exits after LIFETIME seconds (default 120)
so that it never outlives a test that forgot it. Standard library only.
"""
import asyncio
import os
import sys

MAX_LINE = 1 << 20
MAX_DATA = 64 << 20


class Capture:
    def __init__(self, outdir):
        self.outdir = outdir
        self.count = 0

    def save(self, sender, rcpts, data):
        self.count += 1
        base = os.path.join(self.outdir, "msg-%d" % self.count)
        # Write under a temporary name and rename, so a watcher never sees a
        # partial file; the envelope goes first, the message last.
        for suffix, body in ((".env", self.envelope(sender, rcpts)),
                             (".eml", data)):
            tmp = base + suffix + ".tmp"
            with open(tmp, "wb") as f:
                f.write(body)
            os.rename(tmp, base + suffix)

    @staticmethod
    def envelope(sender, rcpts):
        lines = [b"MAIL FROM " + sender] + [b"RCPT TO " + r for r in rcpts]
        return b"\n".join(lines) + b"\n"

    async def session(self, reader, writer):
        def reply(text):
            writer.write(text.encode() + b"\r\n")

        sender, rcpts = None, []
        try:
            reply("220 capture.test ESMTP test capture")
            await writer.drain()
            while True:
                line = await reader.readline()
                if not line:
                    break
                if len(line) > MAX_LINE:
                    reply("500 5.5.2 line too long")
                    break
                cmd = line.rstrip(b"\r\n")
                verb = cmd[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    if verb == b"EHLO":
                        reply("250-capture.test")
                        reply("250 8BITMIME")
                    else:
                        reply("250 capture.test")
                elif verb == b"MAIL":
                    sender, rcpts = path_of(cmd), []
                    reply("250 2.1.0 ok")
                elif verb == b"RCPT":
                    if sender is None:
                        reply("503 5.5.1 MAIL first")
                    else:
                        rcpts.append(path_of(cmd))
                        reply("250 2.1.5 ok")
                elif verb == b"DATA":
                    if not rcpts:
                        reply("503 5.5.1 RCPT first")
                        await writer.drain()
                        continue
                    reply("354 go ahead")
                    await writer.drain()
                    data = await read_data(reader)
                    if data is None:
                        break
                    self.save(sender, rcpts, data)
                    reply("250 2.0.0 captured as msg-%d" % self.count)
                    sender, rcpts = None, []
                elif verb == b"RSET":
                    sender, rcpts = None, []
                    reply("250 2.0.0 ok")
                elif verb == b"NOOP":
                    reply("250 2.0.0 ok")
                elif verb == b"QUIT":
                    reply("221 2.0.0 bye")
                    await writer.drain()
                    break
                else:
                    reply("502 5.5.2 not implemented")
                await writer.drain()
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def path_of(cmd):
    """The address of "MAIL FROM:<a>" / "RCPT TO:<a>", brackets removed."""
    arg = cmd.split(b":", 1)[1] if b":" in cmd else b""
    arg = arg.strip()
    if arg.startswith(b"<"):
        arg = arg[1:arg.find(b">")] if b">" in arg else arg[1:]
    else:
        arg = arg.split(b" ", 1)[0]
    return arg


async def read_data(reader):
    """The message up to the lone ".", dot-stuffing undone; None on EOF."""
    out = bytearray()
    while True:
        line = await reader.readline()
        if not line:
            return None
        if line in (b".\r\n", b".\n"):
            return bytes(out)
        if line.startswith(b"."):
            line = line[1:]
        out += line
        if len(out) > MAX_DATA:
            return None


async def main():
    outdir, portfile = sys.argv[1], sys.argv[2]
    lifetime = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
    cap = Capture(outdir)
    server = await asyncio.start_server(cap.session, "127.0.0.1", 0,
                                        limit=MAX_LINE + 2)
    port = server.sockets[0].getsockname()[1]
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, portfile)
    async with server:
        try:
            await asyncio.wait_for(server.serve_forever(), lifetime)
        except asyncio.TimeoutError:
            pass


if __name__ == "__main__":
    asyncio.run(main())
