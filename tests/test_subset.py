"""Subset filters, sequence policies, caps, CCT/manifest output and Sorted/<category>/ folders."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from trailcam_core.ingest.dataset import load_dataset
from trailcam_core.base.errors import TrailcamError
from trailcam_core.subset.select import SubsetOptions, folder_name, location_summary, make_subset, parse_hours


@pytest.fixture(scope="module")
def ds(sample_cct, tmp_path_factory):
    return load_dataset(sample_cct, cache_dir=tmp_path_factory.mktemp("cache"))


def test_no_options_keeps_everything(ds):
    sub = make_subset(ds)
    assert len(sub) == len(ds.images) and len(sub.annotations) == len(ds.annotations)


def test_locations_and_unknown_location_lists_valid_ones(ds):
    sub = make_subset(ds, SubsetOptions(locations=["26", "38"]))
    assert set(sub.images["location"]) == {"26", "38"}
    assert set(sub.annotations["image_id"]) <= set(sub.images["image_id"])
    with pytest.raises(TrailcamError, match=r"unknown location '999'; valid locations: 26, 38, 43, 61"):
        make_subset(ds, SubsetOptions(locations=["999"]))


def test_categories_include_exclude_and_empty_handling(ds):
    coyote = make_subset(ds, SubsetOptions(categories=["Coyote"]))
    assert all("coyote" in set(ds.annotations[ds.annotations.image_id == i].category) for i in coyote.images.image_id)
    no_coyote = make_subset(ds, SubsetOptions(exclude_categories=["coyote"]))
    assert len(coyote) + len(no_coyote) == len(ds.images)
    only_empty = make_subset(ds, SubsetOptions(empty="only"))
    assert set(only_empty.images["label"]) == {"empty"}
    no_empty = make_subset(ds, SubsetOptions(empty="exclude"))
    assert "empty" not in set(no_empty.images["label"].dropna())
    assert len(only_empty) + len(no_empty) == len(ds.images)
    labelled = make_subset(ds, SubsetOptions(unlabelled="exclude"))
    assert labelled.images["label"].notna().all() and len(labelled) == len(ds.images) - 1
    with pytest.raises(TrailcamError, match="unknown category 'unicorn'.*valid categories: .*coyote"):
        make_subset(ds, SubsetOptions(categories=["unicorn"]))


def test_date_and_hour_filters(ds):
    year = make_subset(ds, SubsetOptions(date_from="2013-01-01", date_to="2013-12-31"))
    assert (year.images["datetime"].dt.year == 2013).all() and len(year) > 0
    night = make_subset(ds, SubsetOptions(hours="20-6"))
    hours = night.images["datetime"].dt.hour
    assert ((hours >= 20) | (hours < 6)).all()
    day = make_subset(ds, SubsetOptions(time_of_day="day"))
    assert day.images["datetime"].dt.hour.between(6, 17).all()
    assert len(day) + len(make_subset(ds, SubsetOptions(time_of_day="night"))) == ds.images["datetime"].notna().sum()
    # the renderer's ground truth agrees with the capture hour
    truth = {r.image_id: r.extra["synthetic"]["is_night"] for r in night.records()}
    assert all(truth.values())
    assert parse_hours("6-18") == (6, 18)
    for bad in ("6", "25-3", "5-5", "a-b"):
        with pytest.raises(TrailcamError, match="hour"):
            parse_hours(bad)
    with pytest.raises(TrailcamError, match="not a date"):
        make_subset(ds, SubsetOptions(date_from="yesterday-ish"))


def test_empty_subset_names_the_filter_that_emptied_it(ds):
    with pytest.raises(TrailcamError) as err:
        make_subset(ds, SubsetOptions(locations=["26"], date_from="2030-01-01"))
    assert "date range 2030-01-01" in str(err.value) and "locations=26:" in str(err.value)


@pytest.mark.parametrize("policy", ["first", "middle", "one"])
def test_sequence_policies_keep_one_frame_per_sequence(ds, policy):
    sub = make_subset(ds, SubsetOptions(sequence=policy, seed=4))
    assert sub.images["seq_id"].is_unique
    assert set(sub.images["seq_id"]) == set(ds.images["seq_id"])
    frames = sub.images.set_index("seq_id")["frame_num"]
    sizes = ds.images.groupby("seq_id").size()
    if policy == "first":
        assert (frames == 1).all()
    if policy == "middle":
        three = sizes[sizes == 3].index
        assert (frames.loc[three] == 2).all()
    if policy == "one":
        again = make_subset(ds, SubsetOptions(sequence="one", seed=4))
        assert again.images["image_id"].tolist() == sub.images["image_id"].tolist()
        other = [make_subset(ds, SubsetOptions(sequence="one", seed=s)).images["image_id"].tolist() for s in range(5)]
        assert len({tuple(o) for o in other}) > 1


def test_caps_are_seeded_and_respected(ds):
    sub = make_subset(ds, SubsetOptions(max_per_category=3, seed=1))
    assert sub.images["label"].fillna("unlabelled").value_counts().max() == 3
    assert make_subset(ds, SubsetOptions(max_per_category=3, seed=1)).images.equals(sub.images)
    total = make_subset(ds, SubsetOptions(max_total=10, seed=2))
    assert len(total) == 10
    order = ds.images.reset_index().set_index("image_id")["index"]
    assert order.loc[total.images["image_id"]].is_monotonic_increasing      # dataset order kept


def test_write_cct_reads_back_identically_and_keeps_extra_fields(ds, tmp_path):
    sub = make_subset(ds, SubsetOptions(locations=["26", "43"], empty="exclude"))
    path = sub.write_cct(tmp_path / "out" / "subset.json")
    back = load_dataset(path, use_cache=False)
    pd.testing.assert_frame_equal(back.images, sub.images)
    pd.testing.assert_frame_equal(back.annotations, sub.annotations)
    assert back.root == ds.root.resolve() and back.image_path(back.images.file_name[0]).is_file()
    doc = json.loads(path.read_text())
    assert doc["images"][0]["synthetic"] and doc["info"]["synthetic"] is True
    assert doc["info"]["subset"]["options"]["locations"] == ["26", "43"]
    assert {c["id"] for c in doc["categories"]} == set(ds.categories)
    assert not list((tmp_path / "out").glob(".*"))                          # no temp files left


def test_write_cct_from_a_folder_dataset_round_trips(tmp_path, sample_cct):
    src = tmp_path / "cams" / "north"
    src.mkdir(parents=True)
    for p in sorted(Path(sample_cct).parent.glob("*.jpg"))[:4]:
        shutil.copy(p, src / p.name)
    ds = load_dataset(tmp_path / "cams", use_cache=False)
    sub = make_subset(ds)
    back = load_dataset(sub.write_cct(tmp_path / "sub.json"), use_cache=False)
    pd.testing.assert_frame_equal(back.images.drop(columns=["label"]), sub.images.drop(columns=["label"]))


def test_manifest_csv_and_parquet(ds, tmp_path):
    sub = make_subset(ds, SubsetOptions(locations=["38"]))
    csv_path, pq_path = sub.write_manifest(tmp_path / "manifest")
    csv = pd.read_csv(csv_path)
    pq = pd.read_parquet(pq_path)
    assert len(csv) == len(pq) == len(sub)
    for col in ("image_id", "file_name", "location", "datetime", "label", "labels", "n_boxes", "path"):
        assert col in csv.columns and col in pq.columns
    assert Path(pq["path"][0]).is_file()
    assert pq["n_boxes"].sum() == sub.annotations["bbox_x"].notna().sum()


@pytest.mark.parametrize("mode", ["copy", "hardlink", "symlink"])
def test_sort_into_category_folders(ds, tmp_path, mode):
    sub = make_subset(ds, SubsetOptions(locations=["38", "61"]))
    report = sub.sort_images(tmp_path, mode=mode)
    assert report.processed == len(sub) and not report.skipped
    sorted_root = tmp_path / "Sorted"
    counts = {d.name: len(list(d.iterdir())) for d in sorted_root.iterdir()}
    assert counts == sub.images["label"].fillna("unlabelled").value_counts().to_dict()
    one = next((sorted_root / "empty").iterdir())
    if mode == "symlink":
        assert one.is_symlink() and one.resolve().is_file()
    elif mode == "hardlink":
        assert one.stat().st_nlink >= 2
    else:
        assert not one.is_symlink() and one.stat().st_nlink == 1
    again = sub.sort_images(tmp_path, mode=mode)
    assert again.processed == 0 and again.up_to_date == len(sub)


def test_sort_reports_missing_images_and_keeps_going(ds, tmp_path, sample_cct):
    root = tmp_path / "imgs"
    shutil.copytree(Path(sample_cct).parent, root)
    mine = load_dataset(root / Path(sample_cct).name, use_cache=False)
    victim = mine.images["file_name"].iloc[0]
    (root / victim).unlink()
    sub = make_subset(mine)
    report = sub.sort_images(tmp_path / "out", mode="copy")
    assert [s[0] for s in report.skipped] == [victim] and "missing on disk" in report.skipped[0][1]
    assert report.processed == len(sub) - 1


def test_folder_names_are_safe():
    assert folder_name("../etc") == "_etc" or "/" not in folder_name("../etc")
    assert folder_name(None) == "unlabelled" and folder_name("..") == "unlabelled"
    assert folder_name("mountain lion") == "mountain lion"


def test_location_summary(ds):
    table = location_summary(ds)
    assert list(table.index) == ["26", "38", "43", "61"] and table.to_numpy().sum() == len(ds.images)
    assert os.path.basename("x") == "x"
