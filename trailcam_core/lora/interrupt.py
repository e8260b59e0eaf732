"""Cancel checks inside one long forward pass (a VAE encode at 1024 px takes minutes on a CPU).

:func:`checks_between_blocks` calls ``check()`` before every ResNet and attention block of a
model, so a progress callback that raises ``Cancelled`` (ComfyUI's Interrupt, the app's Stop)
stops the job within one block instead of after the whole image.

Example::

    with checks_between_blocks(vae.encoder, lambda: progress(n, total, "caching latents")):
        latent = vae.encode(pixels)
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

__all__ = ["checks_between_blocks", "BLOCK_TYPES"]

#: block classes of diffusers' VAE and UNet that each take a noticeable share of a forward pass
BLOCK_TYPES = ("ResnetBlock2D", "Attention", "Transformer2DModel", "BasicTransformerBlock")


@contextlib.contextmanager
def checks_between_blocks(model, check: Callable[[], None], types: tuple[str, ...] = BLOCK_TYPES) -> Iterator[int]:
    """Within the block, ``check()`` runs before every block of ``model`` whose class is in ``types``
    (by name); yields the number of blocks watched.  The hooks are removed on exit."""
    handles = []
    try:
        for module in model.modules():
            if type(module).__name__ in types:
                handles.append(module.register_forward_pre_hook(lambda _m, _args: check()))
        yield len(handles)
    finally:
        for h in handles:
            h.remove()
