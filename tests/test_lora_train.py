"""LoRA training on a tiny random-weight SDXL: real diffusers + peft + accelerate, on the CPU."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trailcam_core.base.errors import Cancelled, TrailcamError
from trailcam_core.lora.train import LoraTrainer, train_lora
from trailcam_core.lora.options import TrainOptions
from trailcam_core.lora.kohya import read_metadata
from trailcam_core.base.checkpoints import list_checkpoints
from trailcam_core.lora import checkpoint as ckpt
from trailcam_core.models.tiny import build_tiny_sdxl

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def one_thread():
    # On a shared, busy CPU, torch's thread pool spins against other processes: one thread is
    # many times faster for these tiny models.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return build_tiny_sdxl(tmp_path_factory.mktemp("model") / "tiny-sdxl")


def make_images(folder: Path, n: int = 4, size=(80, 96), captions=True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        arr[: size[1] // 2] //= 4 * (i % 2) + 1            # some structure, different per image
        Image.fromarray(arr).save(folder / f"img{i}.png")
        if captions:
            (folder / f"img{i}.txt").write_text(f"night, flash photo, deer, glitch {i}")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("data") / "favourites")


def tiny_options(**kw) -> TrainOptions:
    base = dict(resolution=64, bucket_step=16, batch_size=2, rank=4, alpha=4.0, unet_lr=1e-3, text_encoder_lr=1e-3,
                gradient_checkpointing=False, cache_to_disk=False, mixed_precision="no", max_steps=4,
                train_text_encoder=False)   # UNet only unless a test asks (the default trains both)
    base.update(kw)
    return TrainOptions(**base)


def test_steps_lower_loss_on_a_fixed_batch(base, data, tmp_path):
    trainer = LoraTrainer(data, base, tmp_path, tiny_options(unet_lr=1e-2, min_snr_gamma=0.0,
                                                               unet_targets="transformer+conv"))
    trainer._setup(lambda *a, **k: None)
    latents, captions, tids = trainer._batch([0, 1], 0, 0)
    embeds, pooled = trainer._conditions(captions)
    gen_state = torch.Generator("cpu").manual_seed(123).get_state()

    def fixed_loss():
        trainer.noise_gen.set_state(gen_state)        # same noise and timesteps every evaluation
        with torch.no_grad():
            return trainer.loss(latents, embeds, pooled, tids).item()

    before = fixed_loss()
    for _ in range(15):
        trainer.noise_gen.set_state(gen_state)
        loss = trainer.loss(latents, embeds, pooled, tids)
        trainer.accelerator.backward(loss)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad()
    after = fixed_loss()
    assert after < before * 0.9, (before, after)


@pytest.fixture(scope="module")
def trained(base, data, tmp_path_factory):
    """A UNet + text-encoder LoRA on every target kind, with samples every 2 steps."""
    out = tmp_path_factory.mktemp("run")
    torch.set_num_threads(1)
    trainer = LoraTrainer(data, base, out, tiny_options(
        train_text_encoder=True, unet_targets="transformer+conv", save_precision="fp32", trigger_word="trailflash",
        sample_every_n_steps=2, sample_prompts=["trailflash, deer at night"], sample_steps=2))
    calls = []
    result = trainer.run(lambda done, total, message="", preview=None: calls.append((done, total, message, preview)))
    return trainer, result, calls


def test_progress_reports_loss_eta_and_sample_previews(trained):
    trainer, result, calls = trained
    steps = [c for c in calls if "loss" in c[2]]
    assert [c[0] for c in steps] == [1, 2, 3, 4] and all(c[1] == 4 for c in steps)
    assert "ETA" in steps[0][2]
    previews = {c[0]: c[3] for c in steps if c[3] is not None}
    assert set(previews) == {2, 4}
    assert isinstance(previews[2], Image.Image) and previews[2].size == (64, 64)
    assert [p.name for p in result.samples] == ["trailcam_lora-step00000002-0.png", "trailcam_lora-step00000004-0.png"]
    assert all(p.is_file() for p in result.samples)
    assert len(result.losses) == 4 and all(np.isfinite(result.losses))


def test_saved_file_has_kohya_keys_and_metadata(trained):
    trainer, result, _ = trained
    meta = read_metadata(result.lora_path)
    assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "4.0"
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0"
    assert meta["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"
    assert meta["modelspec.trigger_phrase"] == "trailflash"
    assert json.loads(meta["ss_tag_frequency"])["."]["deer"] == 4
    assert meta["ss_steps"] == "4" and meta["ss_epoch"] == "2"
    assert len(meta["sshs_model_hash"]) == 64
    from safetensors.torch import load_file

    sd = load_file(str(result.lora_path))
    stems = {k.split(".")[0] for k in sd}
    assert {s.split("_")[1] for s in stems} == {"unet", "te1", "te2"}
    assert all(s.startswith("lora_te1_text_model_encoder_layers_") for s in stems if s.startswith("lora_te1"))
    assert any(s.endswith("resnets_0_conv1") for s in stems)
    for s in stems:
        assert sd[f"{s}.alpha"].item() == 4.0
        assert sd[f"{s}.lora_down.weight"].shape[0] == 4 and sd[f"{s}.lora_up.weight"].shape[1] == 4


def test_saved_file_reproduces_the_trained_model_in_diffusers(trained, base):
    from trailcam_core.models.sdxl import load_sdxl

    trainer, result, _ = trained
    pipe = load_sdxl(base)
    pipe.load_lora_weights(str(result.lora_path), adapter_name="trained")
    unet, (te1, te2) = trainer._unwrapped()
    g = torch.Generator().manual_seed(7)
    x, emb = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 77, 64, generator=g)
    pooled, tids = torch.randn(2, 32, generator=g), torch.tensor([[64.0, 64, 0, 0, 64, 64]] * 2)
    t = torch.tensor([100, 700])
    with torch.no_grad():
        ours = unet(x, t, encoder_hidden_states=emb, added_cond_kwargs={"text_embeds": pooled, "time_ids": tids}).sample
        theirs = pipe.unet(x, t, encoder_hidden_states=emb,
                           added_cond_kwargs={"text_embeds": pooled, "time_ids": tids}).sample
        ids = pipe.tokenizer(["trailflash, deer at night"], padding="max_length", max_length=77,
                             return_tensors="pt").input_ids
        te_ours = [te1(ids, output_hidden_states=True).hidden_states[-2], te2(ids).text_embeds]
        te_theirs = [pipe.text_encoder(ids, output_hidden_states=True).hidden_states[-2],
                     pipe.text_encoder_2(ids).text_embeds]
        pipe.set_adapters(["trained"], adapter_weights=[0.0])
        base_out = pipe.unet(x, t, encoder_hidden_states=emb,
                             added_cond_kwargs={"text_embeds": pooled, "time_ids": tids}).sample
    # the LoRA changed the model, and the file reproduces the change exactly
    assert (ours - base_out).abs().max() > 1e-3
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)
    for a, b in zip(te_theirs, te_ours):
        assert (a - b).abs().max() < 1e-5


def test_resume_continues_exactly_after_cancel(base, data, tmp_path):
    opts = dict(max_steps=6, flip=True, shuffle_captions=True, keep_tokens=1, noise_offset=0.05,
                lr_scheduler="cosine", save_precision="fp32")
    full = train_lora(data, base, tmp_path / "full", tiny_options(**opts))

    def cancel_at_3(done, total, message="", preview=None):
        if "loss" in message and done == 3:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        train_lora(data, base, tmp_path / "split", tiny_options(**opts, cache_to_disk=True), cancel_at_3)
    saved = list_checkpoints(tmp_path / "split")
    assert [p.name for p in saved] == ["trailcam_lora-step00000003"]
    state = ckpt.read_state(saved[0])
    assert (state["step"], state["epoch"], state["batch"]) == (3, 1, 1)   # 2 steps per epoch
    assert (saved[0] / "trailcam_lora.safetensors").is_file()
    assert not (tmp_path / "split" / "trailcam_lora.safetensors").exists()

    assert len(list((tmp_path / "split" / "cache" / "latents").glob("*.safetensors"))) == 8   # 4 images x 2 flips
    # the resumed run reads its latents back from the disk cache
    resumed = train_lora(data, base, tmp_path / "split", tiny_options(**opts, resume="latest", cache_to_disk=True))
    assert resumed.steps == 6 and resumed.epoch == 3 and full.epoch == 3
    assert resumed.losses[:3] == state["losses"]
    np.testing.assert_allclose(resumed.losses, full.losses, rtol=1e-6, atol=1e-7)
    from safetensors.torch import load_file

    a, b = load_file(str(full.lora_path)), load_file(str(resumed.lora_path))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)

    # a checkpoint only resumes under the settings it was made with: clear error, before loading
    with pytest.raises(TrailcamError, match=r"rank=4 \(now 8\)"):
        LoraTrainer(data, base, tmp_path / "split", tiny_options(**opts, rank=8, resume=str(saved[0])))


def test_bf16_mixed_precision_and_gradient_checkpointing_train(base, data, tmp_path):
    calls = []
    result = train_lora(data, base, tmp_path, tiny_options(mixed_precision="bf16", gradient_checkpointing=True,
                                                           max_steps=2, unet_targets="attention",
                                                           gradient_accumulation=2, sample_every_n_steps=2,
                                                           sample_prompts=["deer"], sample_steps=1),
                        lambda done, total, message="", preview=None: calls.append((done, total, message, preview)))
    # 4 images, batch 2, 2 batches accumulated: one optimizer step per epoch
    assert result.steps == 2 and result.epoch == 2 and all(np.isfinite(result.losses))
    assert [c[2].split()[:2] for c in calls if "loss" in c[2]] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert isinstance(calls[-2][3], Image.Image) and len(result.samples) == 1     # bf16 UNet, fp32 VAE
    assert read_metadata(result.lora_path)["ss_mixed_precision"] == "bf16"


def test_cli_train_writes_the_lora_and_reports_errors(base, data, tmp_path, capsys):
    from trailcam_cli import main

    out = tmp_path / "cli"
    code = main(["train", str(data), "--base", str(base), "--out", str(out), "--resolution", "64", "--bucket-step",
                 "16", "--max-steps", "1", "--rank", "2", "--no-gradient-checkpointing", "--mixed-precision", "no",
                 "--trigger-word", "tf", "--preset", "quick"])
    assert code == 0
    assert "train: 1 done" in capsys.readouterr().out
    meta = read_metadata(out / "trailcam_lora.safetensors")
    assert meta["ss_network_dim"] == "2" and meta["ss_network_alpha"] == "4.0"   # --rank overrides, preset alpha stays
    assert json.loads((out / "trailcam_lora.losses.json").read_text())["steps"] == 1
    code = main(["train", str(data), "--base", str(tmp_path / "nope"), "--out", str(out)])
    assert code == 1 and "base model not found" in capsys.readouterr().err


def test_training_key_tells_a_requeue_from_a_new_job(base, data, tmp_path):
    from trailcam_core.lora.train import LoraTrainer

    a = LoraTrainer(data, base, tmp_path / "a", tiny_options())
    same = LoraTrainer(data, base, tmp_path / "b", tiny_options(resume=""))
    assert a.training_key() == same.training_key()
    assert LoraTrainer(data, base, tmp_path / "c", tiny_options(rank=2)).training_key() != a.training_key()
    changed = tmp_path / "data2"
    shutil.copytree(data, changed)
    next(changed.glob("*.txt")).write_text("trailcam photo, a different caption")
    assert LoraTrainer(changed, base, tmp_path / "d", tiny_options()).training_key() != a.training_key()


def test_train_or_reuse_publishes_once_resumes_and_retrains_on_change(base, data, tmp_path):
    from trailcam_core.lora.publish import PUBLISHED, train_or_reuse

    dest = tmp_path / "loras" / "night.safetensors"
    freed = []
    first = train_or_reuse(data, base, tmp_path / "run", tiny_options(output_name="night"), dest,
                           before_training=lambda: freed.append(1))
    assert first.trained and first.steps == 4 and len(first.losses) == 4 and dest.is_file() and freed == [1]
    assert json.loads((tmp_path / "run" / PUBLISHED).read_text())["size"] == dest.stat().st_size
    assert "trained 4 steps" in first.summary()
    # the same job again: nothing runs, the published file and its losses come back
    again = train_or_reuse(data, base, tmp_path / "run", tiny_options(output_name="night"), dest,
                           before_training=lambda: freed.append(2))
    assert not again.trained and freed == [1] and again.losses == first.losses and "up to date" in again.summary()
    # the published file was replaced by hand: train again rather than trust it
    dest.write_bytes(b"not the lora")
    assert train_or_reuse(data, base, tmp_path / "run", tiny_options(output_name="night"), dest).trained

    # an interrupted run continues from its checkpoint; another option trains afresh
    def cancel_at_2(done, total, message="", preview=None):
        if "loss" in message and done == 2:
            raise Cancelled("stop")
    opts = tiny_options(output_name="cut", max_steps=4, save_every_n_steps=0)
    with pytest.raises(Cancelled):
        train_or_reuse(data, base, tmp_path / "cut", opts, tmp_path / "loras" / "cut.safetensors", progress=cancel_at_2)
    resumed = train_or_reuse(data, base, tmp_path / "cut", opts, tmp_path / "loras" / "cut.safetensors")
    assert resumed.trained and resumed.resumed_from == 2 and "resumed from the checkpoint at step 2" in resumed.summary()
    fresh = train_or_reuse(data, base, tmp_path / "cut", tiny_options(output_name="cut", max_steps=4, rank=2),
                           tmp_path / "loras" / "cut.safetensors")
    assert fresh.trained and fresh.resumed_from is None


def test_accelerate_launch_with_two_processes_trains_one_lora(base, data, tmp_path):
    """`accelerate launch` (2 CPU processes, gloo): batches shard across the processes, the main
    one alone reports and saves."""
    import subprocess
    import sys

    out = tmp_path / "multi"
    run = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu",
                          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                          "-m", "trailcam_cli", "train", str(data), "--base", str(base), "--out", str(out),
                          "--resolution", "64", "--bucket-step", "16", "--max-steps", "2", "--rank", "2",
                          "--batch-size", "2", "--no-gradient-checkpointing", "--mixed-precision", "no"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("train: 2 done") == 1, run.stdout
    meta = read_metadata(out / "trailcam_lora.safetensors")
    assert meta["ss_network_dim"] == "2"
    assert json.loads((out / "trailcam_lora.losses.json").read_text())["steps"] == 2


def test_prodigy_optimizer_trains(base, data, tmp_path):
    """Prodigy (learning rate 1.0, as its authors advise) runs the real optimizer end to end and
    the saved file names it."""
    result = train_lora(data, base, tmp_path, tiny_options(optimizer="prodigy", unet_lr=1.0, text_encoder_lr=1.0,
                                                           max_steps=3))
    assert result.steps == 3 and result.lora_path.is_file()
    assert read_metadata(result.lora_path)["ss_optimizer"].lower().startswith("prodigy")
