"""DistributionChart: the subset's categories (bar chart) or locations x categories (heat map) as an IMAGE."""
from __future__ import annotations

import tempfile
from pathlib import Path

import folder_paths
from PIL import Image
from comfy_api.latest import io

from trailcam_core.ingest import ChartOptions, write_charts
from trailcam_core.base import TrailcamError

from ._common import CATEGORY, SUBSET, SubsetData, option_inputs, options_from, run_core, to_tensor

CHARTS = {"categories": "categories", "locations": "locations"}


class DistributionChart(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DistributionChart", display_name="Distribution Chart (trailcam)", category=CATEGORY,
            description="How the subset's images or annotations spread over categories (bar chart) or over "
                        "locations and categories (heat map).",
            inputs=[SUBSET.Input("subset"),
                    io.Combo.Input("chart", options=list(CHARTS), default="categories",
                                   tooltip="Bar chart per category, or heat map of locations x categories"),
                    *option_inputs(ChartOptions)],
            outputs=[io.Image.Output(display_name="chart")])

    @classmethod
    def execute(cls, subset: SubsetData, chart: str, **widgets) -> io.NodeOutput:
        if subset.subset is None:
            raise TrailcamError("DistributionChart needs a subset that came from LoadTrailcamSubset")
        Path(folder_paths.get_temp_directory()).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="trailcam_chart_", dir=folder_paths.get_temp_directory()) as tmp:
            report = run_core(write_charts, subset.subset, tmp, options_from(ChartOptions, widgets))
            with Image.open(report.outputs[CHARTS[chart]]) as im:
                img = im.convert("RGB")
        return io.NodeOutput(to_tensor([img]))
