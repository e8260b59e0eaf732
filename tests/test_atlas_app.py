"""The Mosaic tab opens an atlas (a real Gradio app on loopback, driven by gradio_client)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _gradio_harness import get_client, get_server
from test_atlas import PYRAMID, _copies, _photos

from trailcam_core.atlas.build import AtlasOptions, build_atlas, open_atlas
from trailcam_core.atlas.sources import AtlasSource

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _path(item) -> Path:
    if isinstance(item, dict):
        item = item.get("path") or item.get("image", {}).get("path")
    return Path(item)


def test_mosaic_tab_opens_an_atlas_its_layers_and_nearest_photos():
    s, c = get_server(), get_client()
    wd = s["ctx"].workdir
    real = _photos(wd / "atlas-src" / "real", 30)
    _copies(real[:2], wd / "atlas-src" / "gen", novel=1)
    build_atlas([AtlasSource(str(wd / "atlas-src" / "real"), "real", "photos"),
                 AtlasSource(str(wd / "atlas-src" / "gen"), "lora", "lora-v1")], wd / "my-atlas",
                AtlasOptions(tile=16, dims=16, real_sample=100), PYRAMID)
    text, picture, favourites, layer, figure = c.predict(folder="my-atlas", api_name="/atlas_open")
    assert "lora-v1: 3 generations" in text and "likely copies" in text and "viewer" in text
    over = Image.open(_path(picture))
    assert _path(favourites).is_file() and _path(figure).is_file()
    tinted, legend = c.predict(layer="source", api_name="/atlas_layer")
    assert "photos (30)" in legend and "lora-v1 (3)" in legend
    assert np.abs(np.asarray(Image.open(_path(tinted)), float) - np.asarray(over, float)).mean() > 5
    # click the cell of a copy: the picked image, its source, its nearest real photo first
    atlas = open_atlas(wd / "my-atlas")
    i = atlas.names.index("copy_1.png")
    r, col = divmod(int(atlas.cell_of[i]), atlas.cols)
    side = over.width / atlas.cols
    picked, info, nearest = c.predict(x=(col + 0.5) * side, y=(r + 0.5) * side, api_name="/atlas_pick")
    assert "copy_1.png" in info and "lora-v1" in info and picked is not None
    assert len(nearest) == 4 and "img_001.jpg" in str(nearest[0])
    with pytest.raises(Exception, match="not an atlas"):
        c.predict(folder="atlas-src", api_name="/atlas_open")
