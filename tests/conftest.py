"""Shared fixtures. Fixtures are generated here; real sample photos are read from ../shared/cct-sample."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

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
    from trailcam_core.sample import ensure_sample

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

    small = build_small_sdxl_checkpoint(pytestconfig.cache.mkdir("small-sdxl") / "small-sdxl.safetensors",
                                        require_comfyui())

    def prepare(root):
        prepare_test_inputs(root, sample_cct)
        (root / "models" / "checkpoints" / "small-sdxl.safetensors").symlink_to(small)

    with start_comfy(tmp_path_factory.mktemp("comfyui"), prepare=prepare) as srv:
        yield srv
