"""Generate with SDXL and one or more LoRAs, each with a model strength and a CLIP strength.

``strength_model`` and ``strength_clip`` mean what they mean in ComfyUI's stock ``LoraLoader``:
the LoRA's weight delta (``up @ down * alpha / rank``) is added to the UNet scaled by
``strength_model`` and to both SDXL text encoders scaled by ``strength_clip``; 0 is off, 1 as
trained, negative values push the other way.  Strengths are set on the loaded adapters in place:
changing them never reloads the base model, and the loaded pipeline is cached between calls.

    gen = Generator()                       # holds the cached pipeline
    images = gen.generate("models/sdxl", [LoraSpec("flash.safetensors", 0.8, 1.0)],
                          GenerateOptions(prompt="trailcam photo, coyote, night flash"), out_dir="gens")
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from trailcam_core.base import Cancelled, COMPOSITE_KEY, ensure, option, Options, ProgressCallback, TrailcamError
from trailcam_core.base import atomic
from trailcam_core.models import load_sdxl, model_kind
from trailcam_core.mosaic import make_mosaic

SCHEDULERS = ("euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddim", "unipc")

# Base-model families by cross-attention width (what a LoRA's UNet keys reveal).
_FAMILY_BY_CONTEXT = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL"}


@dataclass
class GenerateOptions(Options):
    """Everything that, with the base model and the LoRAs, reproduces an image."""

    STAGE = "generate"

    prompt: str = option("trailcam photo, coyote, night flash",
                         "What to generate (the captions' words: infrared night, night flash, day, twilight)")
    negative_prompt: str = option("", "What to avoid")
    seed: int = option(0, "Seed of the first image; image i of a batch uses seed + i", min=0, max=2**32 - 1)
    steps: int = option(25, "Denoising steps", min=1, max=200)
    guidance: float = option(6.0, "Classifier-free guidance scale", min=0.0, max=30.0, step=0.5)
    width: int = option(0, "Image width in pixels (multiple of 8); 0: auto, the size the model was trained at "
                           "on a GPU, 512 on a CPU", min=0, max=2048, step=8)
    height: int = option(0, "Image height in pixels (multiple of 8); 0: auto, as width", min=0, max=2048, step=8)
    scheduler: str = option("euler", "Sampler", choices=SCHEDULERS)
    batch: int = option(1, "Images per call", min=1, max=16)


@dataclass
class LoraSpec:
    """One LoRA file and its two strengths (ComfyUI LoraLoader semantics)."""

    path: str
    strength_model: float = 1.0
    strength_clip: float = 1.0

    @property
    def name(self) -> str:
        return Path(self.path).name

    @classmethod
    def parse(cls, text: str) -> "LoraSpec":
        """``file.safetensors[:strength_model[:strength_clip]]`` (clip defaults to model strength)."""
        parts = text.rsplit(":", 2)
        nums: list[float] = []
        while len(parts) > 1:
            try:
                nums.insert(0, float(parts[-1]))
            except ValueError:
                break
            parts.pop()
        path = ":".join(parts)
        if not nums:
            return cls(path)
        return cls(path, nums[0], nums[1] if len(nums) > 1 else nums[0])


@dataclass
class GeneratedImage:
    image: Any                 # PIL.Image
    params: dict               # everything needed to reproduce it
    path: Optional[Path] = None


# ----------------------------------------------------------------------------------------------
# LoRA files: read, identify, check against the base model

def read_lora_keys(path: str | os.PathLike) -> tuple[dict[str, tuple], dict[str, str]]:
    """Return ({key: shape}, metadata) of a LoRA .safetensors file without loading its tensors."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise TrailcamError(f"LoRA file not found: {p}")
    try:
        with safe_open(str(p), framework="pt") as fh:
            shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
            meta = fh.metadata() or {}
    except Exception as exc:  # safetensors raises several types for a damaged header
        raise TrailcamError(f"{p} is not a readable .safetensors LoRA file: {exc}") from exc
    if not shapes:
        raise TrailcamError(f"{p} holds no tensors")
    return shapes, meta


def lora_family(shapes: dict[str, tuple]) -> tuple[str, str]:
    """Guess the base family a LoRA was trained for from its keys: (family, evidence)."""
    if any(k.startswith("lora_te_") for k in shapes):
        return "SD 1.x/2.x", "one text encoder ('lora_te_' keys) where SDXL has two ('lora_te1_', 'lora_te2_')"
    for k, shape in shapes.items():
        if re.search(r"attn2_to_k\.(lora_down|lora_A)\.weight$", k) and len(shape) == 2:
            width = shape[1]
            return _FAMILY_BY_CONTEXT.get(width, f"a model with {width}-wide cross-attention"), \
                f"cross-attention input width {width} ({k})"
    if any(k.startswith("lora_te1_") or k.startswith("lora_te2_") for k in shapes):
        return "SDXL", "two text encoders ('lora_te1_', 'lora_te2_')"
    return "unknown", "no recognisable key"


def check_lora_matches(path: str | os.PathLike, pipe) -> dict[str, str]:
    """Raise a clear TrailcamError when the LoRA at ``path`` was not made for this base model."""
    shapes, meta = read_lora_keys(path)
    name = Path(path).name
    if any(k.startswith("diffusion_model.") for k in shapes):
        raise TrailcamError(f"{name} uses ComfyUI trainer keys ('diffusion_model.*'); convert it to the kohya "
                            "layout (lora_unet_*) to load it here")
    family, evidence = lora_family(shapes)
    context = int(pipe.unet.config.cross_attention_dim)
    base_family = _FAMILY_BY_CONTEXT.get(context, "SDXL-shaped")
    if family == "SD 1.x/2.x":
        raise TrailcamError(f"{name} was made for {family} ({evidence}), but the base model is {base_family}")
    for k, shape in shapes.items():
        if re.search(r"attn2_to_k\.(lora_down|lora_A)\.weight$", k) and len(shape) == 2 and shape[1] != context:
            raise TrailcamError(f"{name} does not match the base model: {family} LoRA ({evidence}), "
                                f"but the base model's cross-attention is {context} wide ({base_family})")
    return meta


def _count_lora_pairs(shapes: dict[str, tuple]) -> int:
    return sum(1 for k in shapes if k.endswith((".lora_down.weight", ".lora_A.weight")))


def _adapter_name(path: Path) -> str:
    st = path.stat()
    digest = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:8]
    return re.sub(r"[^A-Za-z0-9_]", "_", path.stem)[:40] + "_" + digest


def _pipe_components(pipe):
    return [("unet", pipe.unet), ("text_encoder", pipe.text_encoder), ("text_encoder_2", pipe.text_encoder_2)]


def _injected_modules(pipe, adapter: str) -> int:
    n = 0
    for _, model in _pipe_components(pipe):
        for m in model.modules():
            lora_a = getattr(m, "lora_A", None)
            if lora_a is not None and adapter in lora_a:
                n += 1
    return n


# ----------------------------------------------------------------------------------------------
# The cached pipeline

def _make_scheduler(name: str, config):
    from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                           EulerDiscreteScheduler, UniPCMultistepScheduler)

    if name not in SCHEDULERS:
        raise TrailcamError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    table = {"euler": (EulerDiscreteScheduler, {}), "euler_a": (EulerAncestralDiscreteScheduler, {}),
             "dpmpp_2m": (DPMSolverMultistepScheduler, {"use_karras_sigmas": False}),
             "dpmpp_2m_karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
             "ddim": (DDIMScheduler, {}), "unipc": (UniPCMultistepScheduler, {})}
    cls, extra = table[name]
    return cls.from_config(config, **extra)


class Generator:
    """Holds one loaded SDXL pipeline and the LoRA adapters loaded into it.

    The pipeline is loaded on first use and kept; asking for another base model replaces it.
    LoRA files are loaded once each (keyed by path, size and mtime) and their strengths are then
    only re-weighted.  Thread-safe: one generation at a time.
    """

    def __init__(self, device: Optional[str] = None, dtype: Optional[str] = None):
        self.device = device
        self.dtype = dtype
        self.pipe = None
        self.base_key: Optional[tuple] = None
        self.base_loads = 0                     # how many times a base model was loaded (tests, UI)
        self._adapters: dict[str, str] = {}     # adapter name -> file path
        self.size_note = ""                     # the last run's automatic size, in words
        self._lock = threading.RLock()

    # -- loading ------------------------------------------------------------------------------
    def _resolve_device(self):
        import torch

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.dtype:
            dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[self.dtype]
        else:
            dtype = torch.float16 if device.startswith("cuda") else torch.float32
        return device, dtype

    def load_base(self, base: str | os.PathLike):
        """Return the cached pipeline for ``base``, loading it only when the base model changed."""
        p = Path(base)
        model_kind(p)  # clear error for a missing or wrong path before anything heavy
        marker = p / "model_index.json" if p.is_dir() else p
        key = (str(p.resolve()), marker.stat().st_mtime_ns)
        with self._lock:
            if self.pipe is None or self.base_key != key:
                device, dtype = self._resolve_device()
                self.pipe = None
                self._adapters.clear()
                self.pipe = load_sdxl(p, dtype=dtype, device=device)
                self.pipe.set_progress_bar_config(disable=True)
                self.base_key = key
                self.base_loads += 1
            return self.pipe

    def _ensure_adapter(self, spec: LoraSpec) -> str:
        path = Path(spec.path)
        if not path.is_file():
            raise TrailcamError(f"LoRA file not found: {path}")
        name = _adapter_name(path)
        if name in self._adapters:
            return name
        shapes, _ = read_lora_keys(path)
        check_lora_matches(path, self.pipe)
        from transformers.utils import logging as hf_logging

        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()   # transformers prints a "load report" for every adapter
        try:
            self.pipe.load_lora_weights(str(path), adapter_name=name)
        except (ValueError, RuntimeError, KeyError, IndexError) as exc:
            family, evidence = lora_family(shapes)
            raise TrailcamError(f"{path.name} does not fit the base model (LoRA looks like {family}: {evidence}): "
                                f"{exc}") from exc
        finally:
            hf_logging.set_verbosity(level)
        expected, placed = _count_lora_pairs(shapes), _injected_modules(self.pipe, name)
        if placed < expected:
            self.pipe.delete_adapters([name])
            raise TrailcamError(f"{path.name}: only {placed} of its {expected} LoRA modules match this base model; "
                                "it was made for another architecture")
        self._adapters[name] = str(path)
        return name

    def apply_loras(self, loras: Sequence[LoraSpec]) -> None:
        """Make exactly ``loras`` active with their strengths (in place; no reload)."""
        with self._lock:
            if self.pipe is None:
                raise TrailcamError("no base model loaded")
            if not loras:
                if self._adapters:
                    self.pipe.disable_lora()
                return
            names = [self._ensure_adapter(s) for s in loras]
            if len(set(names)) != len(names):
                raise TrailcamError("the same LoRA file is listed twice; give it one pair of strengths")
            self.pipe.enable_lora()
            weights = [{"unet": float(s.strength_model), "text_encoder": float(s.strength_clip),
                        "text_encoder_2": float(s.strength_clip)} for s in loras]
            self.pipe.set_adapters(names, adapter_weights=weights)

    # -- generating ---------------------------------------------------------------------------
    def generate(self, base: str | os.PathLike, loras: Sequence[LoraSpec], options: GenerateOptions,
                 out_dir: Optional[str | os.PathLike] = None, progress: Optional[ProgressCallback] = None,
                 output_type: str = "pil") -> list[GeneratedImage]:
        """Generate ``options.batch`` images; write PNGs with their parameters when ``out_dir`` is given."""
        import torch

        _validate(options)
        report = ensure(progress)
        with self._lock:
            pipe = self.load_base(base)
            self.apply_loras(loras)
            options, why = resolve_size(options, pipe)
            self.size_note = why          # why this size, when it was chosen automatically (faces show it)
            pipe.scheduler = _make_scheduler(options.scheduler, pipe.scheduler.config)
            gens = [torch.Generator(device="cpu").manual_seed(options.seed + i) for i in range(options.batch)]
            total = options.steps
            last = [0, f"{options.width}x{options.height}" + (f" ({why})" if why else "")]
            report(0, total, last[1])

            def on_step(_pipe, step, _t, kwargs):
                last[:] = [step + 1, f"step {step + 1}/{total}"]
                report(step + 1, total, last[1])
                return kwargs

            checked = [0.0]

            def check(*_):               # between UNet and VAE blocks: Stop acts within a block, not a step
                now = time.monotonic()
                if now - checked[0] >= 0.2:        # a few checks a second are enough; keeps reports cheap
                    checked[0] = now
                    report(last[0], total, last[1])

            try:
                with stop_points(pipe, check):
                    out = pipe(prompt=options.prompt, negative_prompt=options.negative_prompt or None,
                               num_inference_steps=options.steps, guidance_scale=options.guidance,
                               width=options.width, height=options.height, num_images_per_prompt=options.batch,
                               generator=gens, output_type=output_type, callback_on_step_end=on_step)
            except Cancelled:
                raise
            except (RuntimeError, ValueError) as exc:
                raise TrailcamError(f"generation failed: {exc}") from exc
        results = []
        for i, img in enumerate(out.images):
            params = generation_params(base, loras, options, seed=options.seed + i)
            item = GeneratedImage(img, params)
            if out_dir is not None and output_type == "pil":
                item.path = save_png(img, params, Path(out_dir))
            results.append(item)
        return results

    def encode_prompt(self, base: str | os.PathLike, loras: Sequence[LoraSpec], prompt: str):
        """The prompt embeddings the UNet sees (for checking what CLIP strength does)."""
        with self._lock:
            pipe = self.load_base(base)
            self.apply_loras(loras)
            import torch

            with torch.no_grad():
                embeds, _, pooled, _ = pipe.encode_prompt(prompt, device=pipe.unet.device,
                                                          do_classifier_free_guidance=False)
            return embeds, pooled


_DEFAULT = Generator()


def default_generator() -> Generator:
    """The process-wide generator the faces share (one cached pipeline per process)."""
    return _DEFAULT


CPU_SIZE = 512


def trained_size(pipe) -> int:
    """The side the base model was trained at (SDXL base: 1024), from its UNet configuration."""
    sample = int(getattr(pipe.unet.config, "sample_size", 128) or 128)
    return sample * int(getattr(pipe, "vae_scale_factor", 8) or 8)


def auto_size(pipe, device: str) -> tuple[int, str]:
    """(side, why) for options left at 0: the trained size on a GPU; on a CPU at most 512, because
    SDXL at 1024 px takes minutes per denoising step there."""
    trained = trained_size(pipe)
    if str(device).startswith("cpu") and trained > CPU_SIZE:
        return CPU_SIZE, (f"auto: {CPU_SIZE} px on a CPU, where {trained} px (what the model was trained at) takes "
                          f"minutes per step; set width and height to {trained} for full quality")
    return trained, f"auto: {trained} px, what the model was trained at"


def resolve_size(options: GenerateOptions, pipe) -> tuple[GenerateOptions, str]:
    """``options`` with width/height 0 replaced by :func:`auto_size`, and the reason ('' if none)."""
    if options.width and options.height:
        return options, ""
    side, why = auto_size(pipe, str(pipe.unet.device))
    w = options.width or (side if not options.height else options.height)
    h = options.height or (side if not options.width else options.width)
    return GenerateOptions(**{**asdict(options), "width": w, "height": h}), why


@contextlib.contextmanager
def stop_points(pipe, check):
    """Call ``check()`` before every UNet and VAE-decoder block, resnet and transformer block while
    the body runs, so a progress callback that raises Cancelled stops a step within seconds, not
    at its end (one SDXL step at 1024 px on a CPU takes minutes; one resnet takes seconds)."""
    blocks = [*pipe.unet.down_blocks, pipe.unet.mid_block, *pipe.unet.up_blocks]
    decoder = getattr(getattr(pipe, "vae", None), "decoder", None)
    if decoder is not None:
        blocks += [getattr(decoder, "mid_block", None), *getattr(decoder, "up_blocks", [])]
    fine = ("ResnetBlock2D", "BasicTransformerBlock")
    for model in (pipe.unet, decoder):
        if model is not None:
            blocks += [m for m in model.modules() if type(m).__name__ in fine]
    handles = [b.register_forward_pre_hook(lambda *_: check()) for b in blocks if b is not None]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _validate(options: GenerateOptions) -> None:
    for side in (options.width, options.height):
        if side and side < 64:
            raise TrailcamError(f"width and height must be at least 64 (or 0 for auto), got {side}")
    if options.width % 8 or options.height % 8:
        raise TrailcamError(f"width and height must be multiples of 8 (got {options.width}x{options.height})")
    if options.steps < 1 or options.batch < 1:
        raise TrailcamError("steps and batch must be at least 1")
    if options.scheduler not in SCHEDULERS:
        raise TrailcamError(f"unknown scheduler {options.scheduler!r}; choose one of {', '.join(SCHEDULERS)}")


# ----------------------------------------------------------------------------------------------
# Parameters in PNG metadata

def generation_params(base, loras: Sequence[LoraSpec], options: GenerateOptions, seed: int) -> dict:
    params = asdict(options)
    params.update(seed=seed, batch=1, base_model=Path(base).name,
                  loras=[{"name": s.name, "strength_model": s.strength_model, "strength_clip": s.strength_clip}
                         for s in loras])
    return params


def _a1111_text(params: dict) -> str:
    # The "parameters" text chunk that A1111/Forge/Civitai users read.
    lora_tags = "".join(f" <lora:{Path(l['name']).stem}:{l['strength_model']}>" for l in params["loras"])
    fields = [f"Steps: {params['steps']}", f"Sampler: {params['scheduler']}", f"CFG scale: {params['guidance']}",
              f"Seed: {params['seed']}", f"Size: {params['width']}x{params['height']}",
              f"Model: {params['base_model']}"]
    fields += [f"Lora {l['name']}: model {l['strength_model']}, clip {l['strength_clip']}" for l in params["loras"]]
    neg = f"\nNegative prompt: {params['negative_prompt']}" if params["negative_prompt"] else ""
    return f"{params['prompt']}{lora_tags}{neg}\n" + ", ".join(fields)


def save_png(img, params: dict, out_dir: Path, stem: Optional[str] = None) -> Path:
    """Write ``img`` as PNG carrying ``params`` (JSON under "trailcam", text under "parameters")."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("trailcam", json.dumps(params, ensure_ascii=False))
    if "prompt" in params and "loras" in params:
        info.add_text("parameters", _a1111_text(params))
    if stem is None:
        digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
        stem = f"gen_{params.get('seed', 0):010d}_{digest}"
    dest = Path(out_dir) / f"{stem}.png"
    with atomic.atomic_path(dest) as tmp:
        img.save(tmp, format="PNG", pnginfo=info)
    return dest


def read_params(png: str | os.PathLike) -> dict:
    """The generation parameters stored in a PNG this module wrote."""
    from PIL import Image

    with Image.open(png) as im:
        text = im.text.get("trailcam") if hasattr(im, "text") else None
    if not text:
        raise TrailcamError(f"{png} carries no trailcam generation parameters")
    return json.loads(text)


# ----------------------------------------------------------------------------------------------
# Strength grid: the seed's exploration in one picture

def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def compose_grid(cells: dict[tuple[int, int], Any], row_labels: Sequence[str], col_labels: Sequence[str],
                 title: str = "", row_title: str = "", col_title: str = ""):
    """Lay out images ``cells[(row, col)]`` with labels on the left and top; return a PIL image."""
    from PIL import Image, ImageDraw

    first = next(iter(cells.values()))
    w, h = first.size
    fs = max(12, min(w, h) // 12)
    font = _font(fs)
    pad = fs // 2
    left = int(fs * 5.5)
    top = fs * 2 + pad * 2 + (fs + pad if title else 0)
    grid = Image.new("RGB", (left + len(col_labels) * (w + pad), top + len(row_labels) * (h + pad)), "white")
    draw = ImageDraw.Draw(grid)
    y0 = pad
    if title:
        draw.text((pad, y0), title, fill="black", font=font)
        y0 += fs + pad
    if col_title:
        draw.text((left, y0), col_title, fill="black", font=font)
    for c, label in enumerate(col_labels):
        draw.text((left + c * (w + pad) + pad, top - fs - pad), label, fill="black", font=font)
    for r, label in enumerate(row_labels):
        y = top + r * (h + pad)
        draw.text((pad, y + h // 2 - fs), label, fill="black", font=font)
        if r == 0 and row_title:
            draw.text((pad, y + h // 2), row_title, fill="gray", font=_font(max(10, fs * 2 // 3)))
        for c in range(len(col_labels)):
            img = cells.get((r, c))
            if img is not None:
                grid.paste(img.convert("RGB"), (left + c * (w + pad), y))
    return grid


def strength_grid(base: str | os.PathLike, lora: str | os.PathLike, options: GenerateOptions,
                  model_strengths: Sequence[float] = (0.0, 0.5, 1.0), clip_strengths: Sequence[float] = (0.0, 0.5, 1.0),
                  out_path: Optional[str | os.PathLike] = None, other_loras: Sequence[LoraSpec] = (),
                  generator: Optional[Generator] = None, progress: Optional[ProgressCallback] = None):
    """A labelled image: rows = model strength, columns = CLIP strength, same prompt and seed.

    Returns the PIL grid; writes it (with its parameters) to ``out_path`` when given.
    """
    if not model_strengths or not clip_strengths:
        raise TrailcamError("give at least one model strength and one CLIP strength")
    gen = generator or default_generator()
    report = ensure(progress)
    single = GenerateOptions(**{**asdict(options), "batch": 1})
    cells, total, done = {}, len(model_strengths) * len(clip_strengths), 0
    for r, sm in enumerate(model_strengths):
        for c, sc in enumerate(clip_strengths):
            specs = [LoraSpec(str(lora), sm, sc), *other_loras]
            cell = f"model {sm:g}, clip {sc:g}"
            # the cell's own reports reach the caller, so a Stop acts inside a cell too
            img = gen.generate(base, specs, single, progress=lambda d, t, m="", p=None, cell=cell:
                               report(done, total, f"{cell}: {m}"))[0].image
            cells[(r, c)] = img
            done += 1
            report(done, total, f"model {sm:g}, clip {sc:g}", img)
    grid = compose_grid(cells, [f"model {s:g}" for s in model_strengths], [f"clip {s:g}" for s in clip_strengths],
                        title=f"{Path(lora).name}  |  seed {options.seed}  |  {options.prompt[:60]}")
    if out_path is not None:
        first = next(iter(cells.values()))
        single = GenerateOptions(**{**asdict(single), "width": first.width, "height": first.height})  # auto resolved
        params = generation_params(base, [LoraSpec(str(lora)), *other_loras], single, options.seed)
        params.update(model_strengths=list(model_strengths), clip_strengths=list(clip_strengths))
        params[COMPOSITE_KEY] = "strength-grid"       # collections (mosaic, embed) leave it out
        out = Path(out_path)
        save_png(grid, params, out.parent, stem=out.stem)
    return grid


def parse_strengths(text: str) -> list[float]:
    """"0,0.5,1" or "0:1:5" (start:stop:count) -> list of floats."""
    text = text.strip()
    try:
        if ":" in text:
            a, b, n = text.split(":")
            n = int(n)
            if n < 1:
                raise ValueError
            return [round(float(a) + (float(b) - float(a)) * i / max(1, n - 1), 4) for i in range(n)]
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise TrailcamError(f"cannot read strengths {text!r}: use '0,0.5,1' or 'start:stop:count'") from exc


def mosaic_of_generations(folder: str | os.PathLike, out_dir: str | os.PathLike, options=None, embed_options=None,
                          progress: Optional[ProgressCallback] = None):
    """Lay out a folder of generated PNGs as a similarity mosaic, exactly as any other collection.

    The seed made a t-SNE mosaic of its generations; this is the same mosaic core
    (``trailcam_core.mosaic.make_mosaic``) pointed at the generations folder.
    """

    if not Path(folder).is_dir():
        raise TrailcamError(f"generations folder not found: {folder}")
    return make_mosaic(folder, out_dir, options, embed_options=embed_options, progress=progress)
