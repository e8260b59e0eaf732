"""Embeddings: inputs, bad files, duplicates, the on-disk cache, resuming, pyramid features."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trailcam_core.embed.features import EmbedOptions, Embeddings, collect_records, embed_images, pyramid_features
from trailcam_core.base.errors import Cancelled, TrailcamError
from trailcam_core.base.records import ImageRecord

TINY = EmbedOptions(model="trailcam-tiny", pretrained="", batch_size=4, workers=2, device="cpu")


def _make_folder(root: Path) -> Path:
    """Mixed sizes and modes, a nested folder, a corrupt JPEG, a duplicate file, a text file."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        arr = (rng.random((40 + 10 * i, 70, 3)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(root / f"rgb_{i}.jpg", quality=90)
    Image.new("L", (33, 90), 90).save(root / "gray.png")
    Image.new("RGBA", (50, 50), (255, 0, 0, 60)).save(root / "alpha.png")
    Image.new("CMYK", (64, 48), (0, 80, 80, 0)).save(root / "cmyk.jpg")
    Image.new("P", (20, 20), 3).save(root / "palette.gif")
    (root / "nested").mkdir(exist_ok=True)
    Image.new("RGB", (2000, 1500), (10, 200, 30)).save(root / "nested" / "big.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    shutil.copy(root / "rgb_0.jpg", root / "rgb_0_copy.jpg")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture()
def folder(tmp_path):
    return _make_folder(tmp_path / "photos")


def test_folder_embeds_skips_and_dedupes(folder, tmp_path):
    seen = []
    emb = embed_images(folder, TINY, cache_dir=tmp_path / "cache", progress=lambda d, t, m="", p=None: seen.append((d, t)))
    assert emb.vectors.shape == (11, 64) and emb.vectors.dtype == np.float32
    assert "nested/big.jpg" in emb.ids and "notes.txt" not in emb.ids
    reasons = dict(emb.skipped)
    assert "broken.jpg" in reasons and "cannot decode" in reasons["broken.jpg"]
    assert reasons["rgb_0_copy.jpg"] == "same content as rgb_0.jpg"
    assert emb.duplicates == {"rgb_0_copy.jpg": "rgb_0.jpg"}
    assert emb.computed == 11
    assert seen[-1] == (13, 13)
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, rtol=1e-5)


def test_second_run_recomputes_nothing(folder, tmp_path):
    first = embed_images(folder, TINY, cache_dir=tmp_path / "cache")
    second = embed_images(folder, TINY, cache_dir=tmp_path / "cache")
    assert second.computed == 0
    assert second.ids == first.ids
    np.testing.assert_array_equal(second.vectors, first.vectors)
    # a renamed file keeps its cached vector (keyed by content, not name)
    (folder / "rgb_3.jpg").rename(folder / "renamed.jpg")
    third = embed_images(folder, TINY, cache_dir=tmp_path / "cache")
    assert third.computed == 0
    np.testing.assert_array_equal(third.vectors[third.ids.index("renamed.jpg")],
                                  first.vectors[first.ids.index("rgb_3.jpg")])
    # another model has its own cache entries
    pyr = embed_images(folder, EmbedOptions(features="pyramid"), cache_dir=tmp_path / "cache")
    assert pyr.computed == 11 and len(list((tmp_path / "cache").iterdir())) == 2


def test_interrupted_run_resumes(folder, tmp_path):
    def cancel_after_first_batch(done, total, message="", preview=None):
        if "embedded" in message and done < total:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        embed_images(folder, TINY, cache_dir=tmp_path / "cache", progress=cancel_after_first_batch, flush_every=4)
    resumed = embed_images(folder, TINY, cache_dir=tmp_path / "cache")
    assert 0 < resumed.computed < 11


def test_keep_duplicates_when_asked(folder, tmp_path):
    opts = EmbedOptions(**{**TINY.__dict__, "dedupe": False})
    emb = embed_images(folder, opts, cache_dir=None)
    assert len(emb) == 12
    a, b = emb.ids.index("rgb_0.jpg"), emb.ids.index("rgb_0_copy.jpg")
    np.testing.assert_array_equal(emb.vectors[a], emb.vectors[b])


def test_records_and_path_lists(folder, tmp_path):
    recs = [ImageRecord("a", folder / "rgb_1.jpg", "rgb_1.jpg", labels=["coyote"]),
            ImageRecord("b", folder / "gray.png", "gray.png", labels=["empty"], extra={"tags": ["night"]}),
            ImageRecord("a", folder / "rgb_2.jpg", "rgb_2.jpg"),
            ImageRecord("c", folder / "missing.jpg", "missing.jpg")]
    emb = embed_images(recs, TINY)
    assert emb.ids == ["a", "b"]
    assert ("rgb_2.jpg", "duplicate image id 'a'") in emb.skipped
    assert any(item == "missing.jpg" and "cannot read" in why for item, why in emb.skipped)
    assert emb.labels() == [["coyote"], ["empty", "night"]]
    paths = collect_records([folder / "rgb_1.jpg", folder / "nested" / "big.jpg"])
    assert [r.image_id for r in paths] == ["rgb_1.jpg", "nested/big.jpg"]
    with pytest.raises(TrailcamError, match="no such folder"):
        collect_records(folder / "nope")
    with pytest.raises(TrailcamError, match="batch_size"):
        embed_images(folder, EmbedOptions(features="pyramid", batch_size=0))
    with pytest.raises(TrailcamError, match="embed option features=.sift.: choose one of"):
        embed_images(folder, EmbedOptions(features="sift"))


def test_save_and_load_roundtrip(folder, tmp_path):
    emb = embed_images(folder, EmbedOptions(features="pyramid"))
    path = emb.save(tmp_path / "out" / "emb.npz")
    back = Embeddings.load(path)
    assert back.ids == emb.ids and back.key == emb.key and back.files == emb.files
    np.testing.assert_array_equal(back.vectors, emb.vectors)
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(TrailcamError, match="bad.npz"):
        Embeddings.load(tmp_path / "bad.npz")


def test_pyramid_features_see_colour_and_layout():
    red, blue = Image.new("RGB", (90, 60), "red"), Image.new("RGB", (90, 60), "blue")
    half = Image.new("RGB", (90, 60), "red")
    half.paste(Image.new("RGB", (45, 60), "blue"), (45, 0))
    f = [pyramid_features(im, 32) for im in (red, blue, half)]
    assert f[0].shape == (3 * (32 * 32 + 16 * 16 + 8 * 8 + 4 * 4),)
    d = lambda a, b: float(np.linalg.norm(a - b))  # noqa: E731
    assert d(f[0], f[2]) < d(f[0], f[1]) and d(f[1], f[2]) < d(f[0], f[1])


def test_real_photos(cct_sample_dir, tmp_path):
    emb = embed_images(cct_sample_dir, TINY, cache_dir=tmp_path / "cache")
    assert len(emb) == len(list(cct_sample_dir.glob("*.jpg"))) and not emb.skipped
