"""The ComfyUI side reads the culling state: CuratedSubset keeps favourites / stars >= N of the
folder's curation file, and SaveCaptionedDataset after it writes only those (a real ComfyUI)."""
from __future__ import annotations

import copy

import pytest

from comfy_workflows import WF_SUBSET, load

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _graph(keep: str, min_stars: int, folder: str, curation: str = "trailcam_sample") -> dict:
    _, api = load(WF_SUBSET)
    node = lambda t: copy.deepcopy(next(n for n in api.values() if n["class_type"] == t))  # noqa: E731
    src, tag, save = node("LoadTrailcamSubset"), node("AutoTagCaptions"), node("SaveCaptionedDataset")
    src["inputs"]["max_total"] = 12
    tag["inputs"]["subset"] = ["2", 0]
    save["inputs"].update(subset=["3", 0], folder=folder, format="jpg")
    return {"1": src, "2": {"class_type": "CuratedSubset", "inputs": {"subset": ["1", 1], "curation": curation,
                                                                       "keep": keep, "min_stars": min_stars}},
            "3": tag, "4": save}


def _saved(comfy_server, folder: str) -> list[str]:
    return sorted(p.stem for p in (comfy_server.output_dir / folder).glob("*.jpg"))


def test_curated_subset_exports_only_the_picks(comfy_server):
    from trailcam_core.cull.collection import CullOptions
    from trailcam_core.cull.session import CullSession

    sample = comfy_server.input_dir / "trailcam_sample"
    # cull with the core the culling page uses; its state lands in the sample folder (inside its work folder)
    s = CullSession.open(sample / "sample_cct.json", workdir=sample, options=CullOptions(features="pyramid"))
    s.act([s.col.df["id"][0]], "reject")           # some state must exist before "all" runs
    comfy_server.run(_graph("all", 0, "cull/all"))
    ids = _saved(comfy_server, "cull/all")
    assert len(ids) == 12
    s.undo()
    s.act(ids[:2], "favorite")
    s.act([ids[1], ids[5]], "stars", 4)
    s.act([ids[7]], "reject")
    comfy_server.run(_graph("favorites", 0, "cull/favs"))
    assert _saved(comfy_server, "cull/favs") == ids[:2]
    comfy_server.run(_graph("all", 4, "cull/stars"))
    assert _saved(comfy_server, "cull/stars") == sorted([ids[1], ids[5]])
    comfy_server.run(_graph("not-rejected", 0, "cull/kept"))
    assert _saved(comfy_server, "cull/kept") == [i for i in ids if i != ids[7]]
    status, body = comfy_server.submit(_graph("favorites", 0, "cull/bad", curation="../outside"))
    assert status != 200 or body.get("node_errors"), body
