"""Generated collections for the culling tests and benchmark: JPEG frames with a CCT JSON (species,
locations, bursts of 3 frames, capture times), optionally a broken file; nothing downloaded."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SPECIES = ("coyote", "deer", "bobcat", "empty")


def make_collection(folder: Path, n: int = 36, size: tuple[int, int] = (320, 240), broken: int = 1,
                    seed: int = 0) -> dict:
    """Write ``n`` frames (bursts of 3) and ``cct.json`` into ``folder`` -> facts for the tests."""
    folder.mkdir(parents=True, exist_ok=True)
    rs = np.random.default_rng(seed)
    images, annotations = [], []
    t0 = datetime(2012, 3, 17, 1, 0, 0)
    cats = {name: i + 1 for i, name in enumerate(SPECIES)}
    facts = {"ids": [], "species": {}, "location": {}, "burst": {}, "broken": []}
    for i in range(n):
        burst, frame = divmod(i, 3)
        sp = SPECIES[burst % len(SPECIES)]
        loc = str(10 + burst % 2)
        iid = f"img{i:04d}"
        when = t0 + timedelta(hours=burst * 5, seconds=frame)
        base = np.array([(burst * 47) % 255, (burst * 91) % 255, (burst * 23) % 255], dtype=np.uint8)
        arr = np.empty((size[1], size[0], 3), np.uint8)
        arr[:] = base
        arr = np.clip(arr.astype(int) + rs.integers(-20, 20, arr.shape), 0, 255).astype(np.uint8)
        im = Image.fromarray(arr)
        ImageDraw.Draw(im).ellipse([40 + 30 * frame, 60, 140 + 30 * frame, 160], fill=(250, 250, 250))
        path = folder / f"{iid}.jpg"
        if i in range(n - broken, n):
            path.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
            facts["broken"].append(iid)
        else:
            im.save(path, quality=85)
        images.append({"id": iid, "file_name": path.name, "width": size[0], "height": size[1], "location": loc,
                       "date_captured": when.strftime("%Y-%m-%d %H:%M:%S"), "seq_id": f"seq{burst:03d}",
                       "seq_num_frames": 3, "frame_num": frame + 1})
        annotations.append({"id": f"a{i}", "image_id": iid, "category_id": cats[sp]})
        facts["ids"].append(iid)
        facts["species"][iid], facts["location"][iid], facts["burst"][iid] = sp, loc, f"seq{burst:03d}"
    doc = {"info": {"description": "generated for the culling tests", "synthetic": True}, "images": images,
           "annotations": annotations, "categories": [{"id": v, "name": k} for k, v in cats.items()]}
    (folder / "cct.json").write_text(json.dumps(doc))
    facts["json"] = folder / "cct.json"
    return facts
