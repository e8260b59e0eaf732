"""Similarity mosaics: features -> grid layout (``layout``, quality in ``dpq``) -> mosaic image, scatter
plot, tile pyramid (``render``) and viewer (``viewer``); ``make`` runs the whole job.

    report = make_mosaic("coyotes/", "out/coyote-mosaic", MosaicOptions(tile=96))
"""
from .make import GridLayout, MosaicOptions, compute_layout, dpq, embed_2d, grid_shape, item_at, make_mosaic, validate

__all__ = ["GridLayout", "MosaicOptions", "compute_layout", "dpq", "embed_2d", "grid_shape", "item_at",
           "make_mosaic", "validate"]
