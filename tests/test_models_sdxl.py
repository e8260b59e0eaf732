"""Offline SDXL loading: the shipped base configuration, the rebuilt CLIP tokenizer, clear errors."""
from __future__ import annotations

import json

import pytest

from trailcam_core.base.errors import TrailcamError
from trailcam_core.models.sdxl import (load_clip_tokenizer, load_sdxl, model_kind, write_clip_tokenizer,
                                write_sdxl_config_dir)


def test_config_dir_builds_the_real_sdxl_base_architecture(tmp_path):
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    d = write_sdxl_config_dir(tmp_path / "cfg")
    assert json.loads((d / "model_index.json").read_text())["_class_name"] == "StableDiffusionXLPipeline"
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(d / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(d / "vae"))
        te1 = CLIPTextModel(CLIPTextConfig.from_pretrained(d / "text_encoder"))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(d / "text_encoder_2"))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # Parameter counts of the published SDXL 1.0 base components.
    assert count(unet) == 2_567_463_684
    assert count(vae) == 83_653_863
    assert count(te1) == 123_060_480
    assert count(te2) == 694_659_840


@pytest.mark.parametrize("text", ["a camera trap photo of a coyote", "Trailcam PHOTO, night-flash, glitch!!",
                                  "mountain_lion 59°F 2014-06-07 7:49:31 AM", "  spaced   out\ttext  ", ""])
def test_tokenizer_matches_open_clip(text):
    import open_clip

    ours = load_clip_tokenizer()(text, padding="max_length", max_length=77, truncation=True).input_ids
    theirs = open_clip.get_tokenizer("ViT-L-14")([text])[0].tolist()
    n = theirs.index(49407) + 1
    assert ours[:n] == theirs[:n]
    assert ours[n:] == [49407] * (77 - n)                # SDXL's first tokenizer pads with <|endoftext|>
    if "!" not in text:   # "!" is the second tokenizer's pad token, a special token there as in SDXL's own
        assert load_clip_tokenizer(pad_token="!")(text, padding="max_length", max_length=77).input_ids[n:] == \
            [0] * (77 - n)                                # the second pads with "!" (id 0)


def test_tokenizer_folder_is_written_once(tmp_path):
    d = write_clip_tokenizer(tmp_path / "tok")
    stamp = (d / "vocab.json").stat().st_mtime_ns
    assert write_clip_tokenizer(tmp_path / "tok") == d and (d / "vocab.json").stat().st_mtime_ns == stamp
    assert len(json.loads((d / "vocab.json").read_text())) == 49408


def test_model_kind_and_clear_errors(tmp_path):
    with pytest.raises(TrailcamError, match="base model not found: .*missing"):
        model_kind(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrailcamError, match="not a diffusers model"):
        model_kind(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(TrailcamError, match="neither a diffusers folder nor a checkpoint"):
        model_kind(tmp_path / "notes.txt")
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 64)
    assert model_kind(tmp_path / "broken.safetensors") == "single_file"
    with pytest.raises(TrailcamError, match="could not load SDXL base model from .*broken.safetensors"):
        load_sdxl(tmp_path / "broken.safetensors", config_dir=write_sdxl_config_dir(tmp_path / "cfg"))
