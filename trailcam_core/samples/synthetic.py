"""The bundled sample: a SYNTHETIC trail-camera dataset in COCO Camera Traps form.

No real camera-trap photo ships with the project, so this module renders small frames that look
like what trail cameras produce (see docs/data.md):

- daytime colour frames, infrared night frames stored as RGB with R = G = B exactly, and
  colour-flash night frames (dark, warm, not grey);
- an info strip per camera model: black strip at the top ("2014-06-07 7:49:31 AM  M 2/3  59°F"),
  black strip at the bottom with a logo (Cuddeback style, colour-flash nights), or a light strip at
  the bottom;
- occasional glitch bands (rows shifted sideways) and colour-channel tears;
- simple animal and vehicle silhouettes, with bounding boxes in the annotations.

Every image record keeps the ground truth of what was rendered under ``synthetic``
(``time_of_day``, ``glitch``, ``info_bar``, objects), so tagging and cropping can be scored.

``ensure_sample()`` generates it once (deterministically, atomically) into a cache folder and
returns the JSON path.  ``write_full_scale_json()`` writes a CCT-shaped metadata file the size of
the real Caltech Camera Traps one (243,100 images, 140 locations, ~70% empty), without images,
for benchmarks.
"""
from __future__ import annotations

import os
import random
import shutil
import uuid
from pathlib import Path
from typing import Optional

import numpy as np

from trailcam_core.base import default_home, write_bytes, write_json, write_text

SAMPLE_VERSION = 1
SAMPLE_JSON = "sample_cct.json"
SEED = 20120317

# Sparse ids, as in the real file (empty is 30, car 33, coyote 9); lizard has no image on purpose.
CATEGORIES = [
    (1, "opossum"), (3, "raccoon"), (5, "squirrel"), (6, "bobcat"), (7, "skunk"), (8, "dog"),
    (9, "coyote"), (10, "rabbit"), (11, "bird"), (14, "lizard"), (16, "cat"), (30, "empty"),
    (33, "car"), (34, "deer"),
]
CATEGORY_IDS = {name: cid for cid, name in CATEGORIES}

# One camera per location.  bar = (side, style); night = which kind of night frame it takes.
CAMERAS = {
    "26": dict(model="reconyx", size=(320, 234), bar=("top", "black"), night="ir_night", frames=3,
               fauna=["coyote", "bobcat", "rabbit", "deer"], year=2014, temp_f=(48, 78)),
    "38": dict(model="cuddeback", size=(320, 240), bar=("bottom", "black"), night="flash_night", frames=1,
               fauna=["opossum", "raccoon", "cat", "skunk", "car"], year=2011, temp_f=None),
    "43": dict(model="reconyx", size=(320, 234), bar=("top", "black"), night="ir_night", frames=3,
               fauna=["deer", "coyote", "squirrel", "bird"], year=2013, temp_f=(40, 70)),
    "61": dict(model="bushnell", size=(320, 240), bar=("bottom", "light"), night="ir_night", frames=2,
               fauna=["rabbit", "dog", "car", "raccoon"], year=2012, temp_f=(55, 90)),
}
SEQUENCES_PER_LOCATION = 10
BAR_ROWS = 12


# --------------------------------------------------------------------------------------- paths
def default_sample_dir() -> Path:
    return default_home() / "sample"


def _is_complete(dest: Path) -> bool:
    import json

    js = dest / SAMPLE_JSON
    if not js.is_file():
        return False
    try:
        data = json.loads(js.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if data.get("info", {}).get("generator_version") != SAMPLE_VERSION:
        return False
    return all((dest / im["file_name"]).is_file() for im in data.get("images", []))


def ensure_sample(dest: Optional[str | os.PathLike] = None) -> Path:
    """Return the path of the synthetic sample's CCT JSON, generating it on first use.

    Images sit beside the JSON (``file_name`` is ``<id>.jpg``, relative to the JSON's folder).
    Generation is deterministic and atomic: it renders into a temporary sibling folder and
    renames it into place, so an interrupted run never leaves a half-made sample.
    Example: ``load_dataset(ensure_sample())``.
    """
    dest = Path(dest) if dest is not None else default_sample_dir()
    if _is_complete(dest):
        return dest / SAMPLE_JSON
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        generate_sample(tmp)
        if dest.exists():
            if _is_complete(dest):          # another process finished first
                return dest / SAMPLE_JSON
            old = dest.parent / f".{dest.name}.old-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            os.replace(dest, old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, dest)
        except OSError:
            if not _is_complete(dest):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest / SAMPLE_JSON


# ------------------------------------------------------------------------------------ rendering
def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=1))


def _scene(size: tuple[int, int], loc_seed: int) -> np.ndarray:
    """The fixed daytime background of a camera: sky band, ground, trunks, bushes (float 0..255)."""
    w, h = size
    rs = np.random.default_rng(loc_seed)
    yy = np.linspace(0, 1, h)[:, None]
    horizon = rs.uniform(0.25, 0.45)
    sky = np.array([150, 185, 215.0]) + rs.uniform(-20, 20, 3)
    ground = np.array([120, 105, 70.0]) + rs.uniform(-20, 20, 3)
    veg = np.array([70, 100, 50.0]) + rs.uniform(-15, 15, 3)
    img = np.where(yy[..., None] < horizon, sky, ground) * np.ones((h, w, 1))
    band = (yy[..., 0] >= horizon) & (yy[..., 0] < horizon + 0.15)
    img[band] = veg
    noise = rs.normal(0, 10, (h // 4 + 1, w // 4 + 1, 1)).repeat(4, 0).repeat(4, 1)[:h, :w]
    img += noise
    for _ in range(rs.integers(2, 5)):                      # tree trunks
        x0 = int(rs.integers(0, w - 12))
        tw = int(rs.integers(6, 16))
        img[: int(h * (horizon + 0.2)), x0:x0 + tw] = np.array([80, 62, 45.0]) + rs.uniform(-10, 10)
    xx = np.arange(w)[None, :]
    for _ in range(rs.integers(3, 7)):                      # bushes
        cx, cy, r = rs.integers(0, w), int(h * rs.uniform(horizon + 0.05, 0.9)), rs.integers(10, 30)
        mask = ((xx - cx) ** 2 + ((np.arange(h)[:, None] - cy) * 1.6) ** 2) < r * r
        img[mask] = veg * rs.uniform(0.7, 1.1)
    return np.clip(img, 0, 255)


def _draw_object(draw, kind: str, x: float, y: float, s: float, fill, eye=None) -> list[float]:
    """Draw a silhouette with its feet/wheels at (x, y); return its box [x, y, w, h]."""
    if kind == "car":
        w_, h_ = 90 * s, 34 * s
        draw.rectangle([x, y - h_ * 0.75, x + w_, y - h_ * 0.2], fill=fill)
        draw.polygon([(x + w_ * 0.2, y - h_ * 0.75), (x + w_ * 0.32, y - h_), (x + w_ * 0.7, y - h_),
                      (x + w_ * 0.82, y - h_ * 0.75)], fill=fill)
        for cx in (x + w_ * 0.2, x + w_ * 0.8):
            draw.ellipse([cx - h_ * 0.22, y - h_ * 0.44, cx + h_ * 0.22, y], fill=(20, 20, 20))
        return [x, y - h_, w_, h_]
    if kind == "bird":
        w_, h_ = 16 * s, 10 * s
        draw.ellipse([x, y - h_, x + w_ * 0.8, y - h_ * 0.3], fill=fill)
        draw.ellipse([x + w_ * 0.65, y - h_, x + w_, y - h_ * 0.6], fill=fill)
        draw.polygon([(x + w_ * 0.2, y - h_ * 0.7), (x + w_ * 0.5, y - h_ * 0.2), (x, y - h_ * 0.3)], fill=fill)
        return [x, y - h_, w_, h_]
    scale = {"deer": (60, 55, 0.45), "rabbit": (24, 18, 0.25), "squirrel": (20, 16, 0.25),
             "opossum": (36, 20, 0.25), "raccoon": (36, 22, 0.3), "skunk": (32, 18, 0.25)}
    bw, bh, leg = scale.get(kind, (46, 32, 0.35))
    w_, h_ = bw * s, bh * s
    body_top, body_bot = y - h_, y - h_ * leg
    draw.ellipse([x + w_ * 0.1, body_top + h_ * 0.15, x + w_ * 0.8, body_bot], fill=fill)
    draw.ellipse([x + w_ * 0.72, body_top, x + w_, body_top + h_ * 0.38], fill=fill)        # head
    for lx in (0.2, 0.32, 0.6, 0.7):
        draw.rectangle([x + w_ * lx, body_bot - 2, x + w_ * lx + max(2, w_ * 0.05), y], fill=fill)
    draw.line([x + w_ * 0.12, body_top + h_ * 0.3, x, body_top + h_ * 0.5], fill=fill, width=max(2, int(3 * s)))
    if kind == "rabbit":
        draw.rectangle([x + w_ * 0.8, body_top - h_ * 0.4, x + w_ * 0.86, body_top + 2], fill=fill)
        body_top -= h_ * 0.4
    if eye is not None:
        draw.ellipse([x + w_ * 0.88, body_top + h_ * 0.08, x + w_ * 0.93, body_top + h_ * 0.14], fill=eye)
    return [x, body_top, w_, y - body_top]


def _bar_text(cam: dict, when, frame: int, nframes: int, temp: Optional[int]) -> str:
    if cam["model"] == "cuddeback":
        return f"{when.month}/{when.day}/{when.year % 100:02d} {when.strftime('%I:%M %p').lstrip('0')}"
    clock = when.strftime("%I:%M:%S %p").lstrip("0")
    base = f"{when:%Y-%m-%d} {clock}  M {frame}/{nframes}"
    return f"{base}  {temp}°F" if temp is not None else base


def render_frame(cam: dict, loc_seed: int, kind: str, objects: list[dict], when, frame: int, nframes: int,
                 temp: Optional[int], glitch: Optional[dict], rng: random.Random):
    """Render one frame; return (PIL image, boxes in absolute pixels, info bar ground truth)."""
    from PIL import Image, ImageDraw, ImageFont

    w, h = cam["size"]
    day = _scene(cam["size"], loc_seed) * rng.uniform(0.85, 1.1)
    img = Image.fromarray(np.clip(day, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    boxes = []
    for ob in objects:
        colour = (150, 120, 90) if kind == "day" else (200, 190, 170)
        eye = (255, 255, 240) if kind != "day" and ob["kind"] != "car" else None
        if ob["kind"] == "car":
            colour = (180, 40, 40) if kind != "ir_night" else (210, 210, 210)
        boxes.append(_draw_object(draw, ob["kind"], ob["x"], ob["y"], ob["scale"], colour, eye))
    arr = np.asarray(img).astype(np.float32)
    if kind != "day":                                       # flash falloff: bright centre, dark edges
        yy, xx = np.mgrid[0:h, 0:w]
        fall = np.clip(1.25 - (((xx - w / 2) / w) ** 2 + ((yy - h * 0.6) / h) ** 2) * 2.2, 0.15, 1.0)
        arr *= fall[..., None]
        if kind == "ir_night":
            grey = arr @ np.array([0.299, 0.587, 0.114], np.float32)
            arr = np.repeat((grey * 0.75 + 10)[..., None], 3, axis=2)
        else:
            arr = arr * np.array([0.6, 0.5, 0.42], np.float32)
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    if glitch:
        y0, y1, shift = glitch["rows"][0], glitch["rows"][1], glitch["shift"]
        if glitch["kind"] == "channel_tear":
            arr[y0:y1, :, glitch["channel"]] = np.roll(arr[y0:y1, :, glitch["channel"]], shift, axis=1)
        else:
            arr[y0:y1] = np.roll(arr[y0:y1], shift, axis=1)
            arr[y0:y1] = np.clip(arr[y0:y1].astype(int) + glitch["brighten"], 0, 255).astype(np.uint8)
    img = Image.fromarray(arr)
    draw = ImageDraw.Draw(img)
    side, style = cam["bar"]
    y0 = 0 if side == "top" else h - BAR_ROWS
    bg, fg = ((0, 0, 0), (255, 255, 255)) if style == "black" else ((205, 205, 205), (30, 30, 30))
    draw.rectangle([0, y0, w - 1, y0 + BAR_ROWS - 1], fill=bg)
    font = ImageFont.load_default(size=9)
    draw.text((3, y0 + 1), _bar_text(cam, when, frame, nframes, temp), font=font, fill=fg)
    if cam["model"] == "cuddeback":
        draw.rectangle([w - 62, y0 + 2, w - 4, y0 + BAR_ROWS - 3], outline=fg)
        draw.text((w - 58, y0 + 1), "CUDDEBACK", font=ImageFont.load_default(size=8), fill=fg)
    info_bar = {"side": side, "style": style, "rows": BAR_ROWS,
                "top": BAR_ROWS if side == "top" else 0, "bottom": BAR_ROWS if side == "bottom" else 0}
    # Clip boxes to the picture area (below/above the strip) and round like the real file.
    lo, hi = info_bar["top"], h - info_bar["bottom"]
    out = []
    for bx, by, bw, bh in boxes:
        x0, x1 = max(0.0, bx), min(float(w), bx + bw)
        y0_, y1_ = max(float(lo), by), min(float(hi), by + bh)
        out.append([round(x0, 1), round(y0_, 1), round(x1 - x0, 1), round(y1_ - y0_, 1)])
    return img, out, info_bar


def _plan(rng: random.Random):
    """Decide every sequence: location, time, kind, label(s), glitches. Pure, deterministic."""
    from datetime import datetime, timedelta

    plan = []
    for li, (loc, cam) in enumerate(CAMERAS.items()):
        start = datetime(cam["year"], 3 + li, 1, 0, 0, 0)
        for si in range(SEQUENCES_PER_LOCATION):
            night = si % 3 == 1 or (si % 5 == 4)
            hour = rng.choice([20, 21, 22, 23, 0, 1, 2, 3, 4]) if night else rng.randint(7, 17)
            when = start + timedelta(days=si * 2 + rng.randint(0, 1), hours=hour, minutes=rng.randint(0, 59),
                                     seconds=rng.randint(0, 59))
            kind = cam["night"] if night else "day"
            labels: list[str] = []
            if si % 2 == 0:
                labels = ["empty"]
            else:
                labels = [cam["fauna"][(si // 2) % len(cam["fauna"])]]
                if si == 7 and loc == "26":                 # two species in one frame
                    labels.append("rabbit" if labels[0] != "rabbit" else "coyote")
            nframes = cam["frames"] if cam["model"] != "cuddeback" else rng.choice([1, 2, 3])
            plan.append(dict(loc=loc, cam=cam, when=when, kind=kind, labels=labels, nframes=nframes,
                             boxed=(si % 4 != 3), seq_id=_uid(rng)))
    return plan


def generate_sample(dest: str | os.PathLike) -> Path:
    """Render the synthetic sample into ``dest`` (images + sample_cct.json); return the JSON path."""
    from datetime import timedelta

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    images, annotations = [], []
    loc_seeds = {loc: SEED + i for i, loc in enumerate(CAMERAS)}
    plan = _plan(rng)
    n_total = sum(p["nframes"] for p in plan)
    for si, p in enumerate(plan):
        cam, (w, h) = p["cam"], p["cam"]["size"]
        temp = rng.randint(*cam["temp_f"]) if cam["temp_f"] else None
        objs = []
        for label in p["labels"]:
            if label == "empty":
                continue
            for _ in range(2 if (label in ("coyote", "deer") and rng.random() < 0.3) else 1):
                s = rng.uniform(0.9, 1.6) if label not in ("car",) else rng.uniform(1.1, 1.5)
                objs.append(dict(kind=label, x=rng.uniform(10, w * 0.6), y=rng.uniform(h * 0.55, h * 0.92),
                                 scale=s, dx=rng.uniform(-30, 30)))
        for f in range(1, p["nframes"] + 1):
            when = p["when"] + timedelta(seconds=f - 1)
            glitch = None
            if rng.random() < 0.12:
                gy = rng.randint(BAR_ROWS + 5, h - BAR_ROWS - 30)
                gk = "channel_tear" if (p["kind"] != "ir_night" and rng.random() < 0.6) else "band"
                glitch = dict(kind=gk, rows=[gy, gy + rng.randint(6, 28)], shift=rng.randint(15, 90),
                              channel=rng.randint(0, 2), brighten=rng.randint(-40, 40))
            frame_objs = [dict(o, x=o["x"] + o["dx"] * (f - 1)) for o in objs]
            img, boxes, info_bar = render_frame(cam, loc_seeds[p["loc"]], p["kind"], frame_objs, when, f,
                                                p["nframes"], temp, glitch, rng)
            image_id = _uid(rng)
            file_name = f"{image_id}.jpg"
            import io

            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=88)
            write_bytes(dest / file_name, buf.getvalue())
            date_captured = f"{when:%Y-%m-%d %H:%M:%S}"
            if si == 5 and f == 1:
                date_captured = "2011-02-30 25:61:00"       # the real file has unparseable values too
            record = {
                "id": image_id, "file_name": file_name, "width": w, "height": h,
                "location": p["loc"], "date_captured": date_captured, "seq_id": p["seq_id"],
                "seq_num_frames": p["nframes"], "frame_num": f, "rights_holder": "synthetic (trailcam-curation)",
                "synthetic": {
                    "time_of_day": p["kind"], "is_night": p["kind"] != "day", "camera": cam["model"],
                    "glitch": glitch is not None, "glitch_kind": glitch["kind"] if glitch else None,
                    "glitch_rows": glitch["rows"] if glitch else None, "info_bar": info_bar,
                    "temperature_f": temp, "true_datetime": f"{when:%Y-%m-%d %H:%M:%S}",
                    "objects": [{"category": o["kind"], "bbox": b} for o, b in zip(frame_objs, boxes)],
                },
            }
            images.append(record)
            if si == 9 and f == p["nframes"]:
                continue                                    # one image with no annotation (unlabelled)
            if "empty" in p["labels"]:
                annotations.append({"id": _uid(rng), "image_id": image_id, "category_id": CATEGORY_IDS["empty"]})
            for o, b in zip(frame_objs, boxes):
                ann = {"id": _uid(rng), "image_id": image_id, "category_id": CATEGORY_IDS[o["kind"]]}
                if p["boxed"] and b[2] > 1 and b[3] > 1:
                    ann["bbox"] = b
                annotations.append(ann)
                if not p["boxed"]:                          # image-level label: one per species
                    break
    data = {
        "info": {
            "description": "SYNTHETIC trail-camera sample rendered by trailcam_core.samples.synthetic. These are "
                           "generated drawings, not real camera-trap photographs; ground truth of what was "
                           "rendered is in each image's 'synthetic' field.",
            "synthetic": True, "version": f"synthetic-{SAMPLE_VERSION}", "generator": "trailcam_core.samples.synthetic",
            "generator_version": SAMPLE_VERSION, "seed": SEED, "year": 2026, "contributor": "trailcam-curation",
            "date_created": "2026-01-01", "n_images": len(images),
        },
        "images": images,
        "annotations": annotations,
        "categories": [{"id": cid, "name": name} for cid, name in CATEGORIES],
    }
    assert len(images) == n_total
    write_text(dest / "README.txt", "Synthetic trail-camera sample generated by trailcam_core.samples.synthetic "
               "(not real photographs). Metadata: sample_cct.json (COCO Camera Traps).\n")
    return write_json(dest / SAMPLE_JSON, data)


# -------------------------------------------------------------------------- full-scale metadata
# Relative frequencies of the non-empty classes, from the box counts of the real bbox file.
FULL_SCALE_CLASSES = [
    (1, "opossum", 12135), (3, "raccoon", 7909), (9, "coyote", 6506), (34, "deer", 6429), (10, "rabbit", 6026),
    (6, "bobcat", 5049), (16, "cat", 4392), (11, "bird", 4027), (8, "dog", 2861), (5, "squirrel", 2649),
    (33, "car", 2558), (99, "rodent", 1843), (7, "skunk", 1199), (51, "fox", 1100), (14, "lizard", 178),
    (66, "mountain_lion", 45), (21, "badger", 29), (97, "insect", 8), (37, "bat", 2), (40, "pig", 1),
    (39, "cow", 1), (30, "empty", 0),
]


def write_full_scale_json(path: str | os.PathLike, n_images: int = 243_100, n_locations: int = 140,
                          empty_fraction: float = 0.7, seed: int = 0) -> Path:
    """Write a CCT-shaped JSON the size of Caltech Camera Traps (no images) and return its path.

    Same fields as the published file (string ids, string locations "0".."139", ``date_captured``,
    sequences of 1-5 frames, sparse category ids, a few images with two annotations, one date that
    does not parse).  Deterministic for a given seed.  Used by benchmarks/bench_dataset.py.
    """
    import msgspec

    rs = np.random.default_rng(seed)
    hexes = rs.integers(0, 2**63, size=(n_images * 2, 2), dtype=np.int64)

    def uids(offset: int, n: int) -> list[str]:
        out = []
        for a, b in hexes[offset:offset + n]:
            s = f"{int(a):016x}{int(b):016x}"
            out.append(f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:32]}")
        return out

    ids = uids(0, n_images)
    ann_ids = uids(n_images, n_images)
    # sequences: consecutive images at one location, 1..5 frames, same label
    seq_len = rs.integers(1, 6, size=n_images)
    seq_starts = np.cumsum(seq_len)
    seq_starts = seq_starts[seq_starts < n_images]
    seq_index = np.zeros(n_images, dtype=np.int64)
    seq_index[seq_starts] = 1
    seq_index = np.cumsum(seq_index)
    n_seq = int(seq_index[-1]) + 1
    starts = np.concatenate([[0], seq_starts])
    lengths = np.diff(np.concatenate([starts, [n_images]]))
    frame_num = np.arange(n_images) - starts[seq_index] + 1
    seq_frames = lengths[seq_index]
    seq_loc = rs.integers(0, n_locations, size=n_seq)
    seq_time = (np.datetime64("2010-01-01T00:00:00") +
                rs.integers(0, 6 * 365 * 86400, size=n_seq).astype("timedelta64[s]"))
    names = [c for c in FULL_SCALE_CLASSES if c[1] != "empty"]
    weights = np.array([c[2] for c in names], dtype=float)
    seq_cls = rs.choice(len(names), size=n_seq, p=weights / weights.sum())
    seq_empty = rs.random(n_seq) < empty_fraction
    sizes = [(2048, 1494), (2048, 1536), (2560, 1920), (800, 584)]
    loc_size = rs.integers(0, len(sizes), size=n_locations)
    times = (seq_time[seq_index] + (frame_num - 1).astype("timedelta64[s]")).astype(str)
    images, annotations = [], []
    for i in range(n_images):
        s = int(seq_index[i])
        loc = int(seq_loc[s])
        w, h = sizes[loc_size[loc]]
        images.append({"id": ids[i], "file_name": f"{ids[i]}.jpg", "width": w, "height": h,
                       "location": str(loc), "date_captured": times[i].replace("T", " "),
                       "seq_id": f"seq{s:07d}", "seq_num_frames": int(seq_frames[i]), "frame_num": int(frame_num[i]),
                       "rights_holder": "Justin Brown"})
        cid = 30 if seq_empty[s] else names[seq_cls[s]][0]
        annotations.append({"id": ann_ids[i], "image_id": ids[i], "category_id": cid})
        if i % 97 == 0 and not seq_empty[s]:
            annotations.append({"id": ann_ids[i] + "-b", "image_id": ids[i], "category_id": 10})
    images[12345 % n_images]["date_captured"] = "2012-02-31 25:00:00"
    data = {"info": {"description": "SYNTHETIC full-scale Caltech-Camera-Traps-shaped metadata (no images), "
                                     "generated by trailcam_core.samples.synthetic.write_full_scale_json",
                     "synthetic": True, "version": "synthetic-full-1", "year": 2026, "seed": seed},
            "categories": [{"id": cid, "name": name} for cid, name, _ in FULL_SCALE_CLASSES],
            "images": images, "annotations": annotations}
    return write_bytes(path, msgspec.json.encode(data))
