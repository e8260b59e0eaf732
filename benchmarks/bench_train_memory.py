"""Peak memory of one LoRA training step on a full-size SDXL, on the CPU, at 64 px.

Builds a full-size SDXL with random weights (the SDXL base configuration in ``trailcam_core.models.sdxl``,
saved as a diffusers folder in fp16, 6.5 GB on disk; built once and reused with --model-dir),
then runs ``trailcam train`` in a child process for one step (bf16 mixed precision, gradient
checkpointing, UNet + both text encoders, rank 4) and reads the child's peak RSS (ru_maxrss).

Target: peak RSS <= 9 GiB.  Named baseline: the trainer as it was, which loaded the whole pipeline
in fp32 and cast it afterwards (``--baseline`` measures that load in a child too; it needs about
15 GB free, so it is off by default on shared machines; its figure from the issue is 14.7 GiB).

    python benchmarks/bench_train_memory.py [--model-dir /tmp/sdxl-full-random] [--baseline]

Heavy: about 2 minutes to build, a few minutes per step on 2 cores. Run it alone.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GIB = 1024 ** 3
TARGET_GIB = 9.0


def write_safetensors_streaming(path: Path, tensors: dict) -> None:
    """Write tensors as one .safetensors file, one tensor at a time (safetensors' save_file first
    turns every tensor into bytes, doubling the model in memory)."""
    import torch

    names = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.int64: "I64"}
    header, offset = {}, 0
    for k, t in tensors.items():
        n = t.numel() * t.element_size()
        header[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as fh:
        fh.write(len(raw).to_bytes(8, "little"))
        fh.write(raw)
        for t in tensors.values():
            fh.write(t.detach().contiguous().view(torch.uint8).reshape(-1).numpy().tobytes())
    os.replace(tmp, path)


def build_full_sdxl(dest: Path) -> Path:
    """A full-size SDXL base (random weights, fp16) as a diffusers folder; each part freed before the next."""
    import shutil

    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from trailcam_core.models import sdxl

    if (dest / "model_index.json").is_file():
        return dest
    cfg_dir = sdxl.write_sdxl_config_dir(dest.parent / (dest.name + "-configs"))
    dest.mkdir(parents=True, exist_ok=True)
    for sub in ("tokenizer", "tokenizer_2", "scheduler"):
        shutil.copytree(cfg_dir / sub, dest / sub, dirs_exist_ok=True)
    torch.manual_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)            # built straight in fp16: 5 GB for the UNet, not 10
    try:
        for sub, factory in (("unet", lambda: UNet2DConditionModel.from_config(sdxl.SDXL_UNET)),
                             ("vae", lambda: AutoencoderKL.from_config(sdxl.SDXL_VAE))):
            t0 = time.perf_counter()
            model = factory()
            (dest / sub).mkdir(exist_ok=True)
            model.save_config(dest / sub)
            write_safetensors_streaming(dest / sub / "diffusion_pytorch_model.safetensors", model.state_dict())
            print(f"  built {sub} in {time.perf_counter() - t0:.0f} s", flush=True)
            del model
            gc.collect()
        for sub, cls, cfg in (("text_encoder", CLIPTextModel, sdxl.SDXL_TEXT_ENCODER),
                              ("text_encoder_2", CLIPTextModelWithProjection, sdxl.SDXL_TEXT_ENCODER_2)):
            model = cls(CLIPTextConfig(**{k: v for k, v in cfg.items() if k != "architectures"}))
            model.save_pretrained(dest / sub, safe_serialization=True)
            del model
            gc.collect()
    finally:
        torch.set_default_dtype(old)
    (dest / "model_index.json").write_text(json.dumps(sdxl.SDXL_MODEL_INDEX))
    return dest


def make_data(folder: Path, n: int = 2) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
        (folder / f"img{i}.txt").write_text("deer, night, infrared")
    return folder


def run_child(argv: list[str]) -> tuple[int, float, float, str]:
    """(exit code, peak RSS GiB, wall s, output tail) of a child process."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        _, status, usage = os.wait4(proc.pid, 0)            # this child's own peak, not the largest so far
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        log.seek(0)
        out = log.read()
    return proc.returncode, usage.ru_maxrss * 1024 / GIB, wall, out[-1500:]


BASELINE = """
import resource, sys, torch
from trailcam_core.models.sdxl import load_sdxl
pipe = load_sdxl(sys.argv[1], dtype=torch.float32)        # the old trainer: fp32 first ...
pipe.unet.to(dtype=torch.bfloat16)                        # ... then cast
for te in (pipe.text_encoder, pipe.text_encoder_2):
    te.to(dtype=torch.bfloat16)
print("baseline loaded")
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", default=os.path.join(tempfile.gettempdir(), "trailcam-sdxl-full-random"))
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--baseline", action="store_true", help="also measure the old fp32-then-cast load (~15 GB)")
    ap.add_argument("--no-text-encoder", action="store_true", help="train the UNet only")
    args = ap.parse_args()
    try:
        import torch

        print("GPU:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (CPU run)")
    except Exception:  # noqa: BLE001
        print("GPU: no GPU")
    model = Path(args.model_dir)
    t0 = time.perf_counter()
    if not (model / "model_index.json").is_file():
        build_full_sdxl(model)          # in this process: the trainer's peak is read from its own child
        print(f"built full-size random SDXL in {time.perf_counter() - t0:.0f} s -> {model}")
    size = sum(f.stat().st_size for f in model.rglob("*") if f.is_file()) / 1e9
    print(f"model: {model} ({size:.1f} GB on disk, fp16)")
    gc.collect()

    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp) / "data")
        argv = [sys.executable, "-m", "trailcam_cli", "train", str(data), "--base", str(model), "--out",
                str(Path(tmp) / "run"), "--resolution", "64", "--bucket-step", "16", "--max-steps", str(args.steps),
                "--rank", "4", "--batch-size", "1", "--mixed-precision", "bf16", "--gradient-checkpointing",
                "--no-cache-to-disk", "--json"]
        argv.append("--no-train-text-encoder" if args.no_text_encoder else "--train-text-encoder")
        code, peak, wall, out = run_child(argv)
        if code != 0:
            print(out)
            print(f"training failed (exit {code})")
            return 1
        lora = Path(tmp) / "run" / "trailcam_lora.safetensors"
        from trailcam_core.lora.kohya import read_metadata

        meta = read_metadata(lora)
        from safetensors import safe_open

        with safe_open(str(lora), framework="pt") as fh:
            stems = {k.split(".")[0] for k in fh.keys()}
        print(f"trailcam train, {args.steps} step(s) at 64 px, bf16, UNet{'' if args.no_text_encoder else ' + text encoders'}: "
              f"peak RSS {peak:.2f} GiB, {wall:.0f} s wall; {len(stems)} LoRA modules, "
              f"ss_network_args {meta.get('ss_network_args')}")
        ok = peak <= TARGET_GIB
        base_peak = None
        if args.baseline:
            code, base_peak, bwall, bout = run_child([sys.executable, "-c", BASELINE, str(model)])
            if code != 0:
                print(bout)
            print(f"baseline (old loader: fp32 pipeline, then cast; load only): peak RSS {base_peak:.2f} GiB, {bwall:.0f} s")
    ref = base_peak if base_peak is not None else 14.7
    label = "measured above" if base_peak is not None else "the issue's figure, not measured in this run"
    print(f"target: <= {TARGET_GIB} GiB -> {'met' if ok else 'NOT met'}; ratio to the fp32-then-cast baseline "
          f"({ref:.1f} GiB, {label}): {peak / ref:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
