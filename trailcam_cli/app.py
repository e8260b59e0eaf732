"""``trailcam app``: serve the Gradio app on 127.0.0.1 (a port option; share off; auth opt-in)."""
from __future__ import annotations

import argparse
import os
import sys

from trailcam_core.base import TrailcamError


def register(subparsers) -> None:
    p = subparsers.add_parser("app", help="Open the tabbed web app (Gradio) on this machine",
                              description="Serve the trailcam web app. Binds 127.0.0.1 unless --host says "
                              "otherwise; nothing is shared publicly unless --share is given.")
    p.add_argument("--host", default="127.0.0.1", help="Interface to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=7860, help="Port (default: 7860; 0 picks a free one)")
    p.add_argument("--workdir", default=None,
                   help="Work folder for every output; the only folder the app serves (default: ./trailcam-work)")
    p.add_argument("--no-sample", dest="sample", action="store_false",
                   help="Do not load the bundled synthetic sample at start")
    p.add_argument("--auth", default=None, metavar="USER:PASSWORD",
                   help="Require this login (or set TRAILCAM_APP_AUTH=user:password); off by default")
    p.add_argument("--share", action="store_true",
                   help="Also open a public gradio.live link (off by default; needs internet)")
    p.set_defaults(func=run)


def parse_auth(text: str | None):
    """'user:password' -> (user, password); None -> None."""
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise TrailcamError("--auth expects USER:PASSWORD")
    return (user, password)


def run(args: argparse.Namespace) -> int:
    from gradio_app.app import launch

    auth = parse_auth(args.auth or os.environ.get("TRAILCAM_APP_AUTH"))
    if args.host not in ("127.0.0.1", "localhost", "::1") and auth is None:
        print(f"trailcam app: warning: serving on {args.host} without --auth; anyone on the network can use it",
              file=sys.stderr)
    launch(host=args.host, port=args.port or None, share=args.share, auth=auth, workdir=args.workdir,
           sample=args.sample)
    return 0
