"""`trailcam generate` and `trailcam strength-grid`: SDXL + LoRAs with model and CLIP strengths."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trailcam_core.generate import pipeline as core
from trailcam_core.base import add_arguments, from_namespace

from ._common import progress


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", required=True, help="SDXL base: a diffusers folder or a single-file checkpoint")
    add_arguments(p, core.GenerateOptions)
    p.add_argument("--out", default="generations", help="output folder (default: generations)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--dtype", default=None, choices=("fp16", "bf16", "fp32"), help="weights precision")


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate images with SDXL and LoRAs (model/CLIP strengths)",
                       description="Generate with SDXL plus LoRA files; every PNG carries its parameters.")
    _common(p)
    p.add_argument("--lora", action="append", default=[], metavar="FILE[:MODEL[:CLIP]]",
                   help="a LoRA file with its model and CLIP strengths (repeat for several); e.g. flash.safetensors:0.8:1")
    p.set_defaults(func=run_generate)

    g = sub.add_parser("strength-grid", help="a labelled grid of model strength x CLIP strength",
                       description="Render one prompt and seed at every model/CLIP strength pair of a LoRA.")
    _common(g)
    g.add_argument("--lora", required=True, help="the LoRA file to explore")
    g.add_argument("--model-strengths", default="0,0.5,1", help="'0,0.5,1' or 'start:stop:count'")
    g.add_argument("--clip-strengths", default="0,0.5,1", help="'0,0.5,1' or 'start:stop:count'")
    g.add_argument("--extra-lora", action="append", default=[], metavar="FILE[:MODEL[:CLIP]]",
                   help="other LoRAs held at fixed strengths")
    g.set_defaults(func=run_grid)


def _print_clip_notes(specs) -> None:
    from trailcam_core.generate import clip_strength_notes

    for note in clip_strength_notes(specs):
        print(f"note: {note}")


def run_generate(args) -> int:
    options = from_namespace(core.GenerateOptions, args)
    gen = core.Generator(device=args.device, dtype=args.dtype)
    specs = [core.LoraSpec.parse(s) for s in args.lora]
    _print_clip_notes(specs)
    with progress("generate", unit="step") as bar:
        images = gen.generate(args.base, specs, options, out_dir=args.out, progress=bar)
    for item in images:
        print(item.path)
    if gen.size_note:
        print(f"size {images[0].params['width']}x{images[0].params['height']}: {gen.size_note}", file=sys.stderr)
    print(f"generate: {len(images)} image(s) -> {Path(args.out)}")
    return 0


def run_grid(args) -> int:
    options = from_namespace(core.GenerateOptions, args)
    gen = core.Generator(device=args.device, dtype=args.dtype)
    ms, cs = core.parse_strengths(args.model_strengths), core.parse_strengths(args.clip_strengths)
    out = Path(args.out) / f"strength_grid_{Path(args.lora).stem}_seed{options.seed}.png"
    _print_clip_notes([core.LoraSpec(args.lora)])
    with progress("strength grid", unit="img") as bar:
        core.strength_grid(args.base, args.lora, options, ms, cs, out_path=out,
                           other_loras=[core.LoraSpec.parse(s) for s in args.extra_lora], generator=gen, progress=bar)
    print(f"strength-grid: {len(ms)}x{len(cs)} cells -> {out}")
    return 0
