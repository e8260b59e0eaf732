"""The culling core (trailcam_core.cull): the collection table, filters and counts against pandas,
bursts from sequences and from capture times, the content-keyed thumbnail cache, actions and undo,
best of the burst, stars in the curation state (old files still load), and where state is written."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cull_fixtures import make_collection
from trailcam_core.cull.collection import CullOptions
from trailcam_core.cull.session import CullSession
from trailcam_core.cull.query import Query, run_query
from trailcam_core.cull.thumbs import ThumbnailCache, ThumbnailError
from trailcam_core.tags.curation import STATE_NAME, ExportOptions, Project, export_favorites, state_folder
from trailcam_core.base.errors import DataError, TrailcamError


@pytest.fixture()
def coll(tmp_path):
    return make_collection(tmp_path / "photos", n=24)


@pytest.fixture()
def session(coll, tmp_path):
    wd = tmp_path / "work"
    wd.mkdir()
    return CullSession.open(coll["json"], wd, CullOptions(features="pyramid"))


# ------------------------------------------------------------------------------- where state lives
def test_state_of_an_outside_folder_lives_below_the_work_folder(tmp_path):
    wd, photos = tmp_path / "work", tmp_path / "photos"
    (wd / "crops").mkdir(parents=True)
    photos.mkdir()
    assert state_folder(wd / "crops", wd) == wd / "crops"
    assert state_folder(photos) == photos                     # no work folder: beside the photos (CLI)
    inside = state_folder(photos, wd)
    assert inside.parent == wd / ".trailcam-states" and inside.name.startswith("photos-")
    assert json.loads((inside / "origin.json").read_text())["collection"] == str(photos.resolve())
    assert state_folder(photos, wd) == inside                 # keyed by the folder: stable
    assert state_folder(tmp_path / "other" / "photos", wd) != inside


def test_the_culling_session_writes_nothing_beside_outside_photos(session, coll):
    session.act([coll["ids"][0]], "favorite")
    folder = Path(coll["json"]).parent
    assert not (folder / STATE_NAME).exists() and not list(folder.glob(".trailcam*"))
    assert session.col.project.root.parent.name == ".trailcam-states"
    assert Project.open(session.col.project.root).images[coll["ids"][0]]["favorite"] is True


# ------------------------------------------------------------------------------- stars in the state
def test_stars_keep_old_state_files_readable_and_merge(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    old = {"format": "trailcam-curation", "version": 1,
           "images": {"a": {"file": "a.jpg", "favorite": True, "reject": False, "tags": {}},
                      "b": {"file": "b.jpg", "favorite": False, "reject": False, "tags": {}}}}
    (root / STATE_NAME).write_text(json.dumps(old))
    one, two = Project.open(root), Project.open(root)
    assert one.stars("a") == 0
    one.set_stars(["a"], 5)
    one.save()
    two.set_favorite(["b"])
    two.save()                                                # merges onto one's save
    three = Project.open(root)
    assert three.stars("a") == 5 and three.favorites() == ["a", "b"]
    with pytest.raises(TrailcamError, match="0 to 5"):
        three.set_stars(["a"], 6)
    bad = json.loads((root / STATE_NAME).read_text())
    bad["images"]["a"]["stars"] = "lots"
    (root / STATE_NAME).write_text(json.dumps(bad))
    recovered = Project.open(root)                            # damaged -> the last good copy, and a warning
    assert recovered.warnings and "stars" in recovered.warnings[0]


def test_export_takes_stars_at_least(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    for name in ("a", "b", "c"):
        Image.new("RGB", (32, 32), "red").save(root / f"{name}.jpg")
    from trailcam_core.base.records import ImageRecord

    project = Project.open(root)
    for name in ("a", "b", "c"):
        project.add_record(ImageRecord(image_id=name, path=root / f"{name}.jpg"))
    project.set_stars(["a"], 4)
    project.set_stars(["b"], 2)
    project.set_favorite(["b", "c"])
    project.save()
    report = export_favorites(project, tmp_path / "out", options=ExportOptions(include="all", min_stars=3))
    assert sorted(p.name for p in (tmp_path / "out").glob("*.jpg")) == ["a.jpg"] and report.processed == 1
    report = export_favorites(project, tmp_path / "out2", options=ExportOptions(include="favorites", min_stars=2))
    assert sorted(p.name for p in (tmp_path / "out2").glob("*.jpg")) == ["b.jpg"]


# ------------------------------------------------------------------------------- filters and counts
def test_filters_and_counts_match_pandas(session, coll):
    df = session.col.df
    session.act(coll["ids"][:4], "favorite")
    session.act(coll["ids"][4:6], "reject")
    session.act(coll["ids"][:2], "stars", 3)
    rs = np.random.default_rng(0)
    for _ in range(30):
        q = Query(species=list(rs.choice(["coyote", "deer", "bobcat", "empty"], rs.integers(0, 3), replace=False)),
                  location=list(rs.choice(["10", "11"], rs.integers(0, 2), replace=False)),
                  flag=str(rs.choice(["any", "favorite", "reject", "unflagged", "not-rejected"])),
                  min_stars=int(rs.choice([0, 0, 3])), sort=str(rs.choice(["time", "-time", "file"])))
        res = run_query(session.col, q)
        m = np.ones(len(df), bool)
        if q.species:
            m &= df["species"].isin(q.species).to_numpy()
        if q.location:
            m &= df["location"].isin(q.location).to_numpy()
        fav, rej = df["favorite"].to_numpy(), df["reject"].to_numpy()
        m &= {"any": np.ones(len(df), bool), "favorite": fav, "reject": rej, "unflagged": ~fav & ~rej,
              "not-rejected": ~rej}[q.flag]
        if q.min_stars:
            m &= df["stars"].to_numpy() >= q.min_stars
        assert sorted(res.rows.tolist()) == np.flatnonzero(m).tolist(), q
        # a facet's counts leave its own filter out
        others = m.copy() if not q.species else None
        if others is not None:
            want = df[others]["species"].value_counts()
            assert res.counts["species"] == {k: int(v) for k, v in want.items() if v}
    t = df["datetime"].to_numpy()
    res = run_query(session.col, Query(sort="time"))
    assert (np.diff(t[res.rows].astype("int64")) >= 0).all()
    res = run_query(session.col, Query(date_from="2012-03-17", date_to="2012-03-17"))
    assert res.matched == int((df["datetime"].dt.date.astype(str) == "2012-03-17").sum()) > 0


def test_query_bad_input_names_what_is_wrong():
    with pytest.raises(TrailcamError, match="unknown filter 'colour'"):
        Query.from_dict({"colour": ["red"]})
    with pytest.raises(TrailcamError, match="unknown sort"):
        Query.from_dict({"sort": "random"})
    with pytest.raises(TrailcamError, match="not a date"):
        Query.from_dict({"date_from": "yesterday"})
    with pytest.raises(TrailcamError, match="similar_to"):
        Query.from_dict({"sort": "similar"})


# ------------------------------------------------------------------------------- bursts
def test_bursts_from_sequences_stack_and_best_of_burst(session, coll):
    res = run_query(session.col, Query(stack_bursts=True))
    assert len(res.rows) == 8 and res.matched == 24 and set(res.burst_size.tolist()) == {3}
    b = int(session.col.df["burst"].to_numpy()[res.rows[2]])
    res2 = run_query(session.col, Query(stack_bursts=True, expanded=[b]))
    assert len(res2.rows) == 10
    out = session.best_of_burst(int(res.rows[2]))
    rows = session.burst_rows(int(res.rows[2]))
    st = session.col.df.loc[rows]
    assert st["favorite"].sum() == 1 and st["reject"].sum() == 2
    session.undo()
    st = session.col.df.loc[rows]
    assert st["favorite"].sum() == 0 and st["reject"].sum() == 0
    assert out["best"] in st["id"].tolist()


def test_best_of_burst_prefers_stars_then_sharpness(session):
    rows = session.burst_rows(0)
    ids = session.col.df["id"].to_numpy()[rows].tolist()
    session.act([ids[2]], "stars", 2)
    assert session.best_of_burst(int(rows[0]))["best"] == ids[2]


def test_folder_bursts_from_capture_times(tmp_path):
    folder = tmp_path / "cam"
    folder.mkdir()
    t0 = datetime(2020, 5, 1, 22, 0, 0)
    offsets = [0, 2, 4, 60, 62, 600]                   # bursts: 3 frames, 2 frames, 1 frame
    for k, dt in enumerate(offsets):
        im = Image.new("RGB", (64, 48), (k * 40, 10, 10))
        exif = Image.Exif()
        exif.get_ifd(0x8769)[36867] = (t0 + timedelta(seconds=dt)).strftime("%Y:%m:%d %H:%M:%S")
        im.save(folder / f"IMG_{k:04d}.jpg", exif=exif)
    wd = tmp_path / "work"
    s = CullSession.open(folder, wd, CullOptions(burst_gap=5))
    df = s.col.df.sort_values("datetime")
    assert df.groupby("burst").size().sort_values().tolist() == [1, 2, 3]
    assert df["frame"].tolist() == [1, 2, 3, 1, 2, 1]


# ------------------------------------------------------------------------------- actions and undo
def test_actions_save_at_once_and_undo_in_order(session, coll):
    a, b = coll["ids"][:2]
    root = session.col.project.root
    session.act([a], "favorite")
    assert Project.open(root).images[a]["favorite"] is True
    session.act([a], "reject")
    e = Project.open(root).images[a]
    assert e["reject"] is True and e["favorite"] is False
    session.act([a, b], "tag", "eerie", key="mood")
    session.act([a], "stars", 5)
    assert Project.open(root).images[a]["stars"] == 5
    session.undo()
    session.undo()
    assert "mood" not in Project.open(root).images[a]["tags"] and Project.open(root).images[a]["stars"] == 0
    session.undo()
    e = Project.open(root).images[a]
    assert e["favorite"] is True and e["reject"] is False
    session.undo()
    assert Project.open(root).images[a]["favorite"] is False
    with pytest.raises(TrailcamError, match="nothing to undo"):
        session.undo()


def test_actions_bad_input(session, coll):
    with pytest.raises(TrailcamError, match="unknown action"):
        session.act([coll["ids"][0]], "delete")
    with pytest.raises(TrailcamError, match="0 to 5"):
        session.act([coll["ids"][0]], "stars", 9)
    with pytest.raises(TrailcamError, match="not in the collection"):
        session.act(["nope"], "favorite")
    with pytest.raises(TrailcamError, match="no image selected"):
        session.act([], "favorite")
    with pytest.raises(TrailcamError, match="needs a value"):
        session.act([coll["ids"][0]], "tag", "", key="mood")
    assert not session.undo_stack                          # nothing half-done was recorded


def test_edits_of_another_program_are_kept_and_shown(session, coll):
    a, b = coll["ids"][:2]
    other = Project.open(session.col.project.root)
    other.images.setdefault(b, {"file": "", "favorite": False, "reject": False, "tags": {}})
    other.set_reject([b])
    other.save()
    session.act([a], "favorite")                               # merges onto the other's save
    e = Project.open(session.col.project.root).images
    assert e[a]["favorite"] and e[b]["reject"]
    assert bool(session.col.df.loc[session.col.rows([b])[0], "reject"])


# ------------------------------------------------------------------------------- thumbnails
def test_thumbnail_cache_is_content_keyed_and_reports_bad_files(tmp_path, coll):
    src = Path(coll["json"]).parent
    cache = ThumbnailCache(tmp_path / "thumbs", size=96)
    good = src / f"{coll['ids'][0]}.jpg"
    data = cache.get(good)
    im = Image.open(__import__("io").BytesIO(data))
    assert max(im.size) == 96 and im.format == "JPEG"
    copy = tmp_path / "copy.jpg"
    shutil.copy(good, copy)
    cache.get(copy)
    assert len(list((tmp_path / "thumbs").rglob("*.jpg"))) == 1      # same bytes, same thumbnail
    with pytest.raises(ThumbnailError, match="corrupt|cannot decode"):
        cache.get(src / f"{coll['broken'][0]}.jpg")
    with pytest.raises(ThumbnailError, match="file not found"):
        cache.get(tmp_path / "gone.jpg")
    report = cache.build([src / f"{i}.jpg" for i in coll["ids"]], workers=2)
    assert report.processed == 22 and report.up_to_date == 1 and len(report.skipped) == 1
    again = ThumbnailCache(tmp_path / "thumbs", size=96).build([src / f"{i}.jpg" for i in coll["ids"][:-1]])
    assert again.up_to_date == 23 and again.processed == 0            # the index survives a restart


def test_loupe_preview_and_details(session, coll):
    data = session.preview(0, side=200)
    assert max(Image.open(__import__("io").BytesIO(data)).size) <= 320
    d = session.details(0)
    assert d["location"] in ("10", "11") and len(d["burst"]) == 3 and d["time"].startswith("2012-03-17")
    broken = session.col.rows([coll["broken"][0]])[0]
    with pytest.raises(ThumbnailError):
        session.thumbnail(broken)
    assert session.job.failed[coll["broken"][0]]


def test_similarity_and_map(session, coll):
    sims = session.similarity(coll["ids"][0])
    assert sims[0] == pytest.approx(1.0, abs=1e-5)
    assert sims[session.col.rows([coll["broken"][0]])[0]] == -2.0
    res = run_query(session.col, Query(sort="similar", similar_to=coll["ids"][0]), sims)
    assert res.rows[0] == 0
    m = session.map_layout(res.rows)
    cells = [c for _, c in m["cells"]]
    assert len(cells) == 23 and len(set(cells)) == 23 and max(cells) < m["cols"] * m["rows"]


def test_open_bad_collections(tmp_path):
    with pytest.raises(TrailcamError, match="not found"):
        CullSession.open(tmp_path / "missing", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrailcamError):
        CullSession.open(tmp_path / "empty", tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TrailcamError):
        CullSession.open(bad, tmp_path)


def test_cli_rates_stars_into_the_same_state(tmp_path, capsys):
    from trailcam_cli import main

    root = tmp_path / "p"
    root.mkdir()
    (root / STATE_NAME).write_text(json.dumps({"format": "trailcam-curation", "version": 1, "images": {
        "a": {"file": "a.jpg", "favorite": False, "reject": False, "tags": {}},
        "b": {"file": "b.jpg", "favorite": False, "reject": False, "tags": {}}}}))
    assert main(["curate", str(root), "--stars", "4", "a", "b", "--stars", "2", "b"]) == 0
    p = Project.open(root)
    assert (p.stars("a"), p.stars("b")) == (4, 2)
    assert main(["curate", str(root), "--stars", "9", "a"]) == 1
    assert "0 to 5" in capsys.readouterr().err
    assert Project.open(root).stars("a") == 4


def test_a_folder_of_crops_takes_labels_times_and_bursts_from_metadata(coll, tmp_path):
    folder = tmp_path / "crops"
    folder.mkdir()
    for i in coll["ids"][:-1]:                    # crops are named <image_id>.jpg
        shutil.copy(Path(coll["json"]).parent / f"{i}.jpg", folder / f"{i}.jpg")
    s = CullSession.open(folder, tmp_path / "work", CullOptions(metadata=str(coll["json"])))
    df = s.col.df
    assert len(df) == 23
    for row in df.itertuples():
        stem = Path(row.id).stem
        assert row.species == coll["species"][stem] and row.location == coll["location"][stem]
    sizes = df.groupby("burst").size()
    assert sorted(sizes.tolist()) == [2] + [3] * 7          # the sequences of the JSON (one frame missing)
    assert str(df["datetime"].min()).startswith("2012-03-17")


def test_each_page_undoes_only_its_own_actions(session, coll):
    a, b = coll["ids"][:2]
    session.act([a], "favorite", client="page1")
    session.act([b], "reject", client="page2")
    assert session.undo("page1")["states"][0]["id"] == a
    with pytest.raises(TrailcamError, match="nothing to undo"):
        session.undo("page1")
    e = Project.open(session.col.project.root).images
    assert e[a]["favorite"] is False and e[b]["reject"] is True
