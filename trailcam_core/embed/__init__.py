"""Image features and similarity: open_clip or pixel features with an on-disk cache (``features``),
and "more like this" rankings (``similar``).
"""
from .features import EmbedOptions, Embeddings, Source, collect_records, embed_images
from .similar import more_like_this, project_embeddings
from .features import pyramid_features
from .features import feature_key

__all__ = ["feature_key", "pyramid_features", "EmbedOptions", "Embeddings", "Source", "collect_records", "embed_images", "more_like_this",
           "project_embeddings"]
