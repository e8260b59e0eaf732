"""Choosing and fetching images: filters, sequence policy and caps -> ``Subset`` (``select``); only
those images downloaded from LILA's buckets, resumably (``fetch``); per-label folders (``select``); one call per user action of the data stage, detector labels
applied the same way by every face (``load``).

    sub = load_subset("caltech_images_20210113.json", SubsetOptions(locations=["38", "46"]))
"""
from .fetch import FetchOptions, LILA_AZURE, LILA_GCS, download, fetch_images, file_url, missing_files
from .load import import_detections, load_source, load_subset, require_source, write_table
from .select import MANIFEST_STEM, SORT_MODES, SUBSET_JSON, Subset, SubsetOptions, make_subset, sort_images

__all__ = ["FetchOptions", "LILA_AZURE", "LILA_GCS", "download", "fetch_images", "file_url", "missing_files",
           "import_detections", "load_source", "load_subset", "require_source", "write_table", "MANIFEST_STEM", "SORT_MODES", "SUBSET_JSON", "Subset", "SubsetOptions", "make_subset", "sort_images"]
