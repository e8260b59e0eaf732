"""`trailcam gan train | sample | interpolate | steer | eval` end to end, in a subprocess as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TINY = ["--size", "64", "--batch-size", "4", "--z-dim", "16", "--ngf", "4", "--ndf", "4", "--preview-every", "0",
        "--ema-start", "1"]


def _cli(*args, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    return subprocess.run([sys.executable, "-m", "trailcam_cli", "gan", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)


def _ok(proc):
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    return proc.stdout


def test_cli_train_sample_interpolate_steer_eval(sample_cct, tmp_path):
    data = sample_cct.parent
    run = tmp_path / "run"
    out = _ok(_cli("train", data, "--out", run, "--steps", "4", "--checkpoint-every", "2", *TINY))
    assert "gan train: 4 done" in out
    gen = run / "trailcam_gan.safetensors"
    assert gen.is_file() and (run / "trailcam_gan.loss.png").is_file()
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == ["step-00000002", "step-00000004"]

    _ok(_cli("sample", gen, "--out", tmp_path / "samples", "--count", "6", "--truncation", "0.7"))
    pngs = sorted((tmp_path / "samples").glob("seed*.png"))
    assert len(pngs) == 6 and Image.open(pngs[0]).size == (64, 64)
    assert json.loads(Image.open(pngs[0]).text["trailcam_gan"])["truncation"] == 0.7

    assert (tmp_path / "samples" / "grid.png").is_file()
    # a folder of samples is a source for mosaics like any other folder
    _ok(_cli("sample", gen, "--out", tmp_path / "for_mosaic", "--count", "5", "--no-grid"))
    from trailcam_core.embed.features import EmbedOptions, embed_images
    emb = embed_images(tmp_path / "for_mosaic", EmbedOptions(features="pyramid", pyramid_size=16))
    assert len(emb.ids) == 5

    _ok(_cli("interpolate", gen, "--out", tmp_path / "walk.mp4", "--seeds", "0", "1", "--frames", "3"))
    assert (tmp_path / "walk.mp4").stat().st_size > 1000

    out = _ok(_cli("steer", gen, "--out", tmp_path / "steer", "--samples", "40", "--batch-size", "20",
                   "--min-class", "2"))
    assert "| direction |" in out and (run / "trailcam_gan.directions.json").is_file()
    fitted = json.loads((run / "trailcam_gan.directions.json").read_text())
    assert set(fitted["directions"]) | set(fitted["not_fitted"]) == {"night-infrared", "night-flash", "day",
                                                                      "glitch", "info-bar"}

    out = _ok(_cli("eval", gen, data, "--out", tmp_path / "eval", "--samples", "30", "--kid-subsets", "5"))
    assert "pyramid features" in out and "of the gap closed" in out
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "floor: real half vs real half" in report and "ceiling: untrained generator" in report
    figures = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert [s for s, _ in figures["curve"]] == [0, 2, 4]               # KID over the checkpoints
    for pic in ("samples.png", "real.png", "nearest_real.png", "kid_curve.png"):
        assert (tmp_path / "eval" / pic).is_file(), pic


def test_cli_bad_input_is_one_clear_line(tmp_path):
    few = tmp_path / "few"
    few.mkdir()
    for i in range(3):
        Image.fromarray(np.full((70, 70, 3), 40 * i, np.uint8)).save(few / f"{i}.png")
    proc = _cli("train", few, "--out", tmp_path / "run", *TINY)
    assert proc.returncode == 1 and "3 usable images; a GAN needs at least 8" in proc.stderr
    proc = _cli("sample", tmp_path / "missing.safetensors", "--out", tmp_path / "s")
    assert proc.returncode == 1 and "generator file not found" in proc.stderr
    proc = _cli("train", few, "--out", tmp_path / "run", "--size", "100")
    assert proc.returncode == 2 and "invalid choice: 100" in proc.stderr


def test_accelerate_launch_with_two_processes_trains_one_generator(sample_cct, tmp_path):
    """`accelerate launch` (2 CPU processes, gloo, DDP): each process draws its own batches, the
    main one alone reports and writes."""
    out = tmp_path / "multi"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    run = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu",
                          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                          "-m", "trailcam_cli", "gan", "train", str(sample_cct.parent), "--out", str(out),
                          "--steps", "2", "--mixed-precision", "no", *TINY],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("gan train: 2 done") == 1, run.stdout
    assert json.loads((out / "trailcam_gan.losses.json").read_text())["steps"] == 2
    assert (out / "trailcam_gan.safetensors").is_file()
