"""Small helpers the CLI modules share (never logic: that lives in trailcam_core)."""
from __future__ import annotations

import json
import sys

from trailcam_core.base import BatchReport, TqdmProgress


def progress(desc: str, unit: str = "img") -> TqdmProgress:
    """A tqdm progress adapter; disabled when stderr is not a terminal and CI is quiet is fine too."""
    return TqdmProgress(desc=desc, unit=unit)


def finish(report: BatchReport, json_out: bool = False, max_skipped: int = 20) -> int:
    """Print skipped items (capped) and the one-line summary; return 0."""
    if json_out:
        print(json.dumps(report.to_dict(), indent=1))
        return 0
    for item, reason in report.skipped[:max_skipped]:
        print(f"  skipped {item}: {reason}", file=sys.stderr)
    if len(report.skipped) > max_skipped:
        print(f"  ... and {len(report.skipped) - max_skipped} more skipped", file=sys.stderr)
    print(report.summary())
    return 0
