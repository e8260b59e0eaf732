"""The culling page's HTTP routes, served by the app's own server beside the Gradio tabs (one app,
one port, 127.0.0.1 unless told otherwise; the app's login, when set, guards these routes too).

Each route calls one method of :class:`trailcam_core.cull.CullSession`.  Nothing here reads a path
from the request: images are addressed by (collection key, row), so the page can reach only the
work folder's state and the images of a collection that was opened; a collection outside the work
folder is read, never written (its curation state lives below the work folder).

    GET  /cull/                      the page (static HTML + JS)
    POST /cull/api/open              {source, metadata?} -> key, total, facets, warnings
    POST /cull/api/query             {key, view, query} -> total, matched, counts (rows via /rows)
    POST /cull/api/counts            {key, query} -> the counts only (after an action; the view stays)
    GET  /cull/api/rows              ?key&view&offset&limit -> rows of the view
    GET  /cull/api/thumb/{key}/{row} thumbnail (a placeholder tile naming the problem when unreadable)
    GET  /cull/api/image/{key}/{row} the loupe's large image
    GET  /cull/api/item/{key}/{row}  tags, time, location, scores, burst
    POST /cull/api/act               {key, rows, action, value?, tag_key?} (saved at once)
    POST /cull/api/undo              {key}
    POST /cull/api/best              {key, row}: best of the burst
    POST /cull/api/map               {key, view}: the current filter as a similarity grid
    POST /cull/api/thumbs            {key}: build thumbnails in the background; GET .../thumbs/{key}: progress
"""
from __future__ import annotations

import html
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from trailcam_core.cull import CullOptions, CullSession, Query, run_query, ThumbnailError
from trailcam_core.base import TrailcamError

log = logging.getLogger("trailcam.app")

PAGE_DIR = Path(__file__).with_name("cull_page")
STATIC = {"cull.js": "text/javascript", "cull.css": "text/css", "index.html": "text/html"}
MAX_VIEWS = 64
MAX_PAGE = 2000


class CullRegistry:
    """Open sessions (one per collection) and the views (query results) of the pages showing them."""

    def __init__(self, workdir: Path, options: CullOptions | None = None):
        self.workdir = Path(workdir)
        self.options = options or CullOptions()
        self.sessions: dict[str, CullSession] = {}
        self.views: OrderedDict[str, tuple[str, Any, Query]] = OrderedDict()
        self.lock = threading.Lock()

    def open(self, source: str, metadata: str = "", features: str = "") -> tuple[str, CullSession]:
        from dataclasses import replace

        text = (source or "").strip()
        if not text:
            raise TrailcamError("collection is empty: type a folder of images or a CCT JSON")
        p = Path(text).expanduser()
        if not p.is_absolute():
            p = self.workdir / p
        if not p.exists():
            raise TrailcamError(f"collection not found: {p}")
        meta = (metadata or "").strip()
        if meta:
            m = Path(meta).expanduser()
            meta = str(m if m.is_absolute() else self.workdir / m)
            if not Path(meta).is_file():
                raise TrailcamError(f"CCT JSON not found: {meta}")
        opts = replace(self.options, metadata=meta, **({"features": features} if features else {}))
        key = f"{abs(hash((os.path.realpath(p), meta, opts.features))) % 10**12:012d}"
        with self.lock:
            s = self.sessions.get(key)
        if s is None:
            s = CullSession.open(p, self.workdir, opts)
            with self.lock:
                self.sessions[key] = s
        else:
            s.sync()
        return key, s

    def session(self, key: str) -> CullSession:
        s = self.sessions.get(str(key))
        if s is None:
            raise TrailcamError("this collection is not open (the server restarted?): open it again")
        return s

    def set_view(self, view: str, key: str, result, query: Query) -> None:
        with self.lock:
            self.views[str(view)] = (key, result, query)
            self.views.move_to_end(str(view))
            while len(self.views) > MAX_VIEWS:
                self.views.popitem(last=False)

    def view(self, view: str, key: str):
        v = self.views.get(str(view))
        if v is None or v[0] != key:
            raise TrailcamError("this view has expired: change a filter to refresh it")
        return v


def _facets(s: CullSession, result) -> dict:
    return {"counts": result.counts, "flags": result.flag_counts, "total": result.total, "matched": result.matched,
            "shown": int(len(result.rows))}


def _placeholder(reason: str) -> bytes:
    text = html.escape(reason[-90:])
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="256" height="192" viewBox="0 0 256 192">'
            f'<rect width="256" height="192" fill="#3a2424"/><text x="128" y="80" fill="#f2b8b8" font-size="40" '
            f'text-anchor="middle" font-family="sans-serif">⚠</text><text x="128" y="120" fill="#f2b8b8" '
            f'font-size="11" text-anchor="middle" font-family="sans-serif">cannot show this image</text>'
            f'<title>{text}</title></svg>').encode()


def mount(app, workdir: Path, options: CullOptions | None = None) -> CullRegistry:
    """Add the culling page and its API to the app's FastAPI server (``demo.app`` after launch)."""
    reg = CullRegistry(workdir, options)

    async def login_check(request: Request) -> None:
        if getattr(app, "auth", None) is None and getattr(app, "auth_dependency", None) is None:
            return
        if app.auth_dependency is not None:
            user = app.auth_dependency(request)
        else:
            token = (request.cookies.get(f"access-token-{app.cookie_id}")
                     or request.cookies.get(f"access-token-unsecure-{app.cookie_id}"))
            user = app.tokens.get(token)
        if user is None:
            raise HTTPException(status_code=401, detail="Not authenticated: log in to the app first")

    router = APIRouter(prefix="/cull", dependencies=[Depends(login_check)])

    def guard(fn):
        import functools
        import inspect

        @functools.wraps(fn)
        async def wrapper(*args, **kw):
            try:
                if inspect.iscoroutinefunction(fn):
                    return await fn(*args, **kw)
                return await run_in_threadpool(fn, *args, **kw)    # decoding never blocks the event loop
            except (TrailcamError, ThumbnailError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            except Exception as exc:               # never a stack trace in the page
                log.exception("culling page error")
                return JSONResponse({"error": f"Unexpected {type(exc).__name__}: {exc} (details in the server log)"},
                                    status_code=500)
        return wrapper

    @router.get("/")
    def page():
        return Response((PAGE_DIR / "index.html").read_bytes(), media_type="text/html",
                        headers={"Cache-Control": "no-cache"})

    @router.get("/static/{name}")
    def static(name: str):
        if name not in STATIC:
            raise HTTPException(status_code=404, detail="not found")
        return Response((PAGE_DIR / name).read_bytes(), media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    async def body(request: Request) -> dict:
        try:
            data = await request.json()
        except ValueError:
            raise TrailcamError("the request is not JSON") from None
        if not isinstance(data, dict):
            raise TrailcamError("the request must be a JSON object")
        return data

    @router.post("/api/open")
    @guard
    async def open_(request: Request):
        d = await body(request)
        key, s = await run_in_threadpool(reg.open, str(d.get("source", "")), str(d.get("metadata") or ""),
                                         str(d.get("features") or ""))
        col = s.col
        return {"key": key, "total": len(col), "source": str(col.source), "kind": col.kind,
                "state": str(col.project.state_path), "warnings": col.warnings[-20:],
                "values": {f: sorted(map(str, col.df[f].cat.categories)) for f in ("species", "time_of_day",
                           "artifact", "info_bar", "location", "camera")},
                "dates": [str(col.df["datetime"].min())[:10], str(col.df["datetime"].max())[:10]],
                "thumbs": _job(s)}

    @router.post("/api/query")
    @guard
    async def query(request: Request):
        d = await body(request)
        key = str(d.get("key", ""))
        s = reg.session(key)
        q = Query.from_dict(d.get("query") or {})

        def work():
            s.sync()
            sims = s.similarity(q.similar_to) if q.sort == "similar" else None
            with s.lock:
                return run_query(s.col, q, sims)

        result = await run_in_threadpool(work)
        reg.set_view(str(d.get("view", "")), key, result, q)
        return _facets(s, result)

    @router.post("/api/counts")
    @guard
    async def counts(request: Request):
        """The sidebar's counts for a query, without replacing the view the grid is showing."""
        d = await body(request)
        s = reg.session(str(d.get("key", "")))
        q = Query.from_dict({**(d.get("query") or {}), "sort": "file", "similar_to": None})

        def work():
            with s.lock:
                return run_query(s.col, q)

        return _facets(s, await run_in_threadpool(work))

    @router.get("/api/rows")
    @guard
    def rows(key: str, view: str, offset: int = 0, limit: int = 200):
        s = reg.session(key)
        _, result, _q = reg.view(view, key)
        limit = max(1, min(int(limit), MAX_PAGE))
        offset = max(0, int(offset))
        sel = result.rows[offset:offset + limit]
        df = s.col.df
        failed = s.job.failed
        ids = df["id"].to_numpy()[sel]
        problems = df["problem"].to_numpy()[sel]
        return {"offset": offset, "rows": sel.tolist(), "ids": ids.tolist(),
                "fav": df["favorite"].to_numpy()[sel].astype(int).tolist(),
                "rej": df["reject"].to_numpy()[sel].astype(int).tolist(),
                "stars": df["stars"].to_numpy()[sel].astype(int).tolist(),
                "burst": df["burst"].to_numpy()[sel].tolist(),
                "size": result.burst_size[offset:offset + limit].tolist(),
                "species": df["species"].astype(str).to_numpy()[sel].tolist(),
                "problem": [p or failed.get(i, "") for p, i in zip(problems, ids)]}

    @router.get("/api/thumb/{key}/{row}")
    @guard
    def thumb(key: str, row: int):
        s = reg.session(key)
        if not 0 <= row < len(s.col):
            raise TrailcamError(f"row {row} is outside the collection")
        try:
            data = s.thumbnail(row)
        except ThumbnailError as exc:
            return Response(_placeholder(str(exc)), media_type="image/svg+xml",
                            headers={"X-Trailcam-Problem": str(exc)[-200:].encode("ascii", "replace").decode(),
                                     "Cache-Control": "no-cache"})
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @router.get("/api/image/{key}/{row}")
    @guard
    def image(key: str, row: int, side: int = 1600):
        s = reg.session(key)
        if not 0 <= row < len(s.col):
            raise TrailcamError(f"row {row} is outside the collection")
        return Response(s.preview(row, max(256, min(int(side), 4096))), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=600"})

    @router.get("/api/item/{key}/{row}")
    @guard
    def item(key: str, row: int):
        return reg.session(key).details(row)

    def ids_of(s: CullSession, rows) -> list[str]:
        if not isinstance(rows, list) or not rows:
            raise TrailcamError("no image selected")
        r = np.asarray(rows, dtype=np.int64)
        if (r < 0).any() or (r >= len(s.col)).any():
            raise TrailcamError("a selected row is outside the collection")
        return s.col.df["id"].to_numpy()[r].tolist()

    @router.post("/api/act")
    @guard
    async def act(request: Request):
        d = await body(request)
        s = reg.session(str(d.get("key", "")))
        client = str(d.get("client", ""))
        states = await run_in_threadpool(s.act, ids_of(s, d.get("rows")), str(d.get("action", "")), d.get("value"),
                                         d.get("tag_key"), client)
        return {"states": states, "undo": s.undo_depth(client)}

    @router.post("/api/undo")
    @guard
    async def undo(request: Request):
        d = await body(request)
        s = reg.session(str(d.get("key", "")))
        client = str(d.get("client", ""))
        out = await run_in_threadpool(s.undo, client)
        out["undo"] = s.undo_depth(client)
        return out

    @router.post("/api/best")
    @guard
    async def best(request: Request):
        d = await body(request)
        s = reg.session(str(d.get("key", "")))
        client = str(d.get("client", ""))
        out = await run_in_threadpool(s.best_of_burst, int(d.get("row", -1)), bool(d.get("reject_rest", True)), client)
        out["undo"] = s.undo_depth(client)
        return out

    @router.post("/api/map")
    @guard
    async def map_(request: Request):
        d = await body(request)
        key = str(d.get("key", ""))
        s = reg.session(key)
        _, result, _q = reg.view(str(d.get("view", "")), key)
        return await run_in_threadpool(s.map_layout, result.rows)

    def _job(s: CullSession) -> dict:
        j = s.job
        return {"done": j.done, "total": j.total, "running": j.running, "failed": len(j.failed),
                "problems": [[k, v] for k, v in list(j.failed.items())[:50]], "seconds": round(j.seconds, 2)}

    @router.post("/api/thumbs")
    @guard
    async def thumbs(request: Request):
        d = await body(request)
        s = reg.session(str(d.get("key", "")))
        if not s.job.running:
            s.start_thumbnails()
        return _job(s)

    @router.get("/api/thumbs/{key}")
    @guard
    def thumbs_progress(key: str):
        return _job(reg.session(key))

    app.include_router(router)
    # Gradio's own routes were added first; ours go in front so nothing of theirs shadows /cull
    routes = app.router.routes
    ours = [r for r in routes if getattr(r, "path", "").startswith("/cull")]
    app.router.routes[:] = ours + [r for r in routes if r not in ours]
    app.state.trailcam_cull = reg
    return reg
