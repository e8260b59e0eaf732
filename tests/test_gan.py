"""The GAN stage's core: config, bad input, training (both modes of a toy set), exact resume,
Cancel, NaN, export reproducing samples bit for bit, sampling, videos. CPU, tiny configs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from trailcam_core.base.errors import Cancelled, TrailcamError  # noqa: E402
from trailcam_core.gan.config import GanConfig, GanInterpolateOptions, GanSampleOptions, GanTrainOptions
from trailcam_core.gan.train import NonFiniteLoss, train_gan
from trailcam_core.gan.sample import generate, interpolation_video, read_parameters, sample_to_folder
from trailcam_core.gan.export import load_generator, read_generator_metadata
from trailcam_core.gan.data import load_images
from trailcam_core.gan.steer import tag_pixels
from trailcam_core.base.checkpoints import list_checkpoints  # noqa: E402
from trailcam_core.gan.train import GanTrainer  # noqa: E402

TINY = dict(size=64, batch_size=4, z_dim=16, ngf=4, ndf=4, preview_every=0, checkpoint_every=0, ema_start=2,
            ema_beta=0.9)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)          # the machine is shared: one thread is faster and steadier here
    yield
    torch.set_num_threads(old)


def _frames(folder: Path, n: int = 8, size: int = 80, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size + 16, 3), dtype=np.uint8)).save(folder / f"f{i:02d}.jpg")
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return load_images(_frames(tmp_path_factory.mktemp("gan_frames")), 64)


# ------------------------------------------------------------------------------------ config, input
def test_config_round_trips_as_json(tmp_path):
    cfg = GanConfig(size=128, z_dim=64, ngf=16, ndf=8)
    path = cfg.save(tmp_path / "c.json")
    assert GanConfig.load(path) == cfg
    assert json.loads(path.read_text())["g_channels"]["128"] == cfg.g_channels[128]
    assert [r for r in cfg.g_channels] == [4, 8, 16, 32, 64, 128]


@pytest.mark.parametrize("size", [32, 100, 2048])
def test_unsupported_size_names_the_allowed_ones(size):
    with pytest.raises(TrailcamError, match=r"64, 128, 256, 512, 1024"):
        GanTrainOptions(size=size).validate()


def test_fewer_than_eight_images_names_count_and_minimum(tmp_path):
    with pytest.raises(TrailcamError, match=r"5 usable images.*at least 8"):
        load_images(_frames(tmp_path / "few", 5), 64)


def test_corrupt_skipped_grey_and_rgba_converted(tmp_path):
    folder = _frames(tmp_path / "mixed", 8)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.new("L", (70, 70), 90).save(folder / "grey.png")
    rgba = Image.new("RGBA", (70, 70), (255, 0, 0, 0))
    rgba.paste((0, 255, 0, 255), (0, 0, 35, 70))
    rgba.save(folder / "rgba.png")
    imgs = load_images(folder, 64)
    assert len(imgs) == 10 and imgs.tensor.shape == (10, 3, 64, 64)
    assert [Path(p).name for p, _ in imgs.skipped] == ["broken.jpg"] and "cannot decode" in imgs.skipped[0][1]
    names = [p.name for p in imgs.paths]
    grey = imgs.tensor[names.index("grey.png")]
    assert (grey == 90).all()
    rg = imgs.tensor[names.index("rgba.png")]
    assert rg[:, :, 40:].max() == 0 and rg[1, :, :20].min() > 200      # transparent -> black, opaque kept


# ------------------------------------------------------------------------------------ training
def _cancel_at(step):
    def cb(done, total, message="", preview=None):
        if done == step and message.startswith("D "):
            raise Cancelled("test")
    return cb


def test_resume_equals_uninterrupted_and_cancel_saves(images, tmp_path):
    opts = GanTrainOptions(**TINY, steps=6)
    full = train_gan(images, tmp_path / "full", opts)
    with pytest.raises(Cancelled):
        train_gan(images, tmp_path / "cut", opts, progress=_cancel_at(3))
    saved = list_checkpoints(tmp_path / "cut")
    assert [p.name for p in saved] == ["step-00000003"]                 # Cancel wrote a checkpoint
    resumed = train_gan(images, tmp_path / "cut", GanTrainOptions(**TINY, steps=6, resume="latest"))
    assert resumed.d_losses == full.d_losses and resumed.g_losses == full.g_losses
    assert all(np.isfinite(full.d_losses)) and all(np.isfinite(full.g_losses))
    a, b = load_generator(full.generator_path), load_generator(resumed.generator_path)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_resume_with_another_config_names_the_mismatch(images, tmp_path):
    train_gan(images, tmp_path, GanTrainOptions(**TINY, steps=2))
    with pytest.raises(TrailcamError, match=r"ngf=4 \(now 8\)"):
        GanTrainer(images, tmp_path, GanTrainOptions(**{**TINY, "ngf": 8}, steps=4, resume="latest"))


def test_export_reloads_and_reproduces_samples_bit_for_bit(images, tmp_path):
    result = train_gan(images, tmp_path, GanTrainOptions(**{**TINY, "preview_every": 3, "preview_count": 4}, steps=3))
    config, training = read_generator_metadata(result.generator_path)
    assert config.size == 64 and training["steps"] == 3 and training["images"] == len(images)
    assert json.loads(result.generator_path.with_suffix(".json").read_text())["config"]["z_dim"] == 16
    g = load_generator(result.generator_path)
    first = [np.asarray(im) for im in generate(g, seed=5, count=3)]
    again = [np.asarray(im) for im in generate(load_generator(result.generator_path), seed=7, count=1)]
    assert np.array_equal(first[2], again[0])             # image i comes from seed + i, whatever the count
    assert result.previews and Image.open(result.previews[0]).size[0] > 64     # the preview grid
    assert result.loss_curve.is_file()
    # the file alone: copied elsewhere, with nothing beside it
    lone = tmp_path / "elsewhere" / "g.safetensors"
    lone.parent.mkdir()
    shutil.copy(result.generator_path, lone)
    assert np.array_equal(np.asarray(generate(load_generator(lone), seed=5, count=1)[0]), first[0])


def test_generator_file_of_another_config_is_refused(images, tmp_path):
    result = train_gan(images, tmp_path, GanTrainOptions(**TINY, steps=1))
    with pytest.raises(TrailcamError, match=r"another GAN config: .*z_dim 16 vs 32"):
        load_generator(result.generator_path, expect=GanConfig(size=64, z_dim=32, ngf=4, ndf=4))
    not_gan = tmp_path / "other.safetensors"
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(2)}, str(not_gan))
    with pytest.raises(TrailcamError, match="not a trailcam GAN generator"):
        load_generator(not_gan)


class _NanAtStep3(GanTrainer):
    """The real trainer whose discriminator loss turns NaN at the third step (as a diverged run's does)."""

    def d_loss(self, real, fake, quarter):
        loss = super().d_loss(real, fake, quarter)
        self.calls = getattr(self, "calls", 0) + 1
        return loss * float("nan") if self.calls == 3 else loss


def test_nan_loss_stops_with_the_last_good_checkpoint(images, tmp_path):
    trainer = _NanAtStep3(images, tmp_path, GanTrainOptions(**{**TINY, "checkpoint_every": 2}, steps=10))
    with pytest.raises(NonFiniteLoss, match=r"stopped at step 3.*discriminator loss is nan.*step-00000002"):
        trainer.run()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000002"]
    assert not (tmp_path / "trailcam_gan.safetensors").exists()


def test_sample_folder_pngs_carry_parameters_and_video(images, tmp_path):
    result = train_gan(images, tmp_path / "run", GanTrainOptions(**TINY, steps=1))
    rep = sample_to_folder(result.generator_path, tmp_path / "s", GanSampleOptions(seed=3, count=4, truncation=0.5))
    pngs = sorted((tmp_path / "s").glob("seed*.png"))
    assert [p.name for p in pngs] == [f"seed{s:08d}.png" for s in range(3, 7)] and rep.outputs["grid"].is_file()
    params = read_parameters(pngs[1])
    assert params["seed"] == 4 and params["truncation"] == 0.5 and params["generator"] == "trailcam_gan.safetensors"
    # truncation 0 collapses every seed onto the same image
    zero = generate(load_generator(result.generator_path), seed=0, count=2, truncation=0.0)
    assert np.array_equal(np.asarray(zero[0]), np.asarray(zero[1]))
    video = interpolation_video(result.generator_path, tmp_path / "walk.mp4",
                                GanInterpolateOptions(seeds=[0, 1, 2], frames=4, fps=8))
    import av
    with av.open(str(video)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 12 and frames[0].width == 256


# ------------------------------------------------------------------------------------ two modes
def _two_mode_set(sample_cct: Path, dest: Path, per_mode: int = 8) -> Path:
    """Day and infrared-night frames of the bundled sample, told apart by the tagger."""
    from trailcam_core.tags.auto import pixel_tags

    dest.mkdir(parents=True, exist_ok=True)
    counts = {"day": 0, "night-infrared": 0}
    for f in sorted(sample_cct.parent.glob("*.jpg")):
        tod = pixel_tags(f)["time_of_day"].value
        if tod in counts and counts[tod] < per_mode:
            shutil.copy(f, dest / f.name)
            counts[tod] += 1
    assert counts == {"day": per_mode, "night-infrared": per_mode}, counts
    return dest


@pytest.mark.slow
def test_a_short_run_learns_both_modes_of_a_toy_set(sample_cct, tmp_path):
    """8 day + 8 infrared-night frames: after 1,500 tiny steps (13 minutes on 2 loaded cores) the EMA
    generator draws both, as the tagger tells them apart (near-grey counts as infrared, see steer)."""
    from trailcam_core.gan.steer import labels_for

    data = _two_mode_set(sample_cct, tmp_path / "modes")
    opts = GanTrainOptions(size=64, steps=1500, batch_size=8, z_dim=32, ngf=8, ndf=8, lr=1e-3, preview_every=0,
                           checkpoint_every=0, ema_start=10, ema_beta=0.95, augment=["translation"])
    result = train_gan(data, tmp_path / "run", opts)
    assert all(np.isfinite(result.d_losses)) and all(np.isfinite(result.g_losses))
    tags = [tag_pixels(im) for im in generate(load_generator(result.generator_path), 0, 48)]
    labels = labels_for(tags, 0.5)
    assert labels["day"].sum() >= 4 and labels["night-infrared"].sum() >= 4, [t["time_of_day"] for t in tags]
    assert not labels["day"][labels["night-infrared"]].any()


def test_steer_fits_saves_and_moves_samples(images, tmp_path):
    from trailcam_core.gan.config import GanSteerOptions
    from trailcam_core.gan.steer import fit_directions, load_directions

    result = train_gan(images, tmp_path / "run", GanTrainOptions(**TINY, steps=2))

    def by_glitch_score(tags, threshold):
        # the tagger's brightness split at its median: a two-step generator has no clean/glitch split yet
        s = np.array([t["brightness"] for t in tags])
        return {"glitch": s >= np.median(s)}

    steer = fit_directions(result.generator_path, GanSteerOptions(samples=80, batch_size=40, min_class=5,
                                                                  strip_seeds=[0, 1]),
                           out_dir=tmp_path / "steer", labeller=by_glitch_score)
    assert set(steer.directions) == {"glitch"} and 0.0 <= steer.directions["glitch"]["accuracy"] <= 1.0
    assert steer.path == result.generator_path.with_name("trailcam_gan.directions.json")
    assert Image.open(steer.strips["glitch"]).size[0] > 5 * 64           # five strengths in a row
    dirs = load_directions(result.generator_path)
    g = load_generator(result.generator_path)
    plain = np.asarray(generate(g, 0, 1)[0], dtype=float)
    moved = np.asarray(generate(g, 0, 1, directions=dirs, strengths={"glitch": 3.0})[0], dtype=float)
    assert np.abs(plain - moved).mean() > 0.5
    with pytest.raises(TrailcamError, match="no direction named 'day'"):
        generate(g, 0, 1, directions=dirs, strengths={"day": 1.0})
    tags = tag_pixels(Image.fromarray(plain.astype(np.uint8)))
    assert set(tags) == {"time_of_day", "artifact_score", "info_bar", "brightness", "colourfulness"}
