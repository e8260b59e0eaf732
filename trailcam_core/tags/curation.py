"""Curation state of one project folder: favourites, rejects, tags and hand edits.

One JSON file per project, ``<project>/trailcam_state.json``::

    {"format": "trailcam-curation", "version": 1,
     "images": {"<image_id>": {"file": "crops/a1.jpg",          # relative to the project folder
                               "favorite": true, "reject": false, "stars": 3,   # 0-5, optional
                               "tags": {"species": {"value": "coyote", "source": "label"},
                                        "artifact": {"value": "glitch", "source": "hand"}}}}}

Every save is atomic (temp file + rename) and first copies the previous, readable state to
``trailcam_state.json.bak``. Saves merge: when another process (the app, a node, the CLI, an
auto-tagging run) saved the project since this one was opened, this save applies only the
changes made here (per image: favourite, reject, file and each tag) onto what is on disk, so
nobody's edits are lost; when both changed the same thing, the later save wins for that thing.
Saves take a lock file (``trailcam_state.json.lock``) so two of them never interleave. A state file that no longer parses is reported in
``Project.warnings``, kept aside as ``trailcam_state.json.corrupt-<time>``, and the last good copy
is loaded instead; if no good copy exists, opening fails with a DataError naming the file.

``stars`` (0 to 5) is optional: files written before it existed read as 0 stars, and readers that
do not know it keep it. The state of a folder outside an app's work folder lives below the work
folder (:func:`state_folder`), never beside the user's photos.

Auto-tagging never replaces a tag whose source is ``hand`` unless asked (``overwrite_hand``);
a tag a person removed is stored as value ``null`` with source ``hand`` so it stays removed.

    project = Project.open("crops/")
    project.set_favorite(["a1", "b2"])
    project.set_tag("a1", "artifact", "glitch")          # a hand edit
    project.save()
    export_favorites(project, "training/", CaptionOptions(trigger="trlcm"), repeats=2)
    more_like_this(["a1"], ids, vectors)                  # [(id, cosine), ...] best first
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional


from trailcam_core.base import (atomic_path, BatchReport, DataError, ensure, flat_name, ImageRecord, is_within,
                                option, Options, ProgressCallback, safe_relative, TrailcamError, write_bytes,
                                write_text)
from trailcam_core.tags.captions import CaptionEntry, CaptionOptions, write_captions
from trailcam_core.tags.model import Tag
import msgspec
import numpy as np


STATE_NAME = "trailcam_state.json"
BACKUP_SUFFIX = ".bak"
FORMAT = "trailcam-curation"
VERSION = 1


class Project:
    """Curation state of one project folder. Open with :meth:`open`, change, then :meth:`save`."""

    def __init__(self, root: Path, images: dict[str, dict], warnings: Optional[list[str]] = None):
        self.root = Path(root)
        self.images = images
        self.warnings = warnings or []
        # the state as read (what "changed here" means), kept encoded: decoded only when a merge needs it
        self._base_raw = msgspec.json.encode(images)
        self._stamp = _stamp(self.state_path)
        self._seen = _digest(self.state_path)      # the file's content as read: another save changes it

    # ----------------------------------------------------------------------------- load / save
    @property
    def state_path(self) -> Path:
        return self.root / STATE_NAME

    @property
    def backup_path(self) -> Path:
        return self.root / (STATE_NAME + BACKUP_SUFFIX)

    @classmethod
    def open(cls, root: str | os.PathLike, create: bool = True) -> "Project":
        """Load ``root``'s state (empty when there is none and ``create``); see the module doc for recovery."""
        root = Path(root).expanduser()
        if not root.is_dir():
            if not create:
                raise TrailcamError(f"{root}: project folder not found")
            root.mkdir(parents=True, exist_ok=True)
        path = root / STATE_NAME
        if not path.exists():
            if not create:
                raise TrailcamError(f"{path}: no curation state here yet: tag the images first (the Auto-tag "
                                    "button in the app's Tags tab, `trailcam tag` on the command line)")
            return cls(root, {})
        try:
            return cls(root, _read_state(path))
        except DataError as exc:
            backup = root / (STATE_NAME + BACKUP_SUFFIX)
            try:
                images = _read_state(backup)
            except (DataError, FileNotFoundError) as exc2:
                reason = "no last good copy" if isinstance(exc2, FileNotFoundError) else f"last good copy: {exc2}"
                raise DataError(f"{exc}; {reason}; fix or remove the file") from exc
            kept = path.with_name(f"{STATE_NAME}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(path, kept)
            with atomic_path(path) as tmp:      # the good copy becomes the state again
                shutil.copyfile(backup, tmp)
            project = cls(root, images)
            project.warnings.append(f"{exc}; loaded the last good copy {backup.name} instead "
                                    f"(the damaged file was kept as {kept.name})")
            return project

    def save(self) -> Path:
        """Write the state atomically; the previous readable state becomes the ``.bak`` copy.

        If the file changed on disk since this project was opened (or last saved), the changes
        made here are merged onto it (see the module doc) and ``images`` becomes the merged state.
        """
        path = self.state_path
        with _locked(path.with_name(STATE_NAME + ".lock")):
            on_disk = None
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                raw = None
            except OSError as exc:
                raise DataError(f"{path}: cannot read curation state ({exc})") from exc
            if raw is not None:
                # compared by content, not only by the file's stamp: a recycled inode with the same size
                # and mtime tick could hide another program's save
                changed = _stamp(path) != self._stamp or _digest_bytes(raw) != self._seen
                try:
                    if changed:
                        on_disk = _parse_state(raw, path)
                    _keep_backup(path, raw, self.backup_path)   # readable (parsed now or when last seen)
                except DataError:
                    on_disk = None  # never replace the last good copy with a damaged file
            if on_disk is not None:
                self.images = merge_states(msgspec.json.decode(self._base_raw), self.images, on_disk)
            doc = {"format": FORMAT, "version": VERSION, "images": self.images}
            data = msgspec.json.format(msgspec.json.encode(doc, order="sorted"), indent=1)
            write_bytes(path, data)
            self._base_raw = msgspec.json.encode(self.images)
            self._stamp = _stamp(path)
            self._seen = _digest_bytes(data)
        return path

    # ----------------------------------------------------------------------------- images
    def add_record(self, record: ImageRecord) -> dict:
        """Register an image (idempotent); its file is stored relative to the project if inside it."""
        entry = self.images.setdefault(record.image_id, {"file": "", "favorite": False, "reject": False, "tags": {}})
        path = Path(record.path)
        if is_within(path, self.root):
            entry["file"] = Path(os.path.realpath(path)).relative_to(os.path.realpath(self.root)).as_posix()
        else:
            entry["file"] = str(Path(path).resolve())
        return entry

    def entry(self, image_id: str) -> dict:
        try:
            return self.images[image_id]
        except KeyError:
            raise TrailcamError(f"image {image_id!r} is not in the project {self.root}") from None

    def image_path(self, image_id: str) -> Path:
        """Absolute path of an image of the project."""
        f = self.entry(image_id)["file"]
        if not f:
            raise TrailcamError(f"image {image_id!r} has no file in {self.state_path}")
        if Path(f).is_absolute():
            return Path(f)
        return self.root / safe_relative(f, what=f"file of image {image_id!r}")

    def ids(self) -> list[str]:
        return list(self.images)

    def favorites(self) -> list[str]:
        return [i for i, e in self.images.items() if e.get("favorite")]

    def rejects(self) -> list[str]:
        return [i for i, e in self.images.items() if e.get("reject")]

    def set_favorite(self, ids: Iterable[str], on: bool = True) -> None:
        """Mark (or unmark) favourites; a favourite is never also a reject."""
        for i in ids:
            e = self.entry(i)
            e["favorite"] = bool(on)
            if on:
                e["reject"] = False

    def set_reject(self, ids: Iterable[str], on: bool = True) -> None:
        for i in ids:
            e = self.entry(i)
            e["reject"] = bool(on)
            if on:
                e["favorite"] = False

    def stars(self, image_id: str) -> int:
        """The image's star rating, 0 (none) to 5."""
        return int(self.entry(image_id).get("stars", 0) or 0)

    def set_stars(self, ids: Iterable[str], stars: int) -> None:
        """Rate images 0 (no stars) to 5."""
        if isinstance(stars, bool) or not isinstance(stars, (int, np.integer)) or not 0 <= int(stars) <= 5:
            raise TrailcamError(f"stars must be a whole number from 0 to 5, got {stars!r}")
        for i in ids:
            self.entry(i)["stars"] = int(stars)

    def changed_on_disk(self) -> bool:
        """True when another program saved the state since this project was opened or last saved."""
        return _stamp(self.state_path) != self._stamp or _digest(self.state_path) != self._seen

    # ----------------------------------------------------------------------------- tags
    def tags(self, image_id: str) -> dict[str, Tag]:
        """The image's tags (hand removals, value None, included)."""
        return {k: Tag.from_dict(v) for k, v in self.entry(image_id).get("tags", {}).items()}

    def visible_tags(self, image_id: str) -> dict[str, Tag]:
        """The tags that count (removed ones left out)."""
        return {k: t for k, t in self.tags(image_id).items() if t.value is not None}

    def set_tag(self, image_id: str, key: str, value: Any) -> None:
        """A hand edit: the value wins over auto-tagging from now on. ``value=None`` removes the tag."""
        if not key or not str(key).replace("_", "").isalnum():
            raise TrailcamError(f"tag key {key!r} must be a plain name (letters, digits, _)")
        self.entry(image_id).setdefault("tags", {})[key] = Tag(value, "hand").to_dict()

    def remove_tag(self, image_id: str, key: str) -> None:
        """Remove a tag by hand (remembered, so re-tagging does not bring it back)."""
        self.set_tag(image_id, key, None)

    def apply_tag_edits(self, image_id: str, new: Mapping[str, Any]) -> list[str]:
        """Make ``new`` the image's visible tags; only keys whose value changed become hand edits.

        Keys missing from ``new`` are removed by hand. Returns the keys that changed.
        Example: ``project.apply_tag_edits(id, parse_tag_lines("species: coyote"))``.
        """
        old = {k: tag_value_text(t.value) for k, t in self.visible_tags(image_id).items()}
        changed = []
        for key in old.keys() - new.keys():
            self.remove_tag(image_id, key)
            changed.append(key)
        for key, value in new.items():
            if old.get(key) != tag_value_text(value):
                self.set_tag(image_id, key, value)
                changed.append(key)
        return sorted(changed)

    def revert_tag(self, image_id: str, key: str) -> None:
        """Forget a hand edit; the next auto-tagging run fills the key again."""
        self.entry(image_id).get("tags", {}).pop(key, None)

    def set_auto_tags(self, image_id: str, tags: Mapping[str, Tag], overwrite_hand: bool = False) -> bool:
        """Replace the automatic tags of an image, keeping hand edits; True when anything changed."""
        entry = self.entry(image_id)
        old = entry.get("tags", {})
        new = {k: t.to_dict() for k, t in tags.items()}
        merged = {k: v for k, v in old.items() if v.get("source") == "hand" and (not overwrite_hand or k not in new)}
        for k, v in new.items():
            if k not in merged:
                merged[k] = v
        changed = merged != old
        entry["tags"] = merged
        return changed

    def caption_entries(self, include: str = "not-rejected", min_stars: int = 0) -> list[CaptionEntry]:
        """Images to caption: ``not-rejected`` (default), ``favorites`` or ``all``; with
        ``min_stars`` only those rated at least that many stars (rejects never count)."""
        if include not in ("not-rejected", "favorites", "all"):
            raise TrailcamError(f"unknown include {include!r}; use not-rejected, favorites or all")
        out = []
        for i, e in self.images.items():
            if include == "favorites" and not e.get("favorite"):
                continue
            if include == "not-rejected" and e.get("reject"):
                continue
            if min_stars and (e.get("reject") or int(e.get("stars", 0) or 0) < min_stars):
                continue
            out.append(CaptionEntry(i, self.image_path(i), self.visible_tags(i)))
        return out


_FIELDS = ("file", "favorite", "reject", "stars")


def merge_states(base: Mapping[str, dict], ours: Mapping[str, dict], theirs: Mapping[str, dict]) -> dict[str, dict]:
    """Three-way merge of curation states: ``theirs`` (on disk now) plus what changed from
    ``base`` to ``ours`` (this process's edits), per image, per field and per tag key. A thing
    both sides changed takes ``ours``; a favourite or reject set here clears the other mark."""
    out = _copy(dict(theirs))
    empty = {"file": "", "favorite": False, "reject": False, "tags": {}}
    for image_id, o in ours.items():
        b = base.get(image_id)
        t = out.get(image_id)
        if t is None:                          # new here, or new to the state on disk
            out[image_id] = copy.deepcopy(o)
            continue
        b = b if b is not None else empty
        for field in _FIELDS:
            if o.get(field) != b.get(field) and not (field == "stars" and not o.get(field) and not b.get(field)):
                t[field] = o.get(field)
        if o.get("favorite") and not b.get("favorite"):
            t["reject"] = False
        if o.get("reject") and not b.get("reject"):
            t["favorite"] = False
        bt, ot, tt = b.get("tags", {}), o.get("tags", {}), t.setdefault("tags", {})
        for key in set(bt) | set(ot):
            if ot.get(key) != bt.get(key):
                if key in ot:
                    tt[key] = copy.deepcopy(ot[key])
                else:                          # reverted here: forget it there too
                    tt.pop(key, None)
    return out


def _keep_backup(path: Path, raw: bytes, backup: Path) -> None:
    """Make ``backup`` a copy of the state file about to be replaced: a hard link to it (no data
    written; the save that follows gives ``path`` a new file), else a copy of its bytes."""
    tmp = backup.with_name(f".{backup.name}.{os.getpid()}.link")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.link(path, tmp)
        os.replace(tmp, backup)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        with atomic_path(backup) as t:
            t.write_bytes(raw)


def _digest_bytes(data: bytes) -> str:
    import xxhash

    return xxhash.xxh3_128_hexdigest(data)


def _digest(path: Path) -> Optional[str]:
    try:
        return _digest_bytes(path.read_bytes())
    except OSError:
        return None


def _copy(images: Mapping[str, Any]) -> dict:
    """A deep copy of JSON-shaped state (a round trip through msgspec: many times faster than deepcopy)."""
    return msgspec.json.decode(msgspec.json.encode(images))


def _stamp(path: Path) -> Optional[tuple]:
    """What tells a state file apart from the one read before: inode, size, mtime."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@contextmanager
def _locked(lock_path: Path):
    """An exclusive advisory lock on ``lock_path`` (POSIX ``flock``; no lock where it is missing)."""
    try:
        import fcntl
    except ImportError:                        # Windows: saves are still atomic, just not serialised
        yield
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _read_state(path: Path) -> dict[str, dict]:
    """Parse and validate a state file -> images dict; DataError naming the file when damaged."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DataError(f"{path}: cannot read curation state ({exc})") from exc
    return _parse_state(raw, path)


def _parse_state(raw: bytes, path: Path) -> dict[str, dict]:
    """Parse and validate the bytes of a state file (see :func:`_read_state`)."""
    try:
        doc = msgspec.json.decode(raw)
    except (UnicodeDecodeError, msgspec.DecodeError) as exc:
        raise DataError(f"{path}: curation state is corrupt ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("images"), dict):
        raise DataError(f"{path}: not a trailcam curation state (expected format {FORMAT!r} with an 'images' object)")
    if int(doc.get("version", 0)) > VERSION:      # not damage: no recovery from an older copy
        raise TrailcamError(f"{path}: curation state version {doc.get('version')} is newer than this trailcam "
                        f"understands ({VERSION})")
    for image_id, e in doc["images"].items():
        if not isinstance(e, dict) or not isinstance(e.get("tags", {}), dict):
            raise DataError(f"{path}: image {image_id!r} is malformed")
        for key, t in e.get("tags", {}).items():
            if not isinstance(t, dict) or "source" not in t:
                raise DataError(f"{path}: tag {key!r} of image {image_id!r} is malformed")
        stars = e.get("stars", 0)
        if isinstance(stars, bool) or not isinstance(stars, int) or not 0 <= stars <= 5:
            raise DataError(f"{path}: stars of image {image_id!r} must be 0 to 5, got {stars!r}")
        e.setdefault("favorite", False)
        e.setdefault("reject", False)
        e.setdefault("tags", {})
        e.setdefault("file", "")
    return doc["images"]


STATES_DIR = ".trailcam-states"
ORIGIN_NAME = "origin.json"


def state_folder(collection: str | os.PathLike, workdir: Optional[str | os.PathLike] = None) -> Path:
    """The folder that holds the curation state of ``collection`` (a folder of images or a file).

    Without ``workdir``, or for a folder inside it: the collection folder itself (a file: its
    folder). For a collection outside ``workdir``: ``<workdir>/.trailcam-states/<name>-<hash>``,
    keyed by the collection's real path (with an ``origin.json`` naming it), so a program that may
    write only below its work folder never writes beside the user's photos.
    Example: ``Project.open(state_folder("/photos/cam1", "work"))``.
    """
    import hashlib

    src = Path(collection).expanduser()
    home = src if src.is_dir() or not src.suffix else src.parent
    if workdir is None or is_within(home, workdir):
        return home
    real = os.path.realpath(src)
    key = hashlib.sha1(real.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in (Path(real).name or "root"))[:60]
    folder = Path(workdir).expanduser() / STATES_DIR / f"{name}-{key}"
    origin = folder / ORIGIN_NAME
    if not origin.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_text(origin, json.dumps({"collection": real}, indent=1))
    return folder


def caption_project(project_dir: str | os.PathLike, options: Optional[CaptionOptions] = None,
                    progress: Optional[ProgressCallback] = None) -> BatchReport:
    """Write caption sidecars, metadata.jsonl and tag_frequency.json for a tagged project folder.

    Example: ``caption_project("crops/", CaptionOptions(trigger="trlcm", dropout=0.1))``.
    """
    options = options or CaptionOptions()
    project = Project.open(project_dir, create=False)
    entries = project.caption_entries(options.include)
    check_captions_possible(project, entries, options.include)
    report = write_captions(entries, project.root, options, progress)
    for warning in project.warnings:
        report.skip("curation state", warning)
    return report


def check_captions_possible(project: Project, entries: list[CaptionEntry], include: str) -> None:
    """Refuse a caption run that would write nothing, saying where captions go and how to get them."""
    if not entries:
        raise TrailcamError(f"no images to caption in {project.root} with include={include!r}"
                            + (": mark favourites first, or caption include=not-rejected" if include == "favorites"
                               else ": tag images into this project first (Auto-tag, or `trailcam tag`)"))
    inside = [e for e in entries if is_within(Path(e.path), project.root)]
    if not inside:
        folders = sorted({str(Path(e.path).parent) for e in entries})
        shown = ", ".join(folders[:3]) + (f" and {len(folders) - 3} more" if len(folders) > 3 else "")
        raise TrailcamError(
            f"no captions written: the {len(entries)} images of project {project.root} lie outside it (in {shown}). "
            f"Caption sidecars are written beside the images, and only below the project folder. To get "
            f"captions, export the images with them (`trailcam export-favorites {project.root} OUT --include all`, "
            f"or 'Export training set' in the app's Tags tab), or tag with the project at the images' own folder.")


# ------------------------------------------------------------------------------ export

@dataclass
class ExportOptions(Options):
    """Export favourites to a training folder (kohya layout with ``repeats``)."""

    STAGE = "export"

    repeats: int = option(0, "kohya repeats: images go to <out>/<repeats>_<name>/ (0: straight into <out>)",
                          min=0, max=1000)
    name: str = option("trailcam", "Concept name of the kohya sub-folder (<repeats>_<name>)")
    include: str = option("favorites", "Which images to export", choices=("favorites", "not-rejected", "all"))
    min_stars: int = option(0, "Only images rated at least this many stars (0: any rating)", min=0, max=5)


def export_favorites(project: Project, out_dir: str | os.PathLike, caption_options: Optional[CaptionOptions] = None,
                     options: Optional[ExportOptions] = None, progress: Optional[ProgressCallback] = None) -> BatchReport:
    """Copy the favourites (images + caption sidecars) into a folder ready for LoRA training.

    Writes ``metadata.jsonl`` and ``tag_frequency.json`` there too. Re-running skips images already
    copied unchanged (up to date). Missing or unreadable images are skipped and reported.
    Example: ``export_favorites(Project.open("crops"), "train", CaptionOptions(trigger="trlcm"))``.
    """
    options = options or ExportOptions()
    caption_options = caption_options or CaptionOptions()
    progress = ensure(progress)
    out = Path(out_dir).expanduser()
    if is_within(out, project.root) or is_within(project.root, out):
        raise TrailcamError(f"export folder {out} must lie outside the project folder {project.root} (and not "
                            f"contain it): copies inside it would be tagged again as new images")
    sub = out
    if options.repeats:
        name = options.name.strip() or "trailcam"
        safe_relative(name, what="concept name")
        if "/" in name or "\\" in name:
            raise TrailcamError(f"concept name {name!r} must not contain a path separator")
        sub = out / f"{options.repeats}_{name}"
    sub.mkdir(parents=True, exist_ok=True)
    entries = project.caption_entries(options.include, options.min_stars)
    report = BatchReport("export-favorites")
    if not entries:
        report.outputs["folder"] = sub
        return report
    copied: list[CaptionEntry] = []
    used: set[str] = set()
    total = len(entries)
    progress(0, total, "copying")
    for i, e in enumerate(entries, 1):
        src = Path(e.path)
        if "unreadable" in e.tags:
            report.skip(e.image_id, f"unreadable image ({e.tags['unreadable'].value})")
        elif not src.is_file():
            report.skip(e.image_id, f"{src}: file not found")
        else:
            name = src.name if src.name.lower() not in used else f"{flat_name(e.image_id)}{src.suffix.lower()}"
            used.add(name.lower())
            dest = sub / name
            if dest.is_file() and dest.stat().st_size == src.stat().st_size:
                report.up_to_date += 1
            else:
                with atomic_path(dest) as tmp:
                    shutil.copyfile(src, tmp)
                report.processed += 1
            copied.append(CaptionEntry(e.image_id, dest, e.tags))
        progress(i, total, e.image_id)
    cap = write_captions(copied, out, caption_options, folder_name=sub.name)
    report.outputs.update({"folder": sub, "metadata": cap.outputs["metadata"],
                           "tag_frequency": cap.outputs["tag_frequency"], "images": len(copied)})
    return report


# ------------------------------------------------------------------------------ tag text

def tag_value_text(value: Any) -> str:
    """A tag value as one line of text (lists joined with ", ")."""
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def tag_lines(project: Project, image_id: str) -> str:
    """An image's visible tags as editable ``key: value`` lines (the inverse of parse_tag_lines)."""
    return "\n".join(f"{k}: {tag_value_text(t.value)}" for k, t in sorted(project.visible_tags(image_id).items()))


def parse_tag_lines(text: str) -> dict[str, str]:
    """``key: value`` lines -> dict; a line without a colon is a clear error naming it."""
    out = {}
    for n, line in enumerate((text or "").splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise TrailcamError(f"tag line {n} {line!r}: write it as 'key: value'")
        out[key.strip()] = value.strip()
    return out
