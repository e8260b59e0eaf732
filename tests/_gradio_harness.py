"""One real trailcam app per test process, on a free 127.0.0.1 port, shared by tests/test_gradio_*.py.

The server runs in a thread of the test process (``prevent_thread_lock``); its work folder is a
temporary folder; it is closed when the process exits.
"""
from __future__ import annotations

import atexit
import shutil
import socket
import tempfile
import threading
from pathlib import Path

_LOCK = threading.Lock()
_SERVER: dict = {}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_server() -> dict:
    """{'url', 'demo', 'ctx', 'workdir'} of the shared app, started on first use."""
    with _LOCK:
        if _SERVER:
            return _SERVER
        from gradio_app.app import build_app, launch

        workdir = Path(tempfile.mkdtemp(prefix="trailcam-app-"))
        demo = build_app(sample=True, workdir=workdir)
        port = free_port()
        _app, url, _share = launch(port=port, demo=demo, prevent_thread_lock=True, quiet=True)
        _SERVER.update(url=url.rstrip("/") + "/", demo=demo, ctx=demo.trailcam_context, workdir=workdir, port=port)

        def _close():
            try:
                demo.close()
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

        atexit.register(_close)
        return _SERVER


_CLIENT: dict = {}


def get_client():
    """A gradio_client.Client on the shared app (one session; jobs and their Stop share it)."""
    if "c" not in _CLIENT:
        from gradio_client import Client

        server = get_server()
        with _LOCK:
            _CLIENT.setdefault("c", Client(server["url"], verbose=False, download_files=False))
    return _CLIENT["c"]
