"""Detector results: MegaDetector / AddaxAI / SpeciesNet files read (``read``, ``megadetector``,
``formats``, ``flatten``), the ``Detections`` table (``model``), joined to a dataset as its labels
(``join``), compared with its CCT labels (``compare``), sorted into folders (``sort``) and
exported (``export``).

    det = read_detections("image_recognition_file.json")
    ds = apply_detections("photos/", det)
"""
from trailcam_core.detections.compare import Comparison, DEFAULT_THRESHOLDS, compare, detection_chart_table, precision_recall, precision_recall_plot, write_comparison, write_detection_charts
from trailcam_core.detections.export import export_detections, write_megadetector
from trailcam_core.detections.join import apply_detections, join
from trailcam_core.detections.model import DetectionOptions
from trailcam_core.detections.read import read_detections
from trailcam_core.detections.sort import SortOptions, sort_detections
from trailcam_core.detections.sniff import json_kind
from .labels import labels_with_sizes

__all__ = ["labels_with_sizes", "json_kind", "Comparison", "DEFAULT_THRESHOLDS", "compare", "detection_chart_table", "precision_recall",
           "precision_recall_plot", "write_comparison", "write_detection_charts", "export_detections", "write_megadetector",
           "apply_detections", "join", "DetectionOptions", "read_detections", "SortOptions",
           "sort_detections"]
