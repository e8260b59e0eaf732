"""Similarity mosaics: features -> grid layout (``layout``, quality in ``dpq``) -> mosaic image, scatter
plot, tile pyramid (``render``) and viewer (``viewer``); ``make`` runs the whole job.

    report = make_mosaic("coyotes/", "out/coyote-mosaic", MosaicOptions(tile=96))
"""
from .make import GridLayout, MosaicOptions, compute_layout, dpq, embed_2d, grid_shape, item_at, make_mosaic, validate
from .layout import flas_available, las_sort, split_assign
from .render import TILE, load_thumbnail
from .viewer import image_href

__all__ = ["TILE", "load_thumbnail", "flas_available", "las_sort", "split_assign", "image_href", "GridLayout", "MosaicOptions", "compute_layout", "dpq", "embed_2d", "grid_shape", "item_at",
           "make_mosaic", "validate"]
