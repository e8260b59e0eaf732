"""Detector results: MegaDetector / AddaxAI / SpeciesNet files read (``read``, ``megadetector``,
``formats``, ``flatten``), the ``Detections`` table (``model``), joined to a dataset as its labels
(``join``), compared with its CCT labels (``compare``), sorted into folders (``sort``) and
exported (``export``).

    det = read_detections("image_recognition_file.json")
    ds = apply_detections("photos/", det)
"""
from .compare import Comparison, DEFAULT_THRESHOLDS, compare, detection_chart_table, precision_recall, precision_recall_plot, write_comparison, write_detection_charts
from .export import export_detections, write_megadetector
from .join import apply_detections, join
from .model import DetectionOptions
from .read import read_detections
from .sort import SortOptions, sort_detections

__all__ = ["Comparison", "DEFAULT_THRESHOLDS", "compare", "detection_chart_table", "precision_recall",
           "precision_recall_plot", "write_comparison", "write_detection_charts", "export_detections", "write_megadetector",
           "apply_detections", "join", "DetectionOptions", "read_detections", "SortOptions",
           "sort_detections"]
