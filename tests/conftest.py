"""Shared fixtures. Fixtures are generated here; real sample photos are read from ../shared/cct-sample."""
from __future__ import annotations

import os
from pathlib import Path

import json

import pytest
from PIL import Image

from detection_files import det as _det, md as _md

REPO = Path(__file__).resolve().parents[1]
SHARED_SAMPLE = REPO.parent / "shared" / "cct-sample"


@pytest.fixture(scope="session")
def cct_sample_dir() -> Path:
    """The 44 real Caltech photos beside the checkout (read only; never copied into the repo)."""
    if not SHARED_SAMPLE.is_dir():
        pytest.skip("../shared/cct-sample is not beside this checkout")
    return SHARED_SAMPLE


# --- data core (issue 2): synthetic sample and a private TRAILCAM_HOME -------------------------
@pytest.fixture(scope="session", autouse=True)
def _trailcam_home(tmp_path_factory):
    """Point TRAILCAM_HOME (sample + dataset caches) at a temp folder: tests never touch ~/.cache."""
    old = os.environ.get("TRAILCAM_HOME")
    os.environ["TRAILCAM_HOME"] = str(tmp_path_factory.mktemp("trailcam_home"))
    yield Path(os.environ["TRAILCAM_HOME"])
    if old is None:
        os.environ.pop("TRAILCAM_HOME", None)
    else:
        os.environ["TRAILCAM_HOME"] = old


@pytest.fixture(scope="session")
def sample_cct(tmp_path_factory) -> Path:
    """Path of the synthetic sample's CCT JSON (about 100 frames beside it), generated once per session.

    Treat it as read only; copy it (shutil.copytree(sample_cct.parent, ...)) before changing anything.
    """
    from trailcam_core.samples.synthetic import ensure_sample

    return ensure_sample(tmp_path_factory.mktemp("sample") / "sample")


# --- ComfyUI node pack (issue 8): one real ComfyUI server per session ---------------------------
@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory, sample_cct, pytestconfig):
    """A real ComfyUI 0.3.75 on 127.0.0.1 with this repo in custom_nodes/ (see tests/comfy_harness.py).

    Its input folder holds the synthetic sample under ``trailcam_sample/``; its models/diffusers
    folder holds the tiny SDXL as ``tiny-sdxl/``; models/checkpoints holds a small single-file
    SDXL that CheckpointLoaderSimple loads (``small-sdxl.safetensors``, tests/sdxl_comfy_checkpoint.py;
    built once into pytest's cache folder, about 2 GB).
    """
    from comfy_harness import prepare_test_inputs, require_comfyui, start_comfy
    from sdxl_comfy_checkpoint import build_small_sdxl_checkpoint

    cache = pytestconfig.cache      # None under -p no:cacheprovider: then a folder of this session
    folder = cache.mkdir("small-sdxl") if cache is not None else tmp_path_factory.mktemp("small-sdxl")
    small = build_small_sdxl_checkpoint(folder / "small-sdxl.safetensors", require_comfyui())

    def prepare(root):
        prepare_test_inputs(root, sample_cct)
        (root / "models" / "checkpoints" / "small-sdxl.safetensors").symlink_to(small)

    with start_comfy(tmp_path_factory.mktemp("comfyui"), prepare=prepare) as srv:
        yield srv


# --- detector results: a photo folder and AddaxAI-style results for it ----------------
@pytest.fixture
def photos(tmp_path) -> Path:
    """A plain folder of camera photos in camera sub-folders (no labels)."""
    root = tmp_path / "photos"
    for i in range(9):
        f = root / f"cam{i % 3}" / f"IMG_{i:04d}.JPG"
        f.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (200, 100), (20 * i, 90, 40)).save(f)
    return root


@pytest.fixture
def photo_results(tmp_path) -> Path:
    """AddaxAI-style results for the photos folder, written on Windows (backslashes)."""
    images = [
        {"file": "cam0\\IMG_0000.JPG", "detections": [_det("1", 0.95, (0.5, 0.5, 0.25, 0.5),
                                                          classifications=[["0", 0.9]], prev_category="1",
                                                          prev_conf=0.95), _det("2", 0.05)]},
        {"file": "cam1\\IMG_0001.JPG", "detections": [_det("2", 0.12)]},
        {"file": "cam2\\IMG_0002.JPG", "detections": [_det("3", 0.63), _det("1", 0.41, classifications=[["1", 0.8]])]},
        {"file": "cam0\\IMG_0003.JPG", "detections": [_det("1", 0.2, classifications=[["1", 0.7]])]},
        {"file": "cam1\\IMG_0004.JPG", "detections": []},
        {"file": "cam2\\IMG_0005.JPG", "failure": "Failure image access", "detections": None},
        {"file": "cam0\\IMG_0006.JPG", "detections": [_det("1", 0.88, classifications=[["0", 0.6]])]},
        {"file": "cam9\\gone.jpg", "detections": [_det("1", 0.9)]},
    ]
    path = tmp_path / "image_recognition_file.json"
    path.write_text(json.dumps(_md(images, {"0": "coyote", "1": "Bobcat "}), indent=1))
    return path
