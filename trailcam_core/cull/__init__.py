"""The culling view's core: the collection table, filters and counts, bursts, thumbnails, actions
with undo, "more like this" and the map.  It reads every earlier stage (tags and curation state,
embeddings, mosaic layout) and no stage imports it; the app's culling page is its face."""
from trailcam_core.cull.collection import FACETS, Collection, CullOptions, open_collection
from trailcam_core.cull.query import FLAGS, SORTS, Query, QueryResult, run_query
from trailcam_core.cull.select import KEEPS, CurationFilter, curated_indices
from trailcam_core.cull.session import ACTIONS, CullSession, ThumbJob
from trailcam_core.cull.thumbs import ThumbnailCache, ThumbnailError, make_thumbnail, sharpness

__all__ = ["ACTIONS", "FACETS", "FLAGS", "KEEPS", "SORTS", "Collection", "CurationFilter", "CullOptions", "CullSession", "Query",
           "QueryResult", "ThumbJob", "ThumbnailCache", "ThumbnailError", "curated_indices", "make_thumbnail", "open_collection",
           "run_query", "sharpness"]
