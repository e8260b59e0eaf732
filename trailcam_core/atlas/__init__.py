"""Atlases: a whole collection in one deep-zoom mosaic, real photos and generations side by side.

    from trailcam_core.atlas import AtlasOptions, AtlasSource, build_atlas, add_to_atlas, atlas_report
    build_atlas([AtlasSource("photos/"), AtlasSource("gen/", "lora")], "atlas/")   # atlas/index.html
    add_to_atlas("atlas/", [AtlasSource("gen2/", "lora", name="lora-v2")])        # placed, not re-laid
    atlas_report("atlas/")["text"]                                              # likely copies per source

See docs/atlas.md. Modules: ``layout`` (whole-collection sorting, placing new items), ``pyramid``
(tiles drawn band by band from thumbnails), ``viewer`` (the page and its chunked data), ``nearest``
(exact k-nearest real photos, copy statistics), ``embedding`` (sharded, resumable), ``build``.
"""
from .sources import KINDS, AtlasSource, parse_source, source_records
from .build import Atlas, AtlasOptions, add_to_atlas, atlas_report, build_atlas, open_atlas, validate
from .embedding import distributed_rank, embed_shard
from .layout import atlas_layout, pca_blockwise, place_new
from .nearest import copy_report, knn, real_nn_distances
from .pyramid import highlight_picture, level_sizes, render_pyramid
from .embedding import shard_device
from .view import atlas_item_at, atlas_view, layer_picture

__all__ = ["atlas_item_at", "atlas_view", "layer_picture", "shard_device", "KINDS", "Atlas", "AtlasOptions", "AtlasSource", "add_to_atlas", "atlas_report", "build_atlas",
           "open_atlas", "parse_source", "source_records", "validate", "distributed_rank", "embed_shard",
           "atlas_layout", "pca_blockwise", "place_new", "copy_report", "knn", "real_nn_distances",
           "highlight_picture", "level_sizes", "render_pyramid"]
