"""Embedding a whole collection: sharded across processes, resumable, on the GPU when there is one.

    embed_shard(records, EmbedOptions(), cache_dir, rank=0, world=1)   # one process: everything

Each process embeds every ``world``-th record starting at ``rank`` into the shared feature cache
(``embed.FeatureCache``: shard files with unique names, so processes never write the same file;
a shard is flushed every ``flush_every`` images, so a killed run keeps all but the last few hundred
vectors and the next run continues from there). ``trailcam atlas embed`` under
``accelerate launch --num_processes N`` reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` from the
environment and puts process i on ``cuda:<LOCAL_RANK>``; afterwards ``atlas build`` finds every vector
in the cache and computes nothing.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Optional, Sequence

from trailcam_core.embed import embed_images, Embeddings, EmbedOptions
from trailcam_core.base import ImageRecord, ProgressCallback, TrailcamError


def distributed_rank() -> tuple[int, int, int]:
    """(rank, world size, local rank) from the environment torchrun / accelerate launch set; (0, 1, 0) alone."""
    def read(name: str, default: int) -> int:
        try:
            return int(os.environ.get(name, default))
        except ValueError:
            raise TrailcamError(f"environment variable {name}={os.environ.get(name)!r} is not a number") from None

    return read("RANK", 0), read("WORLD_SIZE", 1), read("LOCAL_RANK", 0)


def shard_device(options: EmbedOptions, local_rank: int, world: int) -> EmbedOptions:
    """The options with this process's device: ``cuda:<local rank>`` when several GPUs share the work."""
    if options.device or world <= 1:
        return options
    try:
        import torch

        if torch.cuda.is_available():
            return dataclasses.replace(options, device=f"cuda:{local_rank % torch.cuda.device_count()}")
    except ImportError:
        pass
    return options


def embed_shard(records: Sequence[ImageRecord], options: EmbedOptions, cache_dir: str | os.PathLike,
                rank: int = 0, world: int = 1, progress: Optional[ProgressCallback] = None,
                flush_every: int = 512) -> Embeddings:
    """Embed this process's share (records ``rank::world``) into the cache at ``cache_dir``."""
    if world < 1 or not 0 <= rank < world:
        raise TrailcamError(f"shard {rank} of {world}: the rank must be 0..world-1")
    if not cache_dir:
        raise TrailcamError("sharded embedding needs a cache folder shared by all processes")
    part = list(records)[rank::world]
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    # no dedupe inside a shard: identical files in different shards are resolved when the atlas is built
    opts = dataclasses.replace(options, dedupe=False)
    return embed_images(part, opts, cache_dir=cache_dir, progress=progress, flush_every=flush_every)
