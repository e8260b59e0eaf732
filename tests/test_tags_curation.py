"""Curation state: favourites, rejects, hand edits, recovery, export, more like this, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trailcam_cli import main
from trailcam_core.tags.captions import CaptionOptions
from trailcam_core.tags.curation import STATE_NAME, ExportOptions, Project, caption_project, export_favorites
from trailcam_core.embed.similar import more_like_this, project_embeddings
from trailcam_core.base.errors import DataError, TrailcamError
from trailcam_core.base.records import ImageRecord
from trailcam_core.tags.model import Tag


def _project(tmp_path: Path, n: int = 4) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    project = Project.open(root)
    for i in range(n):
        colour = (40 * i % 255, 100, 200 - 30 * i)
        Image.new("RGB", (48, 32), colour).save(root / f"img{i}.jpg")
        project.add_record(ImageRecord(f"img{i}", root / f"img{i}.jpg", file_name=f"img{i}.jpg"))
        project.set_auto_tags(f"img{i}", {"species": Tag("coyote" if i % 2 else "deer", "label"),
                                          "time_of_day": Tag("day", "pixels", 0.9)})
    return project


def test_state_round_trip_and_exclusive_marks(tmp_path):
    project = _project(tmp_path)
    project.set_favorite(["img0", "img1"])
    project.set_reject(["img1", "img2"])
    project.save()
    again = Project.open(project.root, create=False)
    assert again.favorites() == ["img0"] and again.rejects() == ["img1", "img2"]
    assert again.tags("img1")["species"] == Tag("coyote", "label")
    assert again.entry("img0")["file"] == "img0.jpg"
    with pytest.raises(TrailcamError, match="nope"):
        again.set_favorite(["nope"])
    with pytest.raises(TrailcamError, match="no curation state"):
        Project.open(tmp_path, create=False)


def test_hand_edits_survive_auto_tagging_unless_asked(tmp_path):
    project = _project(tmp_path)
    project.set_tag("img0", "species", "bobcat")
    project.remove_tag("img0", "time_of_day")
    auto = {"species": Tag("deer", "label"), "time_of_day": Tag("day", "pixels"), "artifact": Tag("clean", "pixels")}
    project.set_auto_tags("img0", auto)
    tags = project.tags("img0")
    assert tags["species"] == Tag("bobcat", "hand") and tags["time_of_day"] == Tag(None, "hand")
    assert tags["artifact"] == Tag("clean", "pixels")
    assert "time_of_day" not in project.visible_tags("img0")
    # stale automatic tags go away when the new run does not produce them
    project.set_auto_tags("img1", {"unreadable": Tag("cannot decode", "pixels")})
    assert set(project.tags("img1")) == {"unreadable"}
    project.set_tag("img0", "mood", "eerie")
    project.set_auto_tags("img0", auto, overwrite_hand=True)
    tags = project.tags("img0")
    assert tags["species"] == Tag("deer", "label") and tags["mood"] == Tag("eerie", "hand")
    project.revert_tag("img0", "mood")
    assert "mood" not in project.tags("img0")
    with pytest.raises(TrailcamError, match="plain name"):
        project.set_tag("img0", "bad key!", 1)


def test_corrupt_state_is_reported_and_the_last_good_copy_kept(tmp_path):
    project = _project(tmp_path)
    project.set_favorite(["img0"])
    project.save()
    project.set_favorite(["img3"])
    project.save()                                   # .bak now holds the first save
    state = project.state_path
    state.write_text('{"format": "trailcam-curation", "images": {')          # a torn write by another tool
    recovered = Project.open(project.root)
    assert recovered.favorites() == ["img0"]
    assert recovered.warnings and STATE_NAME in recovered.warnings[0] and "last good copy" in recovered.warnings[0]
    kept = list(project.root.glob(STATE_NAME + ".corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text().endswith("{")
    assert Project.open(project.root).favorites() == ["img0"]           # restored, even before a save
    recovered.save()
    assert Project.open(project.root).warnings == []
    # nothing good left: a clear error naming the file
    state.write_text("garbage")
    project.backup_path.write_text("garbage too")
    with pytest.raises(DataError, match=STATE_NAME):
        Project.open(project.root)
    assert project.backup_path.read_text() == "garbage too"


def test_a_newer_state_version_is_refused_not_recovered(tmp_path):
    project = _project(tmp_path)
    project.save()
    project.save()
    doc = json.loads(project.state_path.read_text())
    doc["version"] = 99
    project.state_path.write_text(json.dumps(doc))
    with pytest.raises(TrailcamError, match="newer"):
        Project.open(project.root)
    assert json.loads(project.state_path.read_text())["version"] == 99      # left as it was


def test_save_never_replaces_the_backup_with_a_damaged_file(tmp_path):
    project = _project(tmp_path)
    project.save()
    project.save()
    good = project.backup_path.read_text()
    project.state_path.write_text("{broken")
    project.save()                                   # the in-memory state is fine; the backup stays good
    assert project.backup_path.read_text() == good
    assert json.loads(project.state_path.read_text())["format"] == "trailcam-curation"


def test_export_favorites_to_a_kohya_folder(tmp_path):
    project = _project(tmp_path)
    project.set_favorite(["img0", "img1", "img3"])
    project.set_tag("img3", "artifact", "glitch")
    (project.root / "img1.jpg").unlink()                        # gone since tagging: skipped, reported
    project.save()
    out = tmp_path / "train"
    report = export_favorites(project, out, CaptionOptions(trigger="trlcm"), ExportOptions(repeats=2, name="coyotes"))
    sub = out / "2_coyotes"
    assert report.processed == 2 and [s[0] for s in report.skipped] == ["img1"]
    assert sorted(p.name for p in sub.iterdir()) == ["img0.jpg", "img0.txt", "img3.jpg", "img3.txt"]
    assert (sub / "img3.txt").read_text() == "trlcm, trailcam photo, coyote, day, camera glitch\n"
    lines = [json.loads(x) for x in (out / "metadata.jsonl").read_text().splitlines()]
    assert [x["file_name"] for x in lines] == ["2_coyotes/img0.jpg", "2_coyotes/img3.jpg"]
    freq = json.loads((out / "tag_frequency.json").read_text())
    assert freq == {"2_coyotes": {"day": 2, "trailcam photo": 2, "trlcm": 2, "camera glitch": 1, "coyote": 1,
                                  "deer": 1}}
    again = export_favorites(project, out, CaptionOptions(trigger="trlcm"), ExportOptions(repeats=2, name="coyotes"))
    assert again.processed == 0 and again.up_to_date == 2
    with pytest.raises(TrailcamError, match="outside the project"):
        export_favorites(project, project.root / "Favorites")
    with pytest.raises(TrailcamError, match="separator|'..'"):
        export_favorites(project, out, options=ExportOptions(repeats=1, name="../x"))


def test_caption_project_respects_rejects(tmp_path):
    project = _project(tmp_path)
    project.set_reject(["img2"])
    project.save()
    report = caption_project(project.root, CaptionOptions(template="{species}"))
    assert report.processed == 3
    assert not (project.root / "img2.txt").exists() and (project.root / "img1.txt").read_text() == "coyote\n"
    with pytest.raises(TrailcamError, match="no images to caption .*mark favourites first"):
        caption_project(project.root, CaptionOptions(include="favorites"))   # a no-op is an error, not 0 captions


def test_more_like_this_ranks_by_cosine_to_the_mean():
    ids = ["a", "b", "c", "d", "e"]
    vectors = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0.7, 0.7, 0], [-1, 0, 0]], np.float32) * 3
    ranked = more_like_this(["a"], ids, vectors)
    assert [i for i, _ in ranked] == ["b", "d", "c", "e"]
    assert ranked[0][1] == pytest.approx(0.9 / np.hypot(0.9, 0.1), rel=1e-5)
    both = more_like_this(["a", "c"], ids, vectors, exclude=["d"], top=2)
    assert [i for i, _ in both] == ["b", "e"] or [i for i, _ in both][0] == "b"
    assert "d" not in [i for i, _ in both] and len(both) == 2
    with pytest.raises(TrailcamError, match="zz"):
        more_like_this(["zz"], ids, vectors)


def test_more_like_this_with_the_embed_stage(tmp_path):
    from trailcam_core.embed.features import EmbedOptions, embed_images

    project = _project(tmp_path, n=5)
    project.save()
    opts = EmbedOptions(model="trailcam-tiny", pretrained="")
    ids, vectors = project_embeddings(project, embed_options=opts)
    assert sorted(ids) == [f"img{i}" for i in range(5)] and vectors.shape[0] == 5
    assert (project.root / ".trailcam-embed-cache").is_dir()
    saved = embed_images([ImageRecord(i, project.image_path(i), file_name=i) for i in ids], opts)
    saved.save(tmp_path / "emb.npz")
    ids2, vectors2 = project_embeddings(project, tmp_path / "emb.npz")
    np.testing.assert_allclose(vectors2[[ids2.index(i) for i in ids]], vectors, atol=1e-5)
    assert more_like_this(["img0"], ids2, vectors2)[0][0] != "img0"


def test_cli_tag_caption_curate_export(tmp_path, cct_sample_dir, capsys):
    coll = tmp_path / "coll"
    coll.mkdir()
    picks = ["coyote__59673655-23d2-11e8-a6a3-ec086b02610b.jpg", "bird__59a49a6d-23d2-11e8-a6a3-ec086b02610b.jpg"]
    for name in picks:
        with Image.open(cct_sample_dir / name) as im:
            im.draft("RGB", (512, 512))
            im.convert("RGB").save(coll / name)
    (coll / "broken.jpg").write_bytes(b"\xff\xd8 nope")
    assert main(["tag", str(coll), "--workers", "1"]) == 0
    out = capsys.readouterr()
    assert "tag: 2 done" in out.out and "broken.jpg" in out.err
    assert main(["curate", str(coll), "--favorite", picks[0], picks[1], "--set", picks[1], "species=heron",
                 "--list", "favorites"]) == 0
    listed = capsys.readouterr().out
    assert "heron" in listed and "night-flash" in listed
    assert main(["caption", str(coll), "--trigger", "trlcm", "--template", "{species}, {time_of_day}"]) == 0
    assert (coll / picks[1]).with_suffix(".txt").read_text() == "trlcm, heron, day\n"
    assert main(["caption", str(coll), "--template", "{weather}"]) == 1
    assert "{weather}" in capsys.readouterr().err
    assert main(["export-favorites", str(coll), str(tmp_path / "train"), "--repeats", "3", "--trigger", "trlcm",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["processed"] == 2 and (tmp_path / "train" / "3_trailcam" / picks[0]).is_file()
    # hand edit survives a forced re-tag
    assert main(["tag", str(coll), "--force", "--workers", "1"]) == 0
    assert Project.open(coll).tags(picks[1])["species"] == Tag("heron", "hand")


def test_apply_tag_edits_marks_only_changed_keys_as_hand(tmp_path):
    from trailcam_core.tags.curation import Project, parse_tag_lines, tag_lines
    from trailcam_core.base.errors import TrailcamError
    from trailcam_core.tags.model import Tag

    from trailcam_core.base.records import ImageRecord

    project = Project.open(tmp_path / "proj")
    project.add_record(ImageRecord("img1", tmp_path / "proj" / "img1.jpg", file_name="img1.jpg"))
    project.set_auto_tags("img1", {"species": Tag("coyote", "label"), "time_of_day": Tag("day", "pixels"),
                                   "location": Tag("38", "label")})
    text = tag_lines(project, "img1").replace("coyote", "bobcat").replace("location: 38\n", "") + "\nmood: curious"
    changed = project.apply_tag_edits("img1", parse_tag_lines(text))
    assert changed == ["location", "mood", "species"]
    tags = project.tags("img1")
    assert tags["species"].value == "bobcat" and tags["species"].source == "hand"
    assert tags["time_of_day"].source == "pixels"            # untouched keys stay automatic
    assert tags["location"].value is None                    # removed by hand, remembered
    with pytest.raises(TrailcamError, match="line 1 'no colon here'"):
        parse_tag_lines("no colon here")


def test_two_editors_saving_the_same_project_lose_nothing(tmp_path):
    """The app and a CLI run (or an auto-tagging run) with the same project open: each save keeps
    the other's edits; where both changed the same thing, the later save wins for that thing."""
    _project(tmp_path).save()
    root = tmp_path / "proj"
    app, cli = Project.open(root), Project.open(root)
    app.set_favorite(["img0"])
    app.set_tag("img1", "artifact", "glitch")
    app.set_tag("img3", "species", "bobcat")
    app.save()
    cli.set_reject(["img2"])
    cli.remove_tag("img1", "time_of_day")
    cli.set_tag("img3", "species", "coyote")                    # the same tag: the later save wins
    cli.set_auto_tags("img0", {"species": Tag("deer", "label"), "info_bar": Tag("top", "pixels")})
    cli.save()
    final = Project.open(root, create=False)
    assert final.favorites() == ["img0"] and final.rejects() == ["img2"]
    assert final.visible_tags("img1")["artifact"] == Tag("glitch", "hand")
    assert "time_of_day" not in final.visible_tags("img1")
    assert final.visible_tags("img3")["species"] == Tag("coyote", "hand")
    assert final.visible_tags("img0")["info_bar"] == Tag("top", "pixels")
    assert cli.images == final.images                           # the saver now holds the merged state
    # the earlier editor goes on: its next save keeps everything the other one did
    app.set_reject(["img0"])                                    # a reject set here clears the favourite
    app.revert_tag("img1", "artifact")
    app.save()
    final = Project.open(root, create=False)
    assert final.favorites() == [] and final.rejects() == ["img0", "img2"]
    assert "artifact" not in final.tags("img1") and "time_of_day" not in final.visible_tags("img1")
    assert final.visible_tags("img3")["species"] == Tag("coyote", "hand")


def test_concurrent_saves_from_processes_keep_every_edit(tmp_path):
    import subprocess
    import sys

    _project(tmp_path, n=8).save()
    root = tmp_path / "proj"
    script = ("import sys\nfrom trailcam_core.tags.curation import Project\n"
              "p = Project.open(sys.argv[1])\n"
              "for k in range(20):\n"
              "    p.set_tag(sys.argv[2], f'k{k}', k)\n"
              "    p.save()\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(root), f"img{i}"]) for i in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    final = Project.open(root, create=False)
    for i in range(4):
        assert {k: t.value for k, t in final.visible_tags(f"img{i}").items() if k.startswith("k")} == \
            {f"k{k}": k for k in range(20)}
