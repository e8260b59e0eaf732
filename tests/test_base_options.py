"""Options are declared once; their choices and bounds are checked once, generically, when built."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from trailcam_core.base.options import Options, check_options, describe, option, parse_list
from trailcam_core.base.errors import TrailcamError
from trailcam_core.crop.geometry import CropOptions
from trailcam_core.detections.model import DetectionOptions
from trailcam_core.detections.sort import SortOptions
from trailcam_core.embed.features import EmbedOptions
from trailcam_core.generate.pipeline import GenerateOptions
from trailcam_core.ingest.charts import ChartOptions
from trailcam_core.lora.options import TrainOptions
from trailcam_core.mosaic.make import MosaicOptions
from trailcam_core.subset.fetch import FetchOptions
from trailcam_core.subset.select import SubsetOptions
from trailcam_core.tags.captions import CaptionOptions
from trailcam_core.tags.classify import ClassifyOptions
from trailcam_core.tags.curation import ExportOptions
from trailcam_core.tags.auto import TagOptions
from trailcam_core.gan.config import (GanEvalOptions, GanInterpolateOptions, GanSampleOptions, GanSteerOptions,
                                     GanTrainOptions)
from trailcam_core.cull.collection import CullOptions
from trailcam_core.atlas.build import AtlasOptions

EVERY_STAGE = [CropOptions, DetectionOptions, SortOptions, EmbedOptions, GenerateOptions, ChartOptions,
               TrainOptions, MosaicOptions, FetchOptions, SubsetOptions, CaptionOptions, ClassifyOptions,
               ExportOptions, TagOptions, GanTrainOptions, GanSampleOptions, GanInterpolateOptions, GanSteerOptions,
               GanEvalOptions, CullOptions, AtlasOptions]


@dataclass
class Toy(Options):
    STAGE = "toy"
    mode: str = option("a", "mode", choices=("a", "b"))
    size: int = option(8, "size", min=1, max=10)
    ratio: float = option(0.5, "ratio", min=0.0)
    kinds: list[str] = option([], "kinds", choices=("x", "y"))
    free: str = option("", "anything")


def test_declared_choices_and_bounds_are_checked_when_built():
    Toy(mode="b", size=10, ratio=0.0, kinds=["x", "y"])
    with pytest.raises(TrailcamError, match=r"toy option mode='c': choose one of a, b"):
        Toy(mode="c")
    with pytest.raises(TrailcamError, match=r"toy option size=11: expected 1 to 10"):
        Toy(size=11)
    with pytest.raises(TrailcamError, match=r"toy option ratio=-1: expected at least 0"):
        Toy(ratio=-1)
    with pytest.raises(TrailcamError, match=r"kinds=\['x', 'z'\]: choose one of x, y"):
        Toy(kinds=["x", "z"])
    with pytest.raises(TrailcamError, match="expected a number"):
        Toy(size="8")
    with pytest.raises(TrailcamError, match="expected a list"):
        Toy(kinds="x")
    toy = Toy()
    toy.size = 99                                  # changed after it was built: check_options says so
    with pytest.raises(TrailcamError, match="size=99"):
        check_options(toy)


@pytest.mark.parametrize("cls", EVERY_STAGE, ids=lambda c: c.__name__)
def test_every_stage_checks_its_declared_constraints(cls):
    assert issubclass(cls, Options) and cls.STAGE
    cls()                                          # the defaults are valid
    checked = 0
    for info in describe(cls):
        bad = None
        if info.choices and info.kind is not list:
            bad = "not-a-choice"
        elif info.kind in (int, float) and info.min is not None:
            bad = info.min - 1
        elif info.kind in (int, float) and info.max is not None:
            bad = info.max + 1
        if bad is None:
            continue
        with pytest.raises(TrailcamError, match=rf"{cls.STAGE} option {info.name}="):
            cls(**{info.name: bad})
        checked += 1
    assert checked, f"{cls.__name__} declares no choices or bounds to check"


def test_parse_list_is_the_one_list_rule_of_the_faces():
    assert parse_list(" a, b,,c ") == ["a", "b", "c"]
    assert parse_list("1; 2", int, ";") == [1, 2]
    assert parse_list(["x"]) == ["x"] and parse_list(None) == [] and parse_list("") == []
    with pytest.raises(TrailcamError, match="expected int"):
        parse_list("1, two", int)


def test_options_stay_plain_dataclasses():
    fields = [f.name for f in dataclasses.fields(Toy)]
    assert fields == ["mode", "size", "ratio", "kinds", "free"]
    assert dataclasses.asdict(Toy()) == {"mode": "a", "size": 8, "ratio": 0.5, "kinds": [], "free": ""}
