"""local/'s backend child exits as soon as its parent closes its stdin, even while the parent still holds
keep-alive connections to it (every boto3 client's pool does): it used to keep serving them until the
parent gave up waiting and killed it, which made every stop of local/ take 5 s."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys

from support import ROOT


def test_the_backend_exits_when_its_stdin_closes_though_a_client_keeps_a_connection_open() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, "-m", "local", "backend", "--fd", str(listener.fileno())],
        pass_fds=[listener.fileno()],
        stdin=subprocess.PIPE,
        cwd=ROOT,
    )
    listener.close()
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        client.request("GET", "/")  # any answer: the point is a kept-alive connection
        client.getresponse().read()
        assert child.stdin is not None
        child.stdin.close()
        # Before the fix it never exited while this connection stayed open (the parent killed it).
        assert child.wait(timeout=30) == 0
    finally:
        client.close()
        if child.poll() is None:
            child.kill()
            child.wait()
