"""open_clip loading: the tiny registered model, local checkpoints, local-dir folders, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from trailcam_core.models import clip as clipmodel
from trailcam_core.models.clip import TINY_MODEL, load_clip
from trailcam_core.base.errors import TrailcamError


@pytest.fixture(scope="module")
def tiny():
    return load_clip(TINY_MODEL, pretrained=None, device="cpu")


def test_tiny_model_is_registered_and_small(tiny):
    assert TINY_MODEL in clipmodel.list_models()
    assert tiny.embed_dim == 64 and tiny.image_size == 64
    assert sum(p.numel() for p in tiny.model.parameters()) < 5_000_000
    assert tiny.key == f"{TINY_MODEL}|random-seed0"


def test_encode_images_any_size_and_mode(tiny):
    images = [Image.new("RGB", (300, 120), "red"), Image.new("L", (40, 90), 128),
              Image.new("RGBA", (64, 64), (0, 0, 255, 100)), Image.new("P", (10, 10))]
    feats = tiny.encode_images(images, batch_size=3)
    assert feats.shape == (4, 64) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(feats[0], feats[1])   # different images, different vectors


def test_text_and_zero_shot(tiny):
    txt = tiny.encode_texts(["a photo of a coyote", "a photo of a bobcat", "an empty frame"])
    assert txt.shape == (3, 64)
    tokens = tiny.tokenizer(["a coyote"])
    assert tokens.shape == (1, 77) and int(tokens[0, 0]) == 49406   # real CLIP BPE: <start_of_text>
    img = tiny.encode_images([Image.new("RGB", (64, 64), "green")])
    probs = tiny.zero_shot(img, txt)
    assert probs.shape == (1, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_cached_in_process_and_reproducible(tiny):
    assert load_clip(TINY_MODEL, None, device="cpu") is tiny
    fresh = load_clip(TINY_MODEL, None, device="cpu", cache=False)
    assert fresh is not tiny
    a = tiny.encode_texts(["a deer at night"])
    np.testing.assert_array_equal(a, fresh.encode_texts(["a deer at night"]))  # seeded random init


def test_local_checkpoint_file(tiny, tmp_path):
    # perturb the weights so loading them is observable
    state = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    state["visual.proj"] = state["visual.proj"] * -1.0
    ckpt = tmp_path / "finetuned.pt"
    torch.save({"state_dict": state}, ckpt)
    loaded = load_clip(TINY_MODEL, str(ckpt), device="cpu", cache=False)
    assert "file:" in loaded.key
    img = [Image.new("RGB", (80, 80), "orange")]
    np.testing.assert_allclose(loaded.encode_images(img), -tiny.encode_images(img), atol=1e-5)


def test_local_dir_layout_as_on_the_hub(tiny, tmp_path):
    """hf-hub repos (BioCLIP) hold open_clip_config.json + weights; local-dir: loads the same layout."""
    from safetensors.torch import save_file

    cfg = json.loads((clipmodel._CONFIG_DIR / "trailcam-tiny.json").read_text())
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in tiny.model.state_dict().items()}, tmp_path / "open_clip_model.safetensors")
    loaded = load_clip(f"local-dir:{tmp_path}", device="cpu", cache=False)
    assert loaded.embed_dim == 64 and loaded.key.startswith(f"local-dir:{tmp_path}|dir|")
    np.testing.assert_allclose(loaded.encode_texts(["a fox"]), tiny.encode_texts(["a fox"]), atol=1e-5)


def test_bad_names_give_clear_errors(tmp_path):
    with pytest.raises(TrailcamError, match="unknown CLIP model"):
        load_clip("no-such-model", None)
    with pytest.raises(TrailcamError, match="not-a-tag"):
        load_clip(TINY_MODEL, "not-a-tag")
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(TrailcamError, match="could not load"):
        load_clip(TINY_MODEL, str(bad), cache=False)
