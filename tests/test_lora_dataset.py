"""Training data: captions, buckets, deterministic batches, and clear errors before any model loads."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trailcam_core.base.errors import TrailcamError
from trailcam_core.lora.train import LoraTrainer
from trailcam_core.lora.options import TrainOptions
from trailcam_core.lora import dataset as ds
from trailcam_core.lora import train as train_mod
from trailcam_core.base.records import ImageRecord


def img(path: Path, size=(96, 64), caption: str | None = "deer, night") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 90, np.uint8)).save(path)
    if caption is not None:
        path.with_suffix(".txt").write_text(caption)
    return path


@pytest.fixture
def fake_base(tmp_path) -> Path:
    """A folder that looks like a diffusers model: enough for the checks that run before loading."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "model_index.json").write_text("{}")
    return base


@pytest.fixture
def no_model_load(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the base model must not be loaded before input is validated")

    monkeypatch.setattr(train_mod, "load_frozen_sdxl", boom)


def test_scan_folder_reads_sidecars_jsonl_and_kohya_repeat_folders(tmp_path):
    img(tmp_path / "a.jpg", caption="deer, night")
    img(tmp_path / "5_flash" / "b.png", caption=None)
    (tmp_path / "5_flash" / "metadata.jsonl").write_text(json.dumps({"file_name": "b.png", "text": "fox, flash"}) + "\n")
    img(tmp_path / ".hidden" / "c.png")
    items = ds.scan_folder(tmp_path)
    assert [(it.path.name, it.caption, it.folder, it.repeats) for it in items] == [
        ("b.png", "fox, flash", "5_flash", 5), ("a.jpg", "deer, night", ".", 1)]
    assert (items[0].width, items[0].height) == (96, 64)


def test_missing_images_and_captions_are_named(tmp_path):
    with pytest.raises(TrailcamError, match="training folder not found"):
        ds.scan_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(TrailcamError, match="no images in"):
        ds.scan_folder(tmp_path / "empty")
    img(tmp_path / "nocap" / "a.png", caption=None)
    with pytest.raises(TrailcamError, match=r"no captions in .*a\.txt"):
        ds.scan_folder(tmp_path / "nocap")
    img(tmp_path / "some" / "a.png")
    img(tmp_path / "some" / "b.png", caption=None)
    with pytest.raises(TrailcamError, match=r"1 of 2 images .* no caption.*: b\.png"):
        ds.scan_folder(tmp_path / "some")


def test_buckets_hold_about_resolution_squared_pixels():
    buckets = ds.make_buckets(1024)
    assert (1024, 1024) in buckets and (1216, 832) in buckets and (832, 1216) in buckets
    assert all(w % 64 == 0 and h % 64 == 0 and w * h <= 1024 * 1024 for w, h in buckets)
    assert min(min(b) for b in buckets) == 256 and max(max(b) for b in buckets) <= 2048
    items = [ds.TrainItem(Path("x"), "", 2048, 1536), ds.TrainItem(Path("y"), "", 1000, 3000)]
    ds.assign_buckets(items, 1024, True)
    assert items[0].bucket == (1152, 896) and items[1].bucket[0] < items[1].bucket[1]
    ds.assign_buckets(items, 1024, False)
    assert {it.bucket for it in items} == {(1024, 1024)}


def test_too_small_images_are_named(tmp_path):
    items = [ds.TrainItem(tmp_path / "big.jpg", "", 2048, 1536), ds.TrainItem(tmp_path / "small.jpg", "", 640, 480)]
    ds.assign_buckets(items, 1024, True)
    with pytest.raises(TrailcamError, match=r"1 of 2 images are smaller .*small\.jpg 640x480 < 1152x896"):
        ds.check_sizes(items, 1024)


def test_epoch_batches_are_deterministic_and_single_sized():
    items = [ds.TrainItem(Path(f"{i}"), "", 100 + 60 * (i % 2), 100) for i in range(7)]
    ds.assign_buckets(items, 64, True, step=16)
    a = ds.epoch_batches(items, 2, repeats=3, seed=1, epoch=0)
    assert a == ds.epoch_batches(items, 2, repeats=3, seed=1, epoch=0)
    assert a != ds.epoch_batches(items, 2, repeats=3, seed=1, epoch=1)
    assert sorted(i for b in a for i in b) == sorted(list(range(7)) * 3)
    assert all(len({items[i].bucket for i in b}) == 1 for b in a)
    assert ds.auto_repeats(128) == 2 and ds.auto_repeats(7) == math.ceil(200 / 7)


def test_captions_trigger_shuffle_keep_tokens():
    c = ds.process_caption("night, deer, flash, glitch", "trailflash", True, 1, seed=0, epoch=0, slot=0)
    tags = c.split(", ")
    assert tags[0] == "trailflash" and sorted(tags[1:]) == ["deer", "flash", "glitch", "night"]
    shuffled = {ds.process_caption("a, b, c, d, e", "", True, 2, 0, e, 0) for e in range(20)}
    assert len(shuffled) > 1 and all(s.startswith("a, b, ") for s in shuffled)
    assert ds.process_caption("a, b", "", False, 0, 0, 0, 0) == "a, b"


def test_augment_crops_and_time_ids():
    it = ds.TrainItem(Path("x"), "", 200, 100, bucket=(64, 64))
    centre = ds.plan_augment(it, False, False, 0, 0, 0)
    assert (centre.crop_left, centre.crop_top, centre.flip) == (32, 0, False)
    lefts = {ds.plan_augment(it, True, True, 0, 0, s).crop_left for s in range(30)}
    assert len(lefts) > 3 and max(lefts) <= 64
    assert ds.time_ids(it, centre) == [100, 200, 0, 32, 64, 64]


def test_records_with_caption_template(tmp_path):
    rec = ImageRecord("img1", img(tmp_path / "img1.jpg", caption="red flash"), labels=["deer"], location="38")
    items = ds.items_from_records([rec], "{trigger}, {caption}, a {label} at site {location}", trigger="tf")
    assert items[0].caption == "tf, red flash, a deer at site 38" and items[0].folder == "38"
    with pytest.raises(TrailcamError, match="unknown or bad field"):
        ds.items_from_records([rec], "{nope}")


def test_bad_input_fails_before_the_model_loads(tmp_path, fake_base, no_model_load):
    data = tmp_path / "data"
    img(data / "a.png", size=(96, 64))
    opts = dict(resolution=64, bucket_step=16)
    with pytest.raises(TrailcamError, match="base model not found"):
        LoraTrainer(data, tmp_path / "missing.safetensors", tmp_path / "out", TrainOptions(**opts))
    with pytest.raises(TrailcamError, match=r"smaller than their training size at resolution 128"):
        LoraTrainer(data, fake_base, tmp_path / "out", TrainOptions(resolution=128, bucket_step=16))
    LoraTrainer(data, fake_base, tmp_path / "out", TrainOptions(resolution=128, bucket_step=16, allow_upscale=True))
    with pytest.raises(TrailcamError, match="resume checkpoint not found"):
        LoraTrainer(data, fake_base, tmp_path / "out", TrainOptions(**opts, resume=str(tmp_path / "nock")))
    with pytest.raises(TrailcamError, match="no checkpoint under"):
        LoraTrainer(data, fake_base, tmp_path / "out", TrainOptions(**opts, resume="latest"))
    with pytest.raises(TrailcamError, match="sample_prompts is empty"):
        LoraTrainer(data, fake_base, tmp_path / "out", TrainOptions(**opts, sample_every_n_steps=5))
    with pytest.raises(TrailcamError, match="fp16 needs a CUDA GPU"):
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
        LoraTrainer(data, fake_base, tmp_path / "out", TrainOptions(**opts, mixed_precision="fp16"))


@pytest.mark.parametrize("name, module", [("adamw8bit", "bitsandbytes"), ("prodigy", "prodigyopt")])
def test_optional_optimizer_missing_is_a_clear_error(tmp_path, fake_base, no_model_load, name, module, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == module else real(n, *a))
    img(tmp_path / "data" / "a.png")
    lr = 1.0 if name == "prodigy" else 1e-4
    with pytest.raises(TrailcamError, match=f"needs the {module} package"):
        LoraTrainer(tmp_path / "data", fake_base, tmp_path / "out",
                    TrainOptions(resolution=64, bucket_step=16, optimizer=name, unet_lr=lr))


def test_civitai_preset_reproduces_the_seed_defaults():
    o = TrainOptions.preset("civitai-sdxl", trigger_word="tf")
    assert (o.epochs, o.batch_size, o.resolution, o.rank, o.alpha, o.unet_lr, o.text_encoder_lr) == \
        (10, 4, 1024, 32, 16.0, 5e-4, 5e-5)
    assert (o.lr_scheduler, o.lr_cycles, o.min_snr_gamma, o.noise_offset, o.optimizer, o.repeats) == \
        ("cosine_with_restarts", 3, 5.0, 0.1, "adafactor", 0)
    assert o.trigger_word == "tf" and o.train_text_encoder
    with pytest.raises(TrailcamError, match="unknown preset"):
        TrainOptions.preset("nope")
