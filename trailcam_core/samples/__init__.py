"""Generated sample data: a synthetic trail-camera collection with its COCO Camera Traps JSON
(``synthetic``), detector result files made from it (``detections``), and the demo that runs the
main job on it (``demo``).
"""
from .demo import printable, run_demo
from .synthetic import ensure_sample

__all__ = ["printable", "run_demo", "ensure_sample"]
