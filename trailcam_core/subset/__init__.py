"""Choosing and fetching images: filters, sequence policy and caps -> ``Subset`` (``select``); only
those images downloaded from LILA's buckets, resumably (``fetch``); per-label folders (``select``).

    sub = load_subset("caltech_images_20210113.json", options=SubsetOptions(locations=["38", "46"]))
"""
from .fetch import FetchOptions, LILA_AZURE, LILA_GCS, download, fetch_images, file_url, missing_files
from .select import SORT_MODES, Subset, SubsetOptions, make_subset, sort_images

__all__ = ["FetchOptions", "LILA_AZURE", "LILA_GCS", "download", "fetch_images", "file_url", "missing_files",
           "SORT_MODES", "Subset", "SubsetOptions", "make_subset", "sort_images"]
