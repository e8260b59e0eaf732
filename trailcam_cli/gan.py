"""`trailcam gan train | sample | interpolate | steer | eval`: a GAN of only your trail-camera images.

    trailcam gan train Favorites/ --out runs/gan --size 256 --steps 20000
    trailcam gan sample runs/gan/trailcam_gan.safetensors --out samples/ --count 64 --truncation 0.8
    trailcam gan steer runs/gan/trailcam_gan.safetensors --out runs/gan/steer
    trailcam gan sample runs/gan/trailcam_gan.safetensors --out glitchier/ --strength glitch=2
    trailcam gan interpolate runs/gan/trailcam_gan.safetensors --out walk.mp4 --seeds 0 4 9
    trailcam gan eval runs/gan/trailcam_gan.safetensors Favorites/ --out runs/gan/eval
    accelerate launch -m trailcam_cli gan train Favorites/ --out runs/gan ...      # several GPUs
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from trailcam_core.gan import (evaluate_generator, fit_directions, GanEvalOptions, GanInterpolateOptions,
                               GanSampleOptions, GanSteerOptions, GanTrainOptions, interpolation_video,
                               load_directions, parse_strengths, sample_to_folder, train_gan)
from trailcam_core.base import add_arguments, BatchReport, from_namespace, list_checkpoints

from ._common import finish, progress


def register(sub) -> None:
    p = sub.add_parser("gan", help="train and use a GAN of only your own trail-camera images",
                       description="A GAN trained from scratch on one image folder (FastGAN-style, DiffAugment): "
                                   "train it, sample it, walk its latent space, steer it toward your tags "
                                   "(infrared, flash night, glitch, info bar) and evaluate it.")
    gsub = p.add_subparsers(dest="gan_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    t = gsub.add_parser("train", help="train on an image folder (Ctrl-C saves a checkpoint; --resume latest)")
    t.add_argument("data", help="folder of images (crops, a favourites export, any image folder)")
    t.add_argument("--out", required=True, help="run folder (generator, checkpoints, previews, loss curve)")
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    add_arguments(t, GanTrainOptions)
    t.set_defaults(func=run_train)

    s = gsub.add_parser("sample", help="write N sample PNGs (with their parameters) and a grid")
    s.add_argument("generator", help="generator .safetensors written by `trailcam gan train`")
    s.add_argument("--out", required=True, help="folder for the PNGs (a source for `trailcam mosaic` as is)")
    s.add_argument("--strength", action="append", default=[], metavar="NAME=S",
                   help="move along a fitted direction (see `trailcam gan steer`), e.g. glitch=2; repeatable")
    add_arguments(s, GanSampleOptions)
    s.set_defaults(func=run_sample)

    i = gsub.add_parser("interpolate", help="an mp4 walk through the latent space between seeds")
    i.add_argument("generator", help="generator .safetensors")
    i.add_argument("--out", required=True, help="the .mp4 to write")
    i.add_argument("--strength", action="append", default=[], metavar="NAME=S", help="as for sample")
    add_arguments(i, GanInterpolateOptions)
    i.set_defaults(func=run_interpolate)

    st = gsub.add_parser("steer", help="fit latent directions for the tags (sample, tag, fit) and draw strips")
    st.add_argument("generator", help="generator .safetensors (the directions are saved beside it)")
    st.add_argument("--out", required=True, help="folder for the strips along each direction")
    add_arguments(st, GanSteerOptions)
    st.set_defaults(func=run_steer)

    e = gsub.add_parser("eval", help="KID / FID / precision-recall against the real images, with pictures")
    e.add_argument("generator", help="generator .safetensors")
    e.add_argument("real", help="folder of the real (training) images")
    e.add_argument("--out", required=True, help="report folder (report.md, report.json, PNGs)")
    add_arguments(e, GanEvalOptions)
    e.set_defaults(func=run_eval)


def run_train(args) -> int:
    options = from_namespace(GanTrainOptions, args)
    try:
        with progress("gan train", unit="step") as bar:
            result = train_gan(args.data, args.out, options, progress=bar)
    except KeyboardInterrupt:
        saved = list_checkpoints(Path(args.out))
        if saved:
            print(f"checkpoint saved: {saved[-1]} (continue with --resume latest)", file=sys.stderr)
        raise
    if int(os.environ.get("RANK", "0") or 0) != 0:      # under `accelerate launch` the main process reports
        return 0
    return finish(result.to_report(), json_out=args.json)


def run_sample(args) -> int:
    options = from_namespace(GanSampleOptions, args)
    strengths = parse_strengths(args.strength)
    with progress("gan sample") as bar:
        report = sample_to_folder(args.generator, args.out, options, load_directions(args.generator, bool(strengths)),
                                  strengths, progress=bar)
    return finish(report)


def run_interpolate(args) -> int:
    options = from_namespace(GanInterpolateOptions, args)
    strengths = parse_strengths(args.strength)
    with progress("gan interpolate", unit="frame") as bar:
        path = interpolation_video(args.generator, args.out, options, load_directions(args.generator, bool(strengths)),
                                   strengths, progress=bar)
    return finish(BatchReport(stage="gan interpolate", processed=1, outputs={"video": path}))


def run_steer(args) -> int:
    options = from_namespace(GanSteerOptions, args)
    with progress("gan steer") as bar:
        result = fit_directions(args.generator, options, out_dir=args.out, progress=bar)
    print(result.table())
    rep = BatchReport(stage="gan steer", processed=len(result.directions), outputs={"directions": result.path})
    for name, why in result.not_fitted.items():
        rep.skip(name, why)
    return finish(rep)


def run_eval(args) -> int:
    options = from_namespace(GanEvalOptions, args)
    with progress("gan eval", unit="part") as bar:
        rep = evaluate_generator(args.generator, args.real, args.out, options, progress=bar)
    print(f"features: {rep.extractor}")
    print(f"KID {rep.kid[0]:.5f} (floor {rep.kid_floor[0]:.5f}, ceiling {rep.kid_ceiling[0]:.5f}): "
          f"{rep.gap_closed:.1%} of the gap closed; FID {rep.fid:.3f}; "
          + ", ".join(f"{k} {v:.3f}" for k, v in rep.prdc.items()))
    return finish(BatchReport(stage="gan eval", processed=rep.samples, outputs={"report": rep.markdown_path}))
