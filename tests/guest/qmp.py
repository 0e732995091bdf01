# SPDX-License-Identifier: GPL-2.0-or-later
"""A minimal QMP client (standard library only) for the guest test."""
import json
import socket
import time


class QMP:
    """One QMP connection over a Unix socket, capabilities negotiated."""

    def __init__(self, path, timeout=60.0):
        # QEMU creates the socket shortly after it starts: retry until then.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(timeout)
        self.reader = self.sock.makefile("rb")
        self.events = []
        greeting = self._receive()
        if "QMP" not in greeting:
            raise RuntimeError(f"not a QMP greeting: {greeting}")
        reply = self.command("qmp_capabilities")
        if "return" not in reply:
            raise RuntimeError(f"qmp_capabilities: {reply}")

    def _receive(self):
        line = self.reader.readline()
        if not line:
            raise EOFError("QMP connection closed")
        return json.loads(line)

    def command(self, name, **arguments):
        """Run a command; returns its reply ({"return": ...} or {"error": ...}).

        Events that arrive meanwhile are kept in self.events.
        """
        request = {"execute": name}
        if arguments:
            request["arguments"] = arguments
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            message = self._receive()
            if "event" in message:
                self.events.append(message)
            else:
                return message

    def close(self):
        self.reader.close()
        self.sock.close()
