"""What a careful user of the CLI and the core hit: reasons in words, errors that name the field,
no silent no-ops, an --image-root for embed, no stale temps, lean training loads."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trailcam_cli import main
from trailcam_core.base.errors import DataError, TrailcamError


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def bad_files(folder: Path) -> Path:
    """Two good images and the bad files users have: text, empty, truncated, garbage, a bomb header."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / f"good{i}.jpg")
    (folder / "notes.jpg").write_text("this is a text file, not a photo")
    (folder / "empty.png").write_bytes(b"")
    data = (folder / "good0.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    return folder


# ------------------------------------------------------------------------------ skip reasons
def test_embed_skip_reasons_name_the_file_and_say_why(tmp_path, capsys):
    folder = bad_files(tmp_path / "photos")
    code, out, err = run(capsys, "embed", folder, "--out", tmp_path / "emb.npz", "--features", "pyramid")
    assert code == 0
    assert "BytesIO" not in err and " at 0x" not in err
    skipped = {line.split(":")[0].split()[-1]: line for line in err.splitlines() if "skipped" in line}
    assert set(skipped) == {"notes.jpg", "empty.png", "truncated.jpg", "garbage.png"}
    assert "not an image" in skipped["notes.jpg"] and "empty" in skipped["empty.png"]
    assert "2 done" in out


def test_open_image_safely_reasons(tmp_path):
    from trailcam_core.base.safe_image import open_image_safely

    folder = bad_files(tmp_path / "p")
    assert open_image_safely(folder / "good0.jpg").size == (64, 48)
    reasons = {}
    for name in ("notes.jpg", "empty.png", "truncated.jpg", "garbage.png"):
        with pytest.raises(DataError) as err:
            open_image_safely(folder / name)
        reasons[name] = str(err.value)
        assert str(err.value).startswith(f"{name}: ") and "0x" not in str(err.value)
    assert "truncated" in reasons["truncated.jpg"] and "0 bytes" in reasons["empty.png"]


def test_a_decompression_bomb_is_refused_with_its_size(tmp_path):
    from trailcam_core.base.safe_image import open_image_safely

    big = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(big)              # 400 megapixels, a few kB on disk
    assert big.stat().st_size < 200_000
    with pytest.raises(DataError, match=r"bomb.png: refused: (20000x20000 = )?400 megapixels .*decompression bomb"):
        open_image_safely(big)


# ------------------------------------------------------------------------------ CCT errors
def test_a_bad_bbox_error_names_the_bbox_field(tmp_path, capsys):
    d = {"info": {}, "categories": [{"id": 1, "name": "deer"}],
         "images": [{"id": "a", "file_name": "a.jpg", "width": 10, "height": 10, "location": "1"}],
         "annotations": [{"id": f"n{i}", "image_id": "a", "category_id": 1, "bbox": [1, 2, 3, 4]} for i in range(12)]}
    d["annotations"][9]["bbox"] = ["1", 2, 3, 4]
    (tmp_path / "bad.json").write_text(json.dumps(d))
    code, _, err = run(capsys, "subset", tmp_path / "bad.json", "--out", tmp_path / "out")
    assert code == 1
    assert "annotations[9] (id 'n9') field 'bbox[0]': Expected `float`, got `str`" in err


# ------------------------------------------------------------------------------ captions
def test_caption_of_a_project_whose_images_lie_elsewhere_is_an_error_that_says_what_to_do(tmp_path, capsys):
    imgs = tmp_path / "imgs"
    bad_files(imgs)
    for p in imgs.iterdir():
        if not p.name.startswith("good"):
            p.unlink()
    code, _, _ = run(capsys, "tag", imgs, "--project", tmp_path / "P")
    assert code == 0
    code, out, err = run(capsys, "caption", tmp_path / "P")
    assert code == 1
    assert "no captions written" in err and str(imgs) in err and "export-favorites" in err
    assert not list(imgs.glob("*.txt"))
    # captions in the images' own project still work
    code, _, _ = run(capsys, "tag", imgs)
    code, out, _ = run(capsys, "caption", imgs)
    assert code == 0 and "2 done" in out and len(list(imgs.glob("*.txt"))) == 2


def test_caption_with_nothing_to_include_is_an_error(tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.new("RGB", (32, 32)).save(imgs / "a.png")
    run(capsys, "tag", imgs)
    code, _, err = run(capsys, "caption", imgs, "--include", "favorites")
    assert code == 1 and "no images to caption" in err and "favourites" in err


# ------------------------------------------------------------------------------ embed --image-root
def test_embed_a_cct_json_with_image_root(tmp_path, capsys):
    photos = tmp_path / "photos"
    bad_files(photos)
    d = {"info": {}, "categories": [{"id": 1, "name": "deer"}], "annotations": [],
         "images": [{"id": f"g{i}", "file_name": f"good{i}.jpg", "width": 64, "height": 48} for i in range(2)]}
    meta = tmp_path / "meta" / "dataset.json"
    meta.parent.mkdir()
    meta.write_text(json.dumps(d))
    code, _, err = run(capsys, "embed", meta, "--out", tmp_path / "a.npz", "--features", "pyramid")
    assert code == 1 and "--image-root" in err
    code, out, _ = run(capsys, "embed", meta, "--image-root", photos, "--out", tmp_path / "b.npz",
                       "--features", "pyramid")
    assert code == 0 and "2 done" in out
    assert sorted(np.load(tmp_path / "b.npz", allow_pickle=True)["ids"].tolist()) == ["g0", "g1"]


# ------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    from trailcam_core.models.tiny import build_tiny_sdxl

    return build_tiny_sdxl(tmp_path_factory.mktemp("model") / "tiny-sdxl")


def test_frozen_parts_load_in_the_training_dtype_and_the_vae_in_fp32(tiny_base):
    import torch
    from safetensors.torch import load_file

    from trailcam_core.models.sdxl_frozen import load_frozen_sdxl

    parts = load_frozen_sdxl(tiny_base, torch.bfloat16)
    assert {p.dtype for p in parts.unet.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in parts.text_encoder.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in parts.text_encoder_2.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in parts.vae.parameters()} == {torch.float32}
    on_disk = load_file(str(tiny_base / "unet" / "diffusion_pytorch_model.safetensors"))
    mine = parts.unet.state_dict()
    assert mine.keys() == on_disk.keys()
    for k, v in on_disk.items():
        assert torch.equal(mine[k], v.to(torch.bfloat16)), k
    assert all(p.device.type == "cpu" for p in parts.unet.parameters())


def test_read_safetensors_refuses_a_truncated_file(tiny_base, tmp_path):
    from trailcam_core.models.sdxl_frozen import read_safetensors

    data = (tiny_base / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) - 100])
    with pytest.raises(TrailcamError, match="truncated"):
        list(read_safetensors(cut))


@pytest.mark.slow
def test_training_cleans_stale_checkpoint_temps_and_leaves_clip_l_last_layer_out(tiny_base, tmp_path):
    import torch
    from safetensors.torch import load_file

    from trailcam_core.lora.options import TrainOptions
    from trailcam_core.lora.kohya import read_metadata
    from trailcam_core.lora.train import train_lora
    from trailcam_core.lora.kohya import lora_names, unused_te1_layers
    from trailcam_core.lora.options import TrainOptions
    from trailcam_core.lora.kohya import read_metadata
    from trailcam_core.lora.train import train_lora

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(data / f"i{i}.png")
        (data / f"i{i}.txt").write_text("deer, night")
    out = tmp_path / "run"
    stale = out / "checkpoints" / ".trailcam_lora-step00000003.k2j4_x9"
    stale.mkdir(parents=True)
    (stale / "adapter.safetensors").write_bytes(b"half")
    keep = out / "checkpoints" / ".notes"
    keep.mkdir()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train_lora(data, tiny_base, out, TrainOptions(
            resolution=64, bucket_step=16, batch_size=2, rank=2, max_steps=1, gradient_checkpointing=False,
            cache_to_disk=False, mixed_precision="bf16", train_text_encoder=True, unet_targets="transformer"))
    finally:
        torch.set_num_threads(n)
    assert not stale.exists() and keep.exists()
    stems = {k.split(".")[0] for k in load_file(str(result.lora_path))}
    te1 = sorted(s for s in stems if s.startswith("lora_te1_"))
    last = "lora_te1_text_model_encoder_layers_4_"               # the tiny CLIP-L has layers 0..4
    assert te1 and not any(s.startswith(last) for s in te1)
    assert any(s.startswith("lora_te2_text_model_encoder_layers_4_") for s in stems)   # bigG keeps its last
    args = json.loads(read_metadata(result.lora_path)["ss_network_args"])
    assert args["te1_excluded_layers"] == "4" and "penultimate" in args["te1_excluded_reason"]


def test_full_size_clip_l_loses_exactly_its_six_layer_11_modules():
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    from trailcam_core.lora.kohya import lora_names, text_encoder_targets
    from trailcam_core.models.sdxl import SDXL_TEXT_ENCODER

    with torch.device("meta"):
        te1 = CLIPTextModel(CLIPTextConfig(**{k: v for k, v in SDXL_TEXT_ENCODER.items() if k != "architectures"}))
    every = text_encoder_targets(te1, "transformer")
    kept = [p for part, p in lora_names(text_encoder=te1, targets="transformer").values()]
    gone = sorted(set(every) - set(kept))
    assert len(every) == 72 and len(gone) == 6
    assert all(".layers.11." in p for p in gone)


def test_frozen_parts_from_a_single_file_checkpoint(tmp_path):
    import torch

    from comfy_harness import find_comfyui
    from sdxl_ldm import build_tiny_sdxl_ldm_pipeline, write_ldm_checkpoint
    from trailcam_core.models.sdxl import load_sdxl
    from trailcam_core.models.sdxl_frozen import load_frozen_sdxl

    comfy_root = find_comfyui()
    if comfy_root is None:
        pytest.skip("ComfyUI is not installed")
    pipe = build_tiny_sdxl_ldm_pipeline(seed=0)
    folder = tmp_path / "tiny-sdxl"
    pipe.save_pretrained(str(folder), safe_serialization=True)
    ckpt = write_ldm_checkpoint(pipe, tmp_path / "tiny_sd_xl_base.safetensors", comfy_root)
    parts = load_frozen_sdxl(ckpt, torch.bfloat16, config_dir=str(folder))
    assert {p.dtype for p in parts.unet.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in parts.text_encoder_2.parameters()} == {torch.bfloat16}
    reference = load_sdxl(folder)
    want = reference.vae.state_dict()
    got = parts.vae.state_dict()
    assert got.keys() == want.keys()
    for k, v in want.items():                 # the VAE is read in fp32 from the file, not via bf16
        assert got[k].dtype == torch.float32 and torch.equal(got[k], v), k
