"""Charts: the same code draws CCT labels and detector labels; PNGs written atomically."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from trailcam_core.ingest import charts
from trailcam_core.ingest.dataset import load_dataset
from trailcam_core.base.errors import TrailcamError


@pytest.fixture(scope="module")
def ds(sample_cct, tmp_path_factory):
    return load_dataset(sample_cct, cache_dir=tmp_path_factory.mktemp("cache"))


def _png(path):
    img = Image.open(path)
    assert img.format == "PNG"
    return np.asarray(img.convert("RGB"))


def test_bar_chart_of_annotations(ds, tmp_path):
    table = charts.annotation_table(ds)
    assert len(table) == len(ds.annotations) and table["location"].notna().all()
    out = charts.category_bar_chart(table, tmp_path / "bars.png", unit="annotations")
    px = _png(out)
    assert px.shape[0] > 200 and px.std() > 10
    counts = charts.category_counts(table)
    assert counts.index[0] == "empty" and counts.is_monotonic_decreasing
    assert not list(tmp_path.glob(".*"))


def test_same_code_draws_detector_labels(tmp_path):
    det = pd.DataFrame({"category": ["animal", "animal", "person", "vehicle ", "vehicle", None],
                        "location": ["a", "b", "a", "b", "b", "a"], "conf": [0.9, 0.8, 0.3, 0.95, 0.9, 0.5]})
    counts = charts.category_counts(det)
    assert counts.to_dict() == {"animal": 2, "vehicle": 2, "person": 1, "unlabelled": 1}   # stray space folded
    charts.category_bar_chart(det, tmp_path / "det.png", top=2)
    pivot = charts.location_category_counts(det)
    assert pivot.loc["b", "vehicle"] == 2 and pivot.to_numpy().sum() == 6
    _png(charts.location_heatmap(det, tmp_path / "heat.png"))


def test_heatmap_orders_locations_naturally(ds, tmp_path):
    table = charts.image_table(ds)
    pivot = charts.location_category_counts(table)
    assert list(pivot.index) == ["26", "38", "43", "61"] and pivot.to_numpy().sum() == len(ds.images)
    many = pd.DataFrame({"location": [str(i) for i in range(100)] * 2, "category": ["a", "b"] * 100})
    small = charts.location_category_counts(many, max_locations=10)
    assert len(small) == 10
    _png(charts.location_heatmap(many, tmp_path / "many.png"))


def test_write_charts_for_dataset_and_table(ds, tmp_path):
    report = charts.write_charts(ds, tmp_path / "c", charts.ChartOptions(per="image", log=True))
    assert (tmp_path / "c" / "categories.png").is_file() and (tmp_path / "c" / "locations.png").is_file()
    assert report.processed == len(ds.images)
    only_cat = pd.DataFrame({"category": ["x", "y", "x"]})
    r = charts.write_charts(only_cat, tmp_path / "d")
    assert "locations" not in r.outputs and (tmp_path / "d" / "categories.png").is_file()


def test_bad_tables_give_clear_errors(tmp_path):
    with pytest.raises(TrailcamError, match="lacks column"):
        charts.category_bar_chart(pd.DataFrame({"label": ["a"]}), tmp_path / "x.png")
    with pytest.raises(TrailcamError, match="no rows"):
        charts.location_heatmap(pd.DataFrame({"category": [], "location": []}), tmp_path / "x.png")
    with pytest.raises(TrailcamError, match="png"):
        charts.category_bar_chart(pd.DataFrame({"category": ["a"]}), tmp_path / "x.jpg")


def test_loss_curve_image(tmp_path):
    import numpy as np

    from trailcam_core.ingest.charts import loss_curve

    losses = list(np.linspace(1.0, 0.2, 60) + np.random.default_rng(0).normal(0, 0.05, 60))
    img = loss_curve(losses, "run", out_png=tmp_path / "loss.png")
    assert (tmp_path / "loss.png").is_file() and img.size == (600, 320)
    assert np.asarray(img).std() > 5                      # a drawn curve, not a blank canvas
    assert loss_curve([], "empty").size == (600, 320)     # nothing trained yet: still an image
