"""`trailcam train`: train an SDXL LoRA (kohya file for ComfyUI and diffusers) on captioned images.

    trailcam train favourites/ --base sd_xl_base_1.0.safetensors --out runs/night --preset civitai-sdxl
    accelerate launch -m trailcam_cli train favourites/ --base ... --out ...     # several GPUs
"""
from __future__ import annotations

import sys
from pathlib import Path

from trailcam_core.lora import PRESETS, train_lora, TrainOptions
from trailcam_core.base import add_arguments, describe, list_checkpoints

from ._common import finish, progress


def register(sub) -> None:
    p = sub.add_parser("train", help="train an SDXL LoRA on captioned images",
                       description="Train an SDXL LoRA on a folder of images with .txt caption sidecars (or a CCT "
                                   "JSON subset with --caption-template) and write one kohya-format .safetensors "
                                   "that ComfyUI's LoraLoader and diffusers load. Ctrl-C saves a checkpoint; "
                                   "--resume latest continues it exactly.")
    p.add_argument("data", help="folder of images + same-stem .txt captions (or metadata.jsonl), or a CCT JSON file")
    p.add_argument("--base", required=True, help="SDXL base model: a diffusers folder or a single-file checkpoint")
    p.add_argument("--out", required=True, help="output folder (LoRA, samples, checkpoints, caches)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="start from a preset (civitai-sdxl: the seed's Civitai defaults); flags override it")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_arguments(p, TrainOptions)
    p.set_defaults(func=run)


def _options(args) -> TrainOptions:
    given = {info.name: getattr(args, info.name) for info in describe(TrainOptions)
             if getattr(args, info.name, None) is not None}
    if args.preset:
        return TrainOptions.preset(args.preset, **given)
    return TrainOptions(**given)


def _data(path: str):
    p = Path(path)
    if p.is_file() and p.suffix.lower() == ".json":
        from trailcam_core.ingest import load_dataset

        return load_dataset(p).records()
    return p


def run(args) -> int:
    options = _options(args)
    try:
        with progress("train", unit="step") as bar:
            result = train_lora(_data(args.data), args.base, args.out, options, progress=bar)
    except KeyboardInterrupt:
        saved = list_checkpoints(Path(args.out))
        if saved:
            print(f"checkpoint saved: {saved[-1]} (continue with --resume latest)", file=sys.stderr)
        raise
    for sample in result.samples[-len(options.sample_prompts or []) or None:]:
        print(f"  sample {sample}", file=sys.stderr)
    if not options.train_text_encoder:
        from trailcam_core.generate import clip_strength_notes
        from trailcam_core.generate import LoraSpec

        for note in clip_strength_notes([LoraSpec(str(result.lora_path))]):
            print(f"note: {note}", file=sys.stderr)
    return finish(result.to_report(), json_out=args.json)
