"""Reading collections: COCO Camera Traps JSON (``cct``, parsed on every core by ``cct_parallel``,
capture times in ``cct_times``), plain folders of photos and videos (``folder``, ``video``), the
columnar ``Dataset`` with its content-keyed cache (``dataset``), and distribution charts (``charts``).

    ds = load_dataset("caltech_images_20210113.json", bboxes="caltech_bboxes_20200316.json")
"""
from .cct import EMPTY, isin, to_pandas
from .charts import ChartOptions, category_bar_chart, location_heatmap, loss_curve, write_charts
from .dataset import Dataset, build_records, load_dataset, sort_locations
from .folder import exif_datetime, list_media
from .video import iter_frames

__all__ = ["isin", "to_pandas", "ChartOptions", "category_bar_chart", "location_heatmap", "loss_curve",
           "write_charts", "Dataset", "EMPTY", "build_records", "load_dataset", "sort_locations",
           "exif_datetime", "list_media", "iter_frames"]
