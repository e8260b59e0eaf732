"""More like this: rank a collection's images by similarity to a selection, from their embeddings.

    ids, vectors = project_embeddings(project)            # saved .npz, or computed with the cache
    more_like_this(["a1", "b2"], ids, vectors, top=50)    # -> [(image_id, cosine), ...] best first
"""
from __future__ import annotations

import os
from typing import Iterable, Optional, Sequence

import numpy as np

from trailcam_core.base import ensure, ImageRecord, ProgressCallback, TrailcamError
from trailcam_core.embed.features import EmbedOptions, Embeddings, embed_images
from trailcam_core.tags import Project


def more_like_this(selected: Sequence[str], ids: Sequence[str], vectors: np.ndarray,
                   exclude: Iterable[str] = (), top: Optional[int] = None) -> list[tuple[str, float]]:
    """Rank ``ids`` by cosine similarity to the mean of the selected images' embeddings.

    The selected images themselves and ``exclude`` (e.g. rejects) are left out of the ranking.
    Returns ``[(image_id, similarity), ...]`` best first. Example:
    ``more_like_this(["a1", "b2"], emb.ids, emb.vectors, top=50)``.
    """
    ids = list(ids)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(ids) != vectors.shape[0]:
        raise TrailcamError(f"embeddings: {len(ids)} ids but vectors of shape {vectors.shape}")
    index = {i: n for n, i in enumerate(ids)}
    missing = [s for s in selected if s not in index]
    if missing:
        raise TrailcamError(f"no embedding for selected image(s): {', '.join(map(str, missing[:5]))}")
    if not selected:
        raise TrailcamError("select at least one image to find more like it")
    norm = vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12)
    query = norm[[index[s] for s in selected]].mean(axis=0)
    query /= np.linalg.norm(query) + 1e-12
    sims = norm @ query
    skip = set(selected) | set(exclude)
    order = np.argsort(-sims, kind="stable")
    ranked = [(ids[n], float(sims[n])) for n in order if ids[n] not in skip]
    return ranked[:top] if top else ranked


def project_embeddings(project: Project, embeddings: Optional[str | os.PathLike] = None, embed_options=None,
                       cache_dir: Optional[str | os.PathLike] = None,
                       progress: Optional[ProgressCallback] = None) -> tuple[list[str], np.ndarray]:
    """Embeddings of the project's images: from a saved ``.npz`` (``trailcam embed``) or computed now.

    Saved embeddings are matched by image id, then by file path. Computing goes through
    ``embed.embed_images`` with its on-disk cache (default ``<project>/.trailcam-embed-cache``).
    """
    if embeddings is not None:
        emb = Embeddings.load(embeddings)
        by_file = {os.path.realpath(f): n for n, f in enumerate(emb.files)}
        by_id = {i: n for n, i in enumerate(emb.ids)}
        ids, rows = [], []
        for image_id in project.ids():
            n = by_id.get(image_id)
            if n is None:
                n = by_file.get(os.path.realpath(project.image_path(image_id)))
            if n is not None:
                ids.append(image_id)
                rows.append(n)
        if not ids:
            raise TrailcamError(f"{embeddings}: none of its images belong to the project {project.root}")
        return ids, emb.vectors[rows]
    records = [ImageRecord(image_id=i, path=project.image_path(i), file_name=project.entry(i)["file"])
               for i in project.ids() if "unreadable" not in project.entry(i).get("tags", {})]
    emb = embed_images(records, embed_options or EmbedOptions(),
                       cache_dir=cache_dir if cache_dir is not None else project.root / ".trailcam-embed-cache",
                       progress=ensure(progress))
    return list(emb.ids), emb.vectors
