"""A GAN trained only on the user's trail-camera images (no pre-trained weights anywhere).

    from trailcam_core.gan import GanTrainOptions, train_gan, load_generator, generate
    result = train_gan("Favorites/", "runs/gan", GanTrainOptions(size=256, steps=20000))
    G = load_generator(result.generator_path)
    images = generate(G, seed=0, count=16, truncation=0.8, directions=load_directions(result.generator_path),
                      strengths={"glitch": 2.0})

Modules: ``config`` (GanConfig and the options of each action), ``model`` (FastGAN-style G and D),
``augment`` (DiffAugment), ``data`` (image folders), ``train`` (the loop), ``checkpoint``
(resume), ``export`` (the generator file), ``sample`` (images, grids, videos), ``steer`` (tag
directions), ``metrics`` and ``evaluate`` (KID/FID/PRDC, memorisation, the report), ``publish``
(train-or-reuse for the node and the app), ``pictures``.  The networks (``model``) and
DiffAugment import torch at once, so they are imported from their modules, not from here: the
CLI starts without torch.
"""
from .config import (AUGMENTS, SIZES, GanConfig, GanEvalOptions, GanInterpolateOptions, GanSampleOptions,
                     GanSteerOptions, GanTrainOptions, check_size)
from .data import MIN_IMAGES, TrainingImages, load_images
from .evaluate import EvalReport, evaluate_generator
from .export import load_generator, read_generator_metadata, save_generator
from .metrics import ClipFeatures, InceptionFeatures, PyramidFeatures, fid, kid, make_extractor, memorisation, prdc_scores
from .publish import GanTrainOutcome, train_or_reuse
from .sample import (generate, interpolation_video, latents, read_parameters, sample_to_folder, steer,
                     write_video)
from .steer import (TAG_DIRECTIONS, SteerResult, directions_path, fit_direction, fit_directions, load_directions,
                    parse_strengths, tag_pixels)
from .train import GanTrainer, GanTrainResult, NonFiniteLoss, train_gan
from .pictures import curve

__all__ = ["curve", "AUGMENTS", "SIZES", "GanConfig", "GanEvalOptions", "GanInterpolateOptions", "GanSampleOptions",
           "GanSteerOptions", "GanTrainOptions", "check_size", "MIN_IMAGES", "TrainingImages", "load_images",
           "EvalReport", "evaluate_generator", "load_generator", "read_generator_metadata", "save_generator",
           "ClipFeatures", "InceptionFeatures", "PyramidFeatures", "fid", "kid", "make_extractor", "memorisation",
           "prdc_scores", "GanTrainOutcome", "train_or_reuse",
           "generate", "interpolation_video", "latents", "read_parameters", "sample_to_folder", "steer",
           "write_video", "TAG_DIRECTIONS", "SteerResult", "directions_path", "fit_direction", "fit_directions",
           "load_directions", "parse_strengths", "tag_pixels", "GanTrainer", "GanTrainResult", "NonFiniteLoss", "train_gan"]
