"""Generation on the tiny offline SDXL: strengths mean what ComfyUI's LoraLoader means."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from trailcam_core.base.errors import TrailcamError
from trailcam_core.generate.pipeline import (GenerateOptions, Generator, LoraSpec, parse_strengths, read_params,
                                    strength_grid)
from trailcam_core.models.tiny import build_tiny_sdxl

ATTN = ("to_q", "to_k", "to_v", "to_out.0", "q_proj", "k_proj", "v_proj", "out_proj")


def random_kohya_lora(pipe, path, seed=0, rank=4, scale=0.3, unet=True, te=True):
    """A kohya-layout LoRA with random weights for every attention projection of ``pipe``."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    parts = []
    if unet:
        parts.append(("lora_unet", pipe.unet))
    if te:
        parts += [("lora_te1", pipe.text_encoder), ("lora_te2", pipe.text_encoder_2)]
    for prefix, model in parts:
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.Linear) and name.endswith(ATTN):
                if prefix != "lora_unet" and not name.startswith("text_model."):
                    name = "text_model." + name       # kohya names keep CLIP's text_model level
                key = f"{prefix}_{name.replace('.', '_')}"
                sd[key + ".lora_down.weight"] = torch.randn(rank, m.in_features, generator=g) * scale
                sd[key + ".lora_up.weight"] = torch.randn(m.out_features, rank, generator=g) * scale
                sd[key + ".alpha"] = torch.tensor(float(rank))
    save_file(sd, str(path), metadata={"ss_network_dim": str(rank), "ss_base_model_version": "sdxl_base_v1-0"})
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_tiny_sdxl(tmp_path_factory.mktemp("models") / "tiny-sdxl")


@pytest.fixture(scope="module")
def gen(base):
    g = Generator(device="cpu")
    g.load_base(base)
    return g


@pytest.fixture(scope="module")
def loras(gen, tmp_path_factory):
    d = tmp_path_factory.mktemp("loras")
    return (random_kohya_lora(gen.pipe, d / "flash.safetensors", seed=1),
            random_kohya_lora(gen.pipe, d / "glitch.safetensors", seed=2))


OPTS = GenerateOptions(prompt="trailcam photo, coyote, night-flash", steps=1, width=64, height=64, guidance=5.0)


def pixels(gen, base, specs, opts=OPTS):
    return gen.generate(base, specs, opts, output_type="np")[0].image


def test_zero_strengths_equal_base_bit_for_bit(gen, base, loras):
    fresh = Generator(device="cpu")
    reference = pixels(fresh, base, [])            # a pipeline that never saw a LoRA
    zero = pixels(gen, base, [LoraSpec(str(loras[0]), 0.0, 0.0)])
    assert np.array_equal(reference, zero)


def test_model_strength_changes_image_and_clip_zero_keeps_text(gen, base, loras):
    base_img = pixels(gen, base, [])
    strong = pixels(gen, base, [LoraSpec(str(loras[0]), 1.0, 0.0)])
    assert np.abs(strong - base_img).max() > 1e-3
    e0, p0 = gen.encode_prompt(base, [], OPTS.prompt)
    e1, p1 = gen.encode_prompt(base, [LoraSpec(str(loras[0]), 1.0, 0.0)], OPTS.prompt)
    assert torch.equal(e0, e1) and torch.equal(p0, p1)
    e2, _ = gen.encode_prompt(base, [LoraSpec(str(loras[0]), 0.0, 1.0)], OPTS.prompt)
    assert not torch.equal(e0, e2)


def test_negative_strength_goes_the_other_way(gen, base, loras):
    zero = pixels(gen, base, [])
    plus = pixels(gen, base, [LoraSpec(str(loras[0]), 0.5, 0.0)])
    minus = pixels(gen, base, [LoraSpec(str(loras[0]), -0.5, 0.0)])
    assert not np.array_equal(plus, minus)
    assert np.abs(plus - zero).max() > 1e-3 and np.abs(minus - zero).max() > 1e-3


def test_two_loras_combine(gen, base, loras):
    a = pixels(gen, base, [LoraSpec(str(loras[0]), 1.0, 1.0)])
    b = pixels(gen, base, [LoraSpec(str(loras[1]), 1.0, 1.0)])
    ab = pixels(gen, base, [LoraSpec(str(loras[0]), 1.0, 1.0), LoraSpec(str(loras[1]), 1.0, 1.0)])
    assert not np.array_equal(ab, a) and not np.array_equal(ab, b)
    # the second LoRA at 0/0 leaves the first one's result exactly as alone
    a_only = pixels(gen, base, [LoraSpec(str(loras[0]), 1.0, 1.0), LoraSpec(str(loras[1]), 0.0, 0.0)])
    assert np.array_equal(a_only, a)


def test_changing_strength_never_reloads_base(gen, base, loras):
    loads, pipe = gen.base_loads, gen.pipe
    for s in (0.2, 0.7, 1.0):
        gen.generate(base, [LoraSpec(str(loras[0]), s, s)], OPTS, output_type="np")
    assert gen.base_loads == loads and gen.pipe is pipe


def test_png_carries_parameters_and_reproduces(gen, base, loras, tmp_path):
    opts = GenerateOptions(**{**OPTS.__dict__, "batch": 2, "seed": 7})
    specs = [LoraSpec(str(loras[0]), 0.8, 0.6)]
    out = gen.generate(base, specs, opts, out_dir=tmp_path)
    assert len(out) == 2 and all(o.path.is_file() for o in out)
    params = read_params(out[1].path)
    assert params["seed"] == 8 and params["prompt"] == opts.prompt
    assert params["loras"] == [{"name": "flash.safetensors", "strength_model": 0.8, "strength_clip": 0.6}]
    assert "Negative prompt" not in Image.open(out[1].path).text["parameters"]
    again = gen.generate(base, specs, GenerateOptions(**{k: params[k] for k in GenerateOptions.__dataclass_fields__}))
    # batched and single forward passes differ only by float rounding
    diff = np.abs(np.asarray(again[0].image, dtype=int) - np.asarray(Image.open(out[1].path).convert("RGB"), dtype=int))
    assert diff.mean() < 1.0


def test_strength_grid_is_labelled_image(gen, base, loras, tmp_path):
    seen = []
    grid = strength_grid(base, loras[0], OPTS, [0.0, 1.0], [0.0, 1.0], out_path=tmp_path / "grid.png",
                         generator=gen, progress=lambda d, t, m="", p=None: seen.append((d, t, p is not None)))
    assert seen[-1] == (4, 4, True)
    assert grid.width > 2 * 64 and grid.height > 2 * 64
    saved = read_params(tmp_path / "grid.png")
    assert saved["model_strengths"] == [0.0, 1.0] and saved["clip_strengths"] == [0.0, 1.0]
    # the cell at model 0, clip 0 is the base image: the grid is not blank
    assert np.asarray(grid).std() > 5


def test_sd15_lora_on_sdxl_is_a_clear_error(gen, base, tmp_path):
    sd = {"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(4, 768),
          "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.zeros(768, 4),
          "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": torch.zeros(4, 768),
          "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": torch.zeros(320, 4)}
    save_file(sd, str(tmp_path / "sd15.safetensors"))
    with pytest.raises(TrailcamError, match=r"SD 1\.x/2\.x.*one text encoder.*base model is"):
        gen.generate(base, [LoraSpec(str(tmp_path / "sd15.safetensors"))], OPTS)


def test_lora_for_other_width_names_the_mismatch(gen, base, tmp_path):
    sd = {"lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": torch.zeros(4, 2048),
          "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": torch.zeros(64, 4)}
    save_file(sd, str(tmp_path / "big.safetensors"))
    with pytest.raises(TrailcamError, match="cross-attention is 64 wide"):
        gen.generate(base, [LoraSpec(str(tmp_path / "big.safetensors"))], OPTS)


def test_missing_files_name_the_path(gen, base, tmp_path):
    with pytest.raises(TrailcamError, match="LoRA file not found: .*nope.safetensors"):
        gen.generate(base, [LoraSpec(str(tmp_path / "nope.safetensors"))], OPTS)
    with pytest.raises(TrailcamError, match="base model not found: .*nobase"):
        Generator().generate(tmp_path / "nobase", [], OPTS)


def test_bad_options_and_parsing():
    assert LoraSpec.parse("a.safetensors:0.5:-1") == LoraSpec("a.safetensors", 0.5, -1.0)
    assert LoraSpec.parse("C:/x/a.safetensors:0.7") == LoraSpec("C:/x/a.safetensors", 0.7, 0.7)
    assert parse_strengths("0:1:3") == [0.0, 0.5, 1.0]
    with pytest.raises(TrailcamError, match="strengths"):
        parse_strengths("a,b")
    with pytest.raises(TrailcamError, match="multiples of 8"):
        Generator().generate("x", [], GenerateOptions(width=65))


def test_cli_generate_and_grid(base, loras, tmp_path):
    from trailcam_cli import main

    rc = main(["generate", "--base", str(base), "--lora", f"{loras[0]}:0.5:1", "--steps", "1", "--width", "64",
               "--height", "64", "--out", str(tmp_path / "g"), "--seed", "3", "--device", "cpu"])
    assert rc == 0
    pngs = list((tmp_path / "g").glob("*.png"))
    assert len(pngs) == 1 and read_params(pngs[0])["loras"][0]["strength_clip"] == 1.0
    rc = main(["strength-grid", "--base", str(base), "--lora", str(loras[0]), "--model-strengths", "0,1",
               "--clip-strengths", "1", "--steps", "1", "--width", "64", "--height", "64", "--out", str(tmp_path / "g")])
    assert rc == 0 and (tmp_path / "g" / "strength_grid_flash_seed0.png").is_file()
    assert main(["generate", "--base", str(tmp_path / "missing"), "--out", str(tmp_path / "g")]) == 1


def test_mosaic_of_generations(gen, base, loras, tmp_path):
    from trailcam_core.embed.features import EmbedOptions
    from trailcam_core.generate.pipeline import mosaic_of_generations
    from trailcam_core.mosaic.make import MosaicOptions

    opts = GenerateOptions(**{**OPTS.__dict__, "batch": 3})
    gen.generate(base, [LoraSpec(str(loras[0]), 1.0, 1.0)], opts, out_dir=tmp_path / "gens")
    report = mosaic_of_generations(tmp_path / "gens", tmp_path / "mosaic", MosaicOptions(tile=32, scatter=False),
                                   embed_options=EmbedOptions(features="pyramid"))
    positions = json.loads((tmp_path / "mosaic" / "positions.json").read_text())
    assert len(positions["items"]) == 3
    assert {Path(i["file"]).name for i in positions["items"]} == {p.name for p in (tmp_path / "gens").glob("*.png")}
    assert report.skipped == []
