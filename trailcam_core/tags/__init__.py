"""Tags, captions and curation: what a tag is (``model``), camera-glitch artifact scores
(``artifacts``), automatic tags from labels and pixels (``auto``), zero-shot classification
(``classify``), captions for training (``captions``) and the curation state of a project:
favourites, rejects, hand tags, merged saves under a lock (``curation``).
"""
from .auto import TagOptions, collection_records, tag_collection, tag_records
from .captions import CaptionEntry, CaptionOptions, render_caption, write_captions
from .classify import ClassifyOptions, classify_to_cct
from .curation import ExportOptions, Project, caption_project, export_favorites, parse_tag_lines, tag_lines
from .model import tag_text
from .artifacts import artifact_score
from .auto import image_statistics, time_of_day
from .curation import STATE_NAME, state_folder
from .auto import sun_phase

__all__ = ["sun_phase", "STATE_NAME", "state_folder", "artifact_score", "image_statistics", "time_of_day", "TagOptions", "collection_records", "tag_collection", "tag_records", "CaptionEntry",
           "CaptionOptions", "render_caption", "write_captions", "ClassifyOptions", "classify_to_cct",
           "ExportOptions", "Project", "caption_project", "export_favorites", "parse_tag_lines", "tag_lines",
           "tag_text"]
