"""Load an open_clip model once and use it for image embeddings and zero-shot text matching.

The loading code is the real one users run (``open_clip.create_model_and_transforms``):

    clip = load_clip("ViT-B-32", "laion2b_s34b_b79k")          # a tag open_clip knows (downloads once)
    clip = load_clip("hf-hub:imageomics/bioclip")               # a model on the Hugging Face hub
    clip = load_clip("ViT-B-32", "/models/my_finetune.pt")     # a local checkpoint file
    clip = load_clip("local-dir:/models/bioclip")               # a folder with open_clip_config.json
    clip = load_clip("trailcam-tiny", pretrained=None)          # tiny random weights: tests and demos

``load_clip`` returns a :class:`ClipModel` bundle, cached in-process per (model, pretrained, device):

    clip.model        the open_clip model (eval mode) with encode_image / encode_text
    clip.preprocess   PIL image -> tensor (C, H, W), the model's own eval transform
    clip.tokenizer    list[str] -> LongTensor (n, context_length)
    clip.name, clip.pretrained, clip.embed_dim, clip.image_size, clip.device
    clip.key          a stable string naming the weights (used by the embedding cache)

Zero-shot classification (issue 4's ``classify.py``) needs only two calls::

    img = clip.encode_images([pil_a, pil_b])            # (2, D) float32, L2-normalised
    txt = clip.encode_texts(["a photo of a coyote", "a photo of a bobcat"])   # (2, D)
    probs = clip.zero_shot(img, txt)                    # softmax over prompts, (2, 2)

Models built without pretrained weights (``pretrained=None``) are initialised from a fixed seed,
so the same random model comes out in every process and cached embeddings stay valid.
``trailcam-tiny`` is a 64-pixel ViT (2 layers, width 64) with a 2-layer text tower and the real
CLIP BPE tokenizer that open_clip ships; it loads in well under a second with no download.
"""
from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from trailcam_core.base import TrailcamError

TINY_MODEL = "trailcam-tiny"
DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
RANDOM_INIT_SEED = 0

_CONFIG_DIR = Path(__file__).with_name("configs")
_registered = False
_cache: dict[tuple, "ClipModel"] = {}
_lock = threading.Lock()


def register_configs() -> None:
    """Register trailcam's own model configs (``trailcam-tiny``) with open_clip (idempotent)."""
    global _registered
    if _registered:
        return
    import open_clip

    if TINY_MODEL not in open_clip.list_models():
        open_clip.add_model_config(_CONFIG_DIR)
    _registered = True


def list_models() -> list[str]:
    """Every architecture name open_clip can build here (trailcam-tiny included)."""
    register_configs()
    import open_clip

    return list(open_clip.list_models())


@dataclass
class ClipModel:
    """An open_clip model with its eval preprocessing and tokenizer. See the module docstring."""

    model: Any
    preprocess: Callable
    tokenizer: Callable
    name: str
    pretrained: Optional[str]
    embed_dim: int
    image_size: int
    device: str
    key: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def encode_tensors(self, batch) -> np.ndarray:
        """Encode a preprocessed image batch (n, 3, H, W) -> (n, D) float32, L2-normalised."""
        import torch

        with self._lock, torch.inference_mode():
            feats = self.model.encode_image(batch.to(self.device))
            feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        return feats.cpu().numpy().astype(np.float32, copy=False)

    def encode_images(self, images: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """Encode PIL images (any size or mode) -> (n, D) float32, L2-normalised."""
        import torch

        out = [np.zeros((0, self.embed_dim), np.float32)]
        for start in range(0, len(images), batch_size):
            chunk = [self.preprocess(im.convert("RGB")) for im in images[start:start + batch_size]]
            out.append(self.encode_tensors(torch.stack(chunk)))
        return np.concatenate(out)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Encode prompts -> (n, D) float32, L2-normalised."""
        import torch

        if isinstance(texts, str):
            texts = [texts]
        tokens = self.tokenizer(list(texts))
        with self._lock, torch.inference_mode():
            feats = self.model.encode_text(tokens.to(self.device))
            feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        return feats.cpu().numpy().astype(np.float32, copy=False)

    def zero_shot(self, image_features: np.ndarray, text_features: np.ndarray) -> np.ndarray:
        """Softmax probabilities (n_images, n_prompts) using the model's learned logit scale."""
        scale = 100.0
        ls = getattr(self.model, "logit_scale", None)
        if ls is not None:
            scale = float(np.exp(float(ls.detach().cpu())))
        logits = scale * image_features @ text_features.T
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def weights_key(model_name: str, pretrained: Optional[str]) -> str:
    """A stable name for the weights: a local file adds its size and mtime, random init its seed."""
    if model_name.startswith("hf-hub:"):
        return f"{model_name}|hub"          # weights come with the hub repo
    if model_name.startswith("local-dir:"):
        return f"{model_name}|dir"          # load_clip adds a stamp of the folder's files
    if not pretrained:
        return f"{model_name}|random-seed{RANDOM_INIT_SEED}"
    if os.path.isfile(pretrained):
        st = os.stat(pretrained)
        return f"{model_name}|file:{os.path.realpath(pretrained)}|{st.st_size}|{int(st.st_mtime)}"
    return f"{model_name}|{pretrained}"


def _default_device(device: Optional[str]) -> str:
    if device:
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_clip(model_name: str = DEFAULT_MODEL, pretrained: Optional[str] = DEFAULT_PRETRAINED,
              device: Optional[str] = None, cache: bool = True) -> ClipModel:
    """Build an open_clip model, its eval transform and tokenizer; cached in-process.

    ``model_name`` is an open_clip architecture (``ViT-B-32``), ``hf-hub:org/repo`` or
    ``local-dir:/path``; ``pretrained`` is a tag (``laion2b_s34b_b79k``), a checkpoint file, or
    None/"" for random weights (seeded, so reproducible). Example:
    ``load_clip("trailcam-tiny", pretrained=None).encode_texts(["a coyote"])``.
    """
    register_configs()
    import open_clip
    import torch

    if not model_name:
        raise TrailcamError("no CLIP model name given")
    pretrained = pretrained or None
    if model_name.startswith(("hf-hub:", "local-dir:")):
        pretrained = None  # open_clip takes weights from the hub repo / folder itself
    device = _default_device(device)
    cache_key = (model_name, pretrained, device)
    with _lock:
        if cache and cache_key in _cache:
            return _cache[cache_key]
        if pretrained and not os.path.isfile(pretrained) and not open_clip.get_pretrained_cfg(model_name, pretrained):
            known = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
            if model_name not in open_clip.list_models():
                raise TrailcamError(f"unknown CLIP model {model_name!r}; see `open_clip.list_models()`")
            raise TrailcamError(f"pretrained {pretrained!r} is neither a file nor a tag open_clip knows for "
                                f"{model_name} (known tags: {known})")
        if (not model_name.startswith(("hf-hub:", "local-dir:"))
                and model_name not in open_clip.list_models()):
            raise TrailcamError(f"unknown CLIP model {model_name!r}; see `open_clip.list_models()`")
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_INIT_SEED)
                model, _, preprocess = open_clip.create_model_and_transforms(
                    model_name, pretrained=pretrained, device=device)
            tokenizer = open_clip.get_tokenizer(model_name)
        except TrailcamError:
            raise
        except Exception as exc:  # download failures, bad checkpoints: say which model
            raise TrailcamError(f"could not load CLIP model {model_name!r} (pretrained={pretrained!r}): {exc}") from exc
        model.eval()
        embed_dim = _embed_dim(model, model_name)
        image_size = _image_size(model)
        key = weights_key(model_name, pretrained)
        if model_name.startswith("local-dir:"):
            key += "|" + _dir_stamp(model_name[len("local-dir:"):])
        bundle = ClipModel(model, preprocess, tokenizer, model_name, pretrained, embed_dim, image_size, device, key)
        if cache:
            _cache[cache_key] = bundle
        return bundle


def _embed_dim(model: Any, model_name: str) -> int:
    import open_clip

    cfg = open_clip.get_model_config(model_name) if not model_name.startswith(("hf-hub:", "local-dir:")) else None
    if cfg and "embed_dim" in cfg:
        return int(cfg["embed_dim"])
    import torch

    size = _image_size(model)
    with torch.inference_mode():
        return int(model.encode_image(torch.zeros(1, 3, size, size, device=next(model.parameters()).device)).shape[-1])


def _image_size(model: Any) -> int:
    size = getattr(getattr(model, "visual", None), "image_size", 224)
    if isinstance(size, (tuple, list)):
        size = size[0]
    return int(size)


def _dir_stamp(folder: str) -> str:
    h = hashlib.sha1()
    for p in sorted(Path(folder).glob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.name}|{st.st_size}|{int(st.st_mtime)}".encode())
    return h.hexdigest()[:12]


def clear_cache() -> None:
    """Forget every loaded model (frees memory)."""
    with _lock:
        _cache.clear()
