"""One open culling session: actions (flags, stars, tags) saved at once through the curation state,
undo, "best of the burst", "more like this", the map of the current filter, thumbnails in the
background.  The faces call one method per user action.

Every action is saved before it returns (``Project.save``: atomic, under the state's lock, merged
with what any other program saved meanwhile, so no face loses another's edits).  An action records
the previous values of what it touched, so :meth:`CullSession.undo` puts them back (saved too).

    s = CullSession.open("crops/", workdir="work")
    s.act(["a1"], "favorite")          # P
    s.act(["a1", "a2"], "stars", 4)    # 4
    s.undo()
"""
from __future__ import annotations

import copy
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from trailcam_core.base import ensure, ImageRecord, ProgressCallback, TrailcamError
from trailcam_core.cull.collection import CullOptions, Collection, open_collection
from trailcam_core.cull.thumbs import ThumbnailCache, ThumbnailError

ACTIONS = ("favorite", "reject", "unflag", "stars", "tag", "untag")
UNDO_DEPTH = 200
THUMBS_DIR = ".trailcam-thumbs"
EMBED_DIR = ".trailcam-embed-cache"


@dataclass
class ThumbJob:
    """Progress of the background thumbnail build."""

    done: int = 0
    total: int = 0
    running: bool = False
    failed: dict[str, str] = field(default_factory=dict)     # image id -> reason
    seconds: float = 0.0


class CullSession:
    """A collection open for culling (see the module doc). Thread-safe: one lock per session."""

    def __init__(self, collection: Collection, workdir: Path, options: CullOptions):
        self.col = collection
        self.workdir = Path(workdir)
        self.options = options
        self.lock = threading.RLock()
        # one undo history per client (each open page), so two pages never undo each other's edits
        self.undo_stacks: dict[str, list[tuple[str, dict[str, dict]]]] = {}
        self.thumbs = ThumbnailCache(self.workdir / THUMBS_DIR, options.thumb_size)
        self.job = ThumbJob()
        self._stop = threading.Event()
        self._vectors: Optional[tuple[np.ndarray, np.ndarray]] = None     # (rows, unit vectors)

    @classmethod
    def open(cls, source: str | os.PathLike, workdir: str | os.PathLike, options: Optional[CullOptions] = None,
             image_root: Optional[str | os.PathLike] = None) -> "CullSession":
        options = options or CullOptions()
        return cls(open_collection(source, workdir, options, image_root), Path(workdir), options)

    # ------------------------------------------------------------------------------ actions
    def _entry(self, image_id: str) -> dict:
        images = self.col.project.images
        if image_id not in images:
            n = self.col.rows([image_id])[0]
            self.col.project.add_record(ImageRecord(image_id=image_id, path=Path(self.col.df.at[n, "path"])))
        return images[image_id]

    def sync(self) -> bool:
        """Pick up what another program saved since; True when the table changed."""
        with self.lock:
            if not self.col.project.changed_on_disk():
                return False
            from trailcam_core.tags import Project

            self.col.project = Project.open(self.col.project.root)
            self.col.warnings += self.col.project.warnings
            self.col.refresh_flags()
            return True

    @property
    def undo_stack(self) -> list:
        """The undo history of the default client (Python callers)."""
        return self.undo_stacks.setdefault("", [])

    def undo_depth(self, client: str = "") -> int:
        return len(self.undo_stacks.get(client, []))

    def _remember(self, client: str, action: str, before: dict) -> None:
        stack = self.undo_stacks.setdefault(client, [])
        stack.append((action, before))
        del stack[:-UNDO_DEPTH]

    def act(self, ids: Sequence[str], action: str, value: Any = None, key: Optional[str] = None,
            client: str = "") -> list[dict]:
        """Apply one action to images and save -> their new states ([{id, favorite, reject, stars}]).

        ``favorite`` / ``reject`` (P / X), ``unflag`` (U), ``stars`` with value 0-5, ``tag`` with
        ``key`` and ``value`` (a hand edit), ``untag`` with ``key``.
        """
        if action not in ACTIONS:
            raise TrailcamError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
        ids = list(dict.fromkeys(str(i) for i in ids))
        if not ids:
            raise TrailcamError("no image selected")
        if action in ("tag", "untag") and not key:
            raise TrailcamError("a tag edit needs a key (e.g. species)")
        if action == "tag" and (value is None or str(value).strip() == ""):
            raise TrailcamError(f"tag {key!r} needs a value")
        with self.lock:
            self.col.rows(ids)                                  # every id must be in the collection
            project = self.col.project
            before = {i: copy.deepcopy(self._entry(i)) for i in ids}
            if action == "favorite":
                project.set_favorite(ids, True)
            elif action == "reject":
                project.set_reject(ids, True)
            elif action == "unflag":
                project.set_favorite(ids, False)
                project.set_reject(ids, False)
            elif action == "stars":
                try:
                    stars = int(value)
                except (TypeError, ValueError):
                    raise TrailcamError(f"stars must be 0 to 5, got {value!r}") from None
                project.set_stars(ids, stars)
            elif action == "tag":
                for i in ids:
                    project.set_tag(i, key, str(value).strip())
            else:
                for i in ids:
                    project.remove_tag(i, key)
            self._save(ids)
            self._remember(client, action, before)
            return self.states(ids)

    def _save(self, ids: Sequence[str]) -> None:
        merged = self.col.project.changed_on_disk()
        self.col.project.save()
        self.col.refresh_flags(None if merged else ids)

    def undo(self, client: str = "") -> dict:
        """Put back what ``client``'s last action changed (saved) -> {action, states}; error when nothing to undo."""
        with self.lock:
            stack = self.undo_stacks.get(client)
            if not stack:
                raise TrailcamError("nothing to undo")
            action, before = stack.pop()
            project = self.col.project
            for i, old in before.items():
                e = project.images.setdefault(i, copy.deepcopy(old))
                for k in ("favorite", "reject"):
                    e[k] = bool(old.get(k))
                e["stars"] = int(old.get("stars", 0) or 0)
                old_tags, tags = old.get("tags", {}), e.setdefault("tags", {})
                for k in set(old_tags) | set(tags):
                    if k in old_tags:
                        tags[k] = copy.deepcopy(old_tags[k])
                    else:
                        tags.pop(k, None)
            self._save(list(before))
            return {"action": action, "states": self.states(list(before))}

    def states(self, ids: Sequence[str]) -> list[dict]:
        df = self.col.df
        out = []
        for i, n in zip(ids, self.col.rows(ids)):
            out.append({"id": i, "row": int(n), "favorite": bool(df.at[n, "favorite"]),
                        "reject": bool(df.at[n, "reject"]), "stars": int(df.at[n, "stars"])})
        return out

    # ------------------------------------------------------------------------------ bursts
    def burst_rows(self, row: int) -> np.ndarray:
        """Rows of the burst of ``row``, in frame order."""
        df = self.col.df
        b = df["burst"].to_numpy()
        rows = np.flatnonzero(b == b[int(row)])
        return rows[np.argsort(df["frame"].to_numpy()[rows], kind="stable")]

    def best_of_burst(self, row: int, reject_rest: bool = True, client: str = "") -> dict:
        """Favourite the best frame of ``row``'s burst (one undo step); reject its unflagged others.

        Best = most stars, then a favourite already, then the lowest glitch score, then the
        sharpest thumbnail (mean absolute Laplacian), then the first frame.
        """
        with self.lock:
            rows = self.burst_rows(row)
            df = self.col.df
            ok = df["problem"].to_numpy()[rows] == ""
            if not ok.any():
                raise TrailcamError("no frame of this burst can be read")
            cand = rows[ok]
            sharp = np.array([self._sharpness(int(n)) for n in cand])
            glitch = np.nan_to_num(df["glitch"].to_numpy()[cand], nan=0.0)
            keys = (-np.arange(len(cand)), sharp, -glitch, df["favorite"].to_numpy()[cand].astype(int),
                    df["stars"].to_numpy()[cand].astype(int))
            best = int(cand[np.lexsort(keys)[-1]])
            ids = df["id"].to_numpy()
            others = [ids[n] for n in rows if n != best and not df.at[n, "favorite"] and not df.at[n, "stars"]
                      and not df.at[n, "reject"]]
            project = self.col.project
            touched = [ids[best]] + (others if reject_rest else [])
            before = {i: copy.deepcopy(self._entry(i)) for i in touched}
            project.set_favorite([ids[best]], True)
            if reject_rest and others:
                project.set_reject(others, True)
            self._save(touched)
            self._remember(client, "best-of-burst", before)
            return {"best": ids[best], "row": best, "rejected": others if reject_rest else [],
                    "states": self.states(touched)}

    def _sharpness(self, row: int) -> float:
        path = self.col.df.at[row, "path"]
        s = self.thumbs.sharpness_of(path)
        if s is None:
            try:
                self.thumbs.get(path)
                s = self.thumbs.sharpness_of(path)
            except ThumbnailError:
                s = None
        return float(s) if s is not None else 0.0

    # ------------------------------------------------------------------------------ pictures
    def thumbnail(self, row: int) -> bytes:
        """Thumbnail JPEG of a row (ThumbnailError with the reason when it cannot be made)."""
        df = self.col.df
        try:
            return self.thumbs.get(df.at[int(row), "path"])
        except ThumbnailError as exc:
            self.job.failed[df.at[int(row), "id"]] = str(exc)
            raise

    def preview(self, row: int, side: int = 1600) -> bytes:
        """A large JPEG of one image for the loupe (in memory; the file itself is never served)."""
        from trailcam_core.cull.thumbs import make_thumbnail

        path = self.col.df.at[int(row), "path"]
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise ThumbnailError(f"{path}: file not found (deleted or moved?)") from None
        except OSError as exc:
            raise ThumbnailError(f"{path}: cannot read ({exc})") from None
        return make_thumbnail(data, side, name=str(path), quality=88)[0]

    def build_thumbnails(self, progress: Optional[ProgressCallback] = None, workers: int = 0) -> Any:
        """Make every missing thumbnail (blocking) -> BatchReport; progress in ``self.job`` too."""
        progress = ensure(progress)
        df = self.col.df
        paths = df["path"].tolist()
        id_of = dict(zip(paths, df["id"].tolist()))
        t0 = time.perf_counter()
        self.job = ThumbJob(total=len(paths), running=True)

        def cb(done, total, message="", preview=None):
            self.job.done, self.job.total = done + (len(paths) - total), len(paths)
            progress(done, total, message, preview)

        try:
            report = self.thumbs.build(paths, cb, workers=workers, stop=self._stop)
        finally:
            self.job.running = False
            self.job.seconds = time.perf_counter() - t0
        for p, why in report.skipped:
            self.job.failed[id_of.get(p, p)] = why
        return report

    def start_thumbnails(self, workers: int = 0) -> threading.Thread:
        """Build thumbnails in a background thread (see :attr:`job` for progress)."""
        if self.job.running:
            raise TrailcamError("thumbnails are already being made")
        self.job = ThumbJob(total=len(self.col), running=True)
        t = threading.Thread(target=self.build_thumbnails, kwargs={"workers": workers}, daemon=True,
                             name="trailcam-thumbnails")
        t.start()
        return t

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------------------ similarity, map
    def vectors(self, progress: Optional[ProgressCallback] = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, unit feature vectors) of the collection's readable images, computed once (cached on disk)."""
        with self.lock:
            if self._vectors is not None:
                return self._vectors
        from trailcam_core.embed import embed_images, Embeddings, EmbedOptions

        df = self.col.df
        if self.options.embeddings:
            emb = Embeddings.load(self.options.embeddings)
            by_file = {os.path.realpath(f): n for n, f in enumerate(emb.files)}
            rows_of = self.col.row_of.get_indexer(emb.ids)
            pairs = [(r, n) for n, r in enumerate(rows_of) if r >= 0]
            if not pairs:
                real = [os.path.realpath(p) for p in df["path"]]
                pairs = [(r, by_file[p]) for r, p in enumerate(real) if p in by_file]
            if not pairs:
                raise TrailcamError(f"{self.options.embeddings}: none of its images belong to this collection")
            rows = np.array([p[0] for p in pairs])
            vec = emb.vectors[[p[1] for p in pairs]]
        else:
            ok = np.flatnonzero(df["problem"].to_numpy() == "")
            records = [ImageRecord(image_id=df.at[n, "id"], path=Path(df.at[n, "path"])) for n in ok]
            opts = EmbedOptions(features=self.options.features, model=self.options.model,
                                pretrained=self.options.pretrained, dedupe=False, pyramid_size=16)
            try:
                emb = embed_images(records, opts, cache_dir=self.workdir / EMBED_DIR, progress=progress)
            except Exception as exc:            # no CLIP weights (offline): similar colours and shapes instead
                if opts.features != "clip":
                    raise
                self.col.warnings.append(f"'more like this' uses image pyramids: CLIP {opts.model} could not be "
                                         f"loaded ({str(exc)[:160]})")
                emb = embed_images(records, EmbedOptions(features="pyramid", dedupe=False, pyramid_size=16),
                                   cache_dir=self.workdir / EMBED_DIR, progress=progress)
            for f, why in emb.skipped:
                self.job.failed.setdefault(Path(f).name, why)
            rows = self.col.rows(emb.ids)
            vec = emb.vectors
        vec = np.asarray(vec, dtype=np.float32)
        vec = vec / (np.linalg.norm(vec, axis=1, keepdims=True) + 1e-12)
        with self.lock:
            self._vectors = (rows, vec)
        return self._vectors

    def similarity(self, image_id: str, progress: Optional[ProgressCallback] = None) -> np.ndarray:
        """Cosine similarity of every row to ``image_id`` ("more like this"); -2 where no features."""
        rows, vec = self.vectors(progress)
        n = self.col.rows([image_id])[0]
        where = np.flatnonzero(rows == n)
        if not len(where):
            raise TrailcamError(f"image {image_id!r} has no features (it could not be read)")
        sims = np.full(len(self.col), -2.0, dtype=np.float32)
        sims[rows] = vec @ vec[where[0]]
        return sims

    def map_layout(self, rows: np.ndarray, progress: Optional[ProgressCallback] = None) -> dict:
        """The rows of the current filter laid out as a similarity mosaic -> {cols, rows, cells: [[row, cell]]}.

        At most ``options.map_limit`` images (the first of the view); images without features are left out.
        """
        from trailcam_core.mosaic import compute_layout, MosaicOptions

        rows = np.asarray(rows, dtype=np.int64)[: self.options.map_limit]
        frow, vec = self.vectors(progress)
        pos = {int(r): n for n, r in enumerate(frow)}
        keep = [int(r) for r in rows if int(r) in pos]
        if len(keep) < 2:
            raise TrailcamError("the map needs at least 2 readable images in the current filter")
        x = vec[[pos[r] for r in keep]]
        layout = compute_layout(x, MosaicOptions(aspect=1.6, scatter=False, viewer=False, quality=False))
        return {"cols": layout.cols, "rows": layout.rows,
                "cells": [[r, int(c)] for r, c in zip(keep, layout.cell_of)], "engine": layout.engine}

    # ------------------------------------------------------------------------------ details
    def details(self, row: int) -> dict:
        """What the loupe shows: tags, capture time, location, scores, flags and the burst's rows."""
        df = self.col.df
        n = int(row)
        if not 0 <= n < len(df):
            raise TrailcamError(f"row {row} is outside the collection (0..{len(df) - 1})")
        image_id = df.at[n, "id"]
        e = self.col.project.images.get(image_id, {})
        tags = {k: v for k, v in (e.get("tags") or {}).items() if v.get("value") is not None}
        t = df.at[n, "datetime"]
        path = df.at[n, "path"]
        problem = df.at[n, "problem"] or self.job.failed.get(image_id, "")
        if not os.path.exists(path):
            problem = f"{path}: file not found (deleted or moved?)"
        g = df.at[n, "glitch"]
        return {"id": image_id, "row": n, "file": os.path.basename(path),
                "time": None if t != t or t is None else str(t)[:19],
                "species": str(df.at[n, "species"]), "location": str(df.at[n, "location"]),
                "camera": str(df.at[n, "camera"]), "time_of_day": str(df.at[n, "time_of_day"]),
                "artifact": str(df.at[n, "artifact"]), "info_bar": str(df.at[n, "info_bar"]),
                "glitch": None if g != g else round(float(g), 3),
                "favorite": bool(df.at[n, "favorite"]), "reject": bool(df.at[n, "reject"]),
                "stars": int(df.at[n, "stars"]), "problem": problem,
                "tags": {k: {"value": v.get("value"), "source": v.get("source"), "score": v.get("score")}
                         for k, v in sorted(tags.items())},
                "burst": [int(r) for r in self.burst_rows(n)]}
