"""The GAN workflow: one spec, written as UI-format and API-format JSON with comfy_workflows' builder.

    python tests/gan_workflows.py      # starts a real ComfyUI, rewrites workflows/6. Train a GAN and sample.json (+ api/)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from comfy_workflows import WORKFLOWS, build, check_api, check_ui  # noqa: E402

NAME = "6. Train a GAN and sample"
# (id, type, widget values, links) as in comfy_workflows.SPEC
GAN_SPEC = [
    (1, "TrainGAN", {"folder": "Favorites", "root": "input", "size": 256, "steps": 10000, "batch_size": 8,
                     "output_name": "trailcam_gan"}, {}),
    (2, "PreviewImage", {}, {"images": (1, 1)}),
    (3, "SampleGAN", {"seed": 0, "count": 16, "truncation": 0.9}, {"generator": (1, 0)}),
    (4, "SaveImage", {"filename_prefix": "trailcam/gan/sample"}, {"images": (3, 0)}),
]


def load() -> tuple[dict, dict]:
    return (json.loads((WORKFLOWS / f"{NAME}.json").read_text()),
            json.loads((WORKFLOWS / "api" / f"{NAME}.json").read_text()))


def write(info: dict) -> None:
    ui, api = build(NAME, info, GAN_SPEC)
    problems = check_ui(ui, info) + check_api(api, info)
    if problems:
        raise SystemExit(f"{NAME}: " + "; ".join(problems))
    (WORKFLOWS / f"{NAME}.json").write_text(json.dumps(ui, indent=1) + "\n")
    (WORKFLOWS / "api" / f"{NAME}.json").write_text(json.dumps(api, indent=1) + "\n")
    print("wrote", NAME)


if __name__ == "__main__":
    import tempfile

    from comfy_harness import prepare_test_inputs, start_comfy
    from trailcam_core.samples.synthetic import ensure_sample

    with tempfile.TemporaryDirectory() as tmp:
        sample = ensure_sample(Path(tmp) / "sample")
        with start_comfy(Path(tmp), prepare=lambda root: prepare_test_inputs(root, sample)) as server:
            info = server.object_info()
            assert "TrainGAN" in info, server.log_tail()
            write(info)
