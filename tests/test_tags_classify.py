"""Zero-shot classification with a tiny random open_clip model, end to end through CCT JSON."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from trailcam_cli import main
from trailcam_core.tags.classify import ClassifyOptions, classify_records, classify_to_cct
from trailcam_core.models.clip import load_clip
from trailcam_core.tags.curation import Project
from trailcam_core.base.errors import TrailcamError
from trailcam_core.tags.auto import TagOptions, folder_records, tag_collection

TINY = dict(model="trailcam-tiny", pretrained="")


@pytest.fixture
def unlabelled_sample(sample_cct, tmp_path):
    """A copy of the synthetic sample whose first 6 images lost their annotations."""
    dest = tmp_path / "sample"
    shutil.copytree(sample_cct.parent, dest)
    path = dest / sample_cct.name
    doc = json.loads(path.read_text())
    stripped = [im["id"] for im in doc["images"][:6]]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] not in stripped]
    labelled = {a["image_id"] for a in doc["annotations"]}
    stripped = [im["id"] for im in doc["images"] if im["id"] not in labelled]   # the sample may hold more
    path.write_text(json.dumps(doc))
    return path, stripped, doc


def test_top_k_scores_from_the_tiny_model(tmp_path):
    for i in range(3):
        Image.new("RGB", (80, 60), (60 * i, 120, 200 - 50 * i)).save(tmp_path / f"{i}.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    labels = ["coyote", "bobcat", "mountain_lion", "deer"]
    seen = []
    results, report = classify_records(folder_records(tmp_path), labels, ClassifyOptions(top_k=3, **TINY),
                                       progress=lambda d, t, m="", p=None: seen.append((d, t)))
    assert sorted(results) == ["0.png", "1.png", "2.png"] and report.skipped[0][0] == "bad.png"
    for top in results.values():
        assert len(top) == 3
        scores = [s for _, s in top]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-5
        assert {n for n, _ in top} <= set(labels) | {"empty"}
    assert seen[-1] == (4, 4)
    # the scores are the model's own softmax over the prompts
    clip = load_clip("trailcam-tiny", None)
    img = clip.encode_images([Image.open(tmp_path / "0.png")])
    txt = clip.encode_texts([f"a camera trap photo of a {n.replace('_', ' ')}" for n in labels]
                            + [ClassifyOptions().empty_prompt])
    probs = clip.zero_shot(img, txt)[0]
    assert results["0.png"][0][1] == pytest.approx(float(probs.max()), rel=1e-4)


def test_classify_to_cct_writes_scored_annotations(unlabelled_sample):
    path, stripped, before = unlabelled_sample
    out = path.with_name("zs.json")
    report = classify_to_cct(path, out, ClassifyOptions(top_k=2, **TINY))
    n = len(stripped)
    assert report.processed == n and report.up_to_date == len(before["images"]) - n
    doc = json.loads(out.read_text())
    new = [a for a in doc["annotations"] if "score" in a]
    assert sorted({a["image_id"] for a in new}) == sorted(stripped) and len(new) == 2 * n
    assert all(a["source"] == "zero-shot trailcam-tiny/random" for a in new)
    names = {c["id"]: c["name"] for c in doc["categories"]}
    assert {names[a["category_id"]] for a in new} <= set(names.values())
    assert len(doc["annotations"]) == len(before["annotations"]) + 2 * n        # hand labels kept
    assert doc["images"] == before["images"] and doc["info"]["zero_shot"]["top_k"] == 2
    assert json.loads(path.read_text()) == before                           # the source is untouched
    # rerunning on its own output replaces the earlier zero-shot annotations
    out2 = path.with_name("zs2.json")
    classify_to_cct(out, out2, ClassifyOptions(top_k=1, **TINY))
    again = [a for a in json.loads(out2.read_text())["annotations"] if "score" in a]
    assert len(again) == n
    # the dataset loader reads the scores; tagging marks those species as the model's
    from trailcam_core.ingest.dataset import load_dataset

    ds = load_dataset(out, use_cache=False)
    assert ds.annotations["score"].notna().sum() == 2 * n
    tag_collection(out, project_dir=path.parent / "proj", options=TagOptions(workers=1, min_label_score=0.0))
    project = Project.open(path.parent / "proj")
    sp = project.tags(stripped[0])["species"]
    assert sp.source == "model" and 0 < sp.score <= 1
    other = next(im["id"] for im in before["images"] if im["id"] not in stripped)
    assert project.tags(other)["species"].source == "label"


def test_folder_source_and_bad_options(tmp_path):
    for i in range(2):
        Image.new("RGB", (40, 30), (100, 50 * i, 20)).save(tmp_path / f"{i}.jpg")
    with pytest.raises(TrailcamError, match="labels"):
        classify_to_cct(tmp_path, options=ClassifyOptions(**TINY))
    report = classify_to_cct(tmp_path, options=ClassifyOptions(labels=["cat", "dog"], top_k=1, **TINY))
    doc = json.loads((tmp_path / "zeroshot_cct.json").read_text())
    assert report.outputs["cct"] == tmp_path / "zeroshot_cct.json"
    assert [im["file_name"] for im in doc["images"]] == ["0.jpg", "1.jpg"] and len(doc["annotations"]) == 2
    with pytest.raises(TrailcamError, match="label"):
        classify_to_cct(tmp_path, options=ClassifyOptions(labels=["cat"], prompt="a photo", **TINY))
    with pytest.raises(TrailcamError, match="unknown CLIP model"):
        classify_to_cct(tmp_path, options=ClassifyOptions(labels=["cat"], model="no-such-model", pretrained=""))
    with pytest.raises(TrailcamError, match="new file"):
        classify_to_cct(tmp_path / "zeroshot_cct.json", tmp_path / "zeroshot_cct.json",
                        ClassifyOptions(labels=["cat"], **TINY))


def test_cli_classify(unlabelled_sample, capsys):
    path, stripped, _ = unlabelled_sample
    out = path.with_name("cli.json")
    assert main(["classify", str(path), "--out", str(out), "--model", "trailcam-tiny", "--pretrained", "",
                 "--labels", "coyote", "deer", "--top-k", "1", "--min-score", "0"]) == 0
    assert f"classify: {len(stripped)} done" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    scored = [a for a in doc["annotations"] if "score" in a]
    names = {c["id"]: c["name"] for c in doc["categories"]}
    assert len(scored) == len(stripped) and {names[a["category_id"]] for a in scored} <= {"coyote", "deer", "empty"}
    assert np.isfinite([a["score"] for a in scored]).all()
