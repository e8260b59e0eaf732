"""CLIP strength that works by default: text encoders trained by default and in the Civitai-like
preset, a clear note where a LoRA has no text-encoder weights, and Cancel honoured inside the
latent cache (checked before every VAE block, not every 8 images)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from trailcam_cli import main as cli
from trailcam_core.base.errors import Cancelled
from trailcam_core.generate.pipeline import LoraSpec
from trailcam_core.generate.notes import clip_strength_notes, has_text_encoder_weights
from trailcam_core.lora.train import LoraTrainer
from trailcam_core.lora.options import TrainOptions
from trailcam_core.lora.interrupt import checks_between_blocks
from trailcam_core.models.tiny import build_tiny_sdxl


def test_text_encoders_are_trained_by_default_and_by_the_civitai_preset():
    assert TrainOptions().train_text_encoder is True
    assert TrainOptions.preset("civitai-sdxl").train_text_encoder is True


def lora_file(path: Path, text_encoder: bool) -> Path:
    t = {"lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight": torch.zeros(4, 64),
         "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight": torch.zeros(64, 4),
         "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.alpha": torch.tensor(4.0)}
    if text_encoder:
        t["lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"] = torch.zeros(4, 32)
        t["lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight"] = torch.zeros(32, 4)
    save_file(t, str(path))
    return path


def test_note_where_clip_strength_has_no_effect(tmp_path):
    unet_only = lora_file(tmp_path / "unet_only.safetensors", False)
    both = lora_file(tmp_path / "both.safetensors", True)
    assert not has_text_encoder_weights(unet_only) and has_text_encoder_weights(both)
    notes = clip_strength_notes([LoraSpec(str(unet_only), 1.0, 0.2), LoraSpec(str(both), 1.0, 0.2)])
    assert len(notes) == 1 and "unet_only.safetensors" in notes[0] and "CLIP strength has no effect" in notes[0]


def test_cli_generate_says_clip_strength_has_no_effect(tmp_path, capsys):
    base = build_tiny_sdxl(tmp_path / "tiny")
    unet_only = lora_file(tmp_path / "unet_only.safetensors", False)
    code = cli(["generate", "--base", str(base), "--lora", f"{unet_only}:1:0.2", "--steps", "1", "--width", "64",
                "--height", "64", "--out", str(tmp_path / "gen"), "--device", "cpu"])
    out = capsys.readouterr().out
    assert "CLIP strength has no effect" in out and "unet_only.safetensors" in out, (code, out)


def test_block_checks_run_inside_one_forward_and_are_removed():
    seen = []
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    with checks_between_blocks(model, lambda: seen.append(1), types=("Linear",)) as n:
        model(torch.zeros(1, 2))
    assert n == 2 and len(seen) == 2
    model(torch.zeros(1, 2))
    assert len(seen) == 2


def test_cancel_while_caching_latents_stops_inside_the_first_image(tmp_path):
    base = build_tiny_sdxl(tmp_path / "tiny")
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(data / f"img{i}.png")
        (data / f"img{i}.txt").write_text(f"deer {i}")
    calls = []

    def progress(done, total, message="", preview=None):
        if message.startswith("caching latents"):
            calls.append((done, total, message))
            if len(calls) == 2:              # the second check: inside the first image's VAE encode
                raise Cancelled("stop")

    opts = TrainOptions(resolution=64, bucket_step=16, rank=4, alpha=4.0, max_steps=2, mixed_precision="no",
                        gradient_checkpointing=False, cache_to_disk=True)
    with pytest.raises(Cancelled):
        LoraTrainer(data, base, tmp_path / "run", opts).run(progress)
    assert calls[0][:2] == (0, 10) and "img" in calls[0][2]      # per-image progress, named
    cache = tmp_path / "run" / "cache" / "latents"
    assert not cache.exists() or not any(cache.iterdir())          # stopped before one latent was written


def test_cancel_while_rendering_samples_stops_inside_the_render_and_saves(tmp_path):
    base = build_tiny_sdxl(tmp_path / "tiny")
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(data / f"img{i}.png")
        (data / f"img{i}.txt").write_text(f"deer {i}")

    def progress(done, total, message="", preview=None):
        if message == "rendering samples":     # only sent from inside the sampler's UNet / VAE blocks
            raise Cancelled("stop")

    opts = TrainOptions(resolution=64, bucket_step=16, rank=4, alpha=4.0, max_steps=4, mixed_precision="no",
                        gradient_checkpointing=False, cache_to_disk=False, train_text_encoder=False,
                        sample_every_n_steps=2, sample_prompts=["deer"], sample_steps=50)
    with pytest.raises(Cancelled):
        LoraTrainer(data, base, tmp_path / "run", opts).run(progress)
    assert not list((tmp_path / "run").glob("samples/*.png"))                    # stopped mid-render
    assert list((tmp_path / "run" / "checkpoints").iterdir())                     # and saved where it was


def test_one_copy_per_trained_lora(tmp_path):
    from trailcam_core.lora.publish import train_or_reuse

    base = build_tiny_sdxl(tmp_path / "tiny")
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(2)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(data / f"img{i}.png")
        (data / f"img{i}.txt").write_text(f"deer {i}")
    opts = TrainOptions(resolution=64, bucket_step=16, rank=4, alpha=4.0, max_steps=1, mixed_precision="no",
                        gradient_checkpointing=False, cache_to_disk=False, train_text_encoder=False,
                        output_name="once")
    dest = tmp_path / "loras" / "once.safetensors"
    outcome = train_or_reuse(data, base, tmp_path / "run", opts, dest)
    assert outcome.trained and dest.is_file()
    assert not list((tmp_path / "run").glob("*.safetensors"))
    again = train_or_reuse(data, base, tmp_path / "run", opts, dest)
    assert not again.trained                                                      # still recognised as done
