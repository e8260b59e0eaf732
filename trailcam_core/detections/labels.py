"""The label table of a detections file (``labels.csv``), completed from the dataset it labels.

A MegaDetector file carries no image sizes, so :meth:`Detections.labels` leaves ``width`` and
``height`` empty.  Once the file has been joined to its dataset (:func:`apply_detections`), the
dataset knows them (from its CCT file, the results file or the image headers):
:func:`labels_with_sizes` copies them into the table.

Example::

    ds = apply_detections("photos/", det)
    table = labels_with_sizes(det.labels(), ds)      # width / height filled for matched images
"""
from __future__ import annotations

import pandas as pd

__all__ = ["labels_with_sizes"]


def labels_with_sizes(table: pd.DataFrame, labelled) -> pd.DataFrame:
    """``table`` (one row per row of ``labelled.detections.images``) with ``width``/``height``
    taken from ``labelled`` (a Dataset returned by ``apply_detections``) where the table has none."""
    res = getattr(labelled, "detections_join", None)
    if res is None or not len(res.matched):
        return table
    sizes = labelled.images[["image_id", "width", "height"]].copy()
    sizes["image_id"] = sizes["image_id"].astype(str)
    sizes = sizes.drop_duplicates("image_id").set_index("image_id")
    matched = res.matched.assign(image_id=res.matched["image_id"].astype(str))
    by_row = matched.join(sizes, on="image_id").set_index("row")
    out = table.copy()
    for col in ("width", "height"):
        have = out[col].astype("Int64") if col in out else pd.Series(pd.NA, index=out.index, dtype="Int64")
        fill = by_row[col].astype("Int64").reindex(range(len(out)))
        fill.index = out.index
        out[col] = have.fillna(fill)
    return out
