"""Capture times of COCO Camera Traps records: "YYYY-MM-DD HH:MM:SS" read with numpy straight
from the Arrow string buffer, every other form (ISO with "T", time zones, impossible dates such as
2012-02-31) through the general parser, with the same results and one warning for the values
that do not parse.

    times = parse_datetimes(pa.array(["2012-03-17 03:48:44", "2013-07-01T14:05:00"]), path, warnings)
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_DIGIT_AT = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])    # in 'YYYY-MM-DD HH:MM:SS'
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _fixed_width_times(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(datetime64[us] values, rows done) for the values that are exactly 'YYYY-MM-DD HH:MM:SS'
    and a real date and time, read with numpy straight from the string buffer; every other row
    (other forms, impossible dates, nulls) is left undone for the general parser."""
    n = len(arr)
    out = np.full(n, np.datetime64("NaT"), "datetime64[us]")
    done = np.zeros(n, dtype=bool)
    if n == 0 or arr.type != pa.string() or arr.buffers()[2] is None:
        return out, done
    offsets = np.frombuffer(arr.buffers()[1], np.int32, n + 1, arr.offset * 4)
    data = np.frombuffer(arr.buffers()[2], np.uint8)
    lengths = np.diff(offsets)
    rows = np.flatnonzero(lengths == 19)
    if arr.null_count:
        rows = rows[pc.is_valid(arr).to_numpy(zero_copy_only=False)[rows]]
    if len(rows) == n and offsets[-1] - offsets[0] == 19 * n:       # the usual case: no copy
        m = data[offsets[0]:offsets[-1]].reshape(n, 19)
    else:
        m = data[offsets[rows][:, None] + np.arange(19, dtype=np.int32)]
    d = m[:, _DIGIT_AT]
    d -= 48                                       # uint8: anything below '0' wraps past 9
    ok = ((m[:, 4] == 45) & (m[:, 7] == 45) & (m[:, 10] == 32) & (m[:, 13] == 58) & (m[:, 16] == 58)
          & (d <= 9).all(axis=1))
    del m

    def num(a: int, b: int) -> np.ndarray:        # the decimal number in digits a..b-1
        out = np.zeros(len(d), np.int64)
        for k in range(a, b):
            out *= 10
            out += d[:, k]
        return out
    year, month, day, hour, minute, second = num(0, 4), num(4, 6), num(6, 8), num(8, 10), num(10, 12), num(12, 14)
    del d
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    last_day = _MONTH_DAYS[np.clip(month - 1, 0, 11)] + (leap & (month == 2))
    ok &= ((year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= last_day)
           & (hour < 24) & (minute < 60) & (second < 60))
    days = ((year - 1970) * 12 + month - 1).astype("datetime64[M]").astype("datetime64[D]") \
        + (day - 1).astype("timedelta64[D]")
    value = days.astype("datetime64[us]") + ((hour * 3600 + minute * 60 + second) * 1_000_000).astype("timedelta64[us]")
    out[rows[ok]] = value[ok]
    done[rows[ok]] = True
    return out, done


def parse_datetimes(arr: pa.Array, path: Path, warnings: list[str], problems: Optional[list] = None) -> pa.Array:
    """'YYYY-MM-DD HH:MM:SS' (vectorised) or any ISO form; values that do not parse become null
    (and are counted in ``warnings``; or, when ``problems`` is given, appended to it as
    ``(count, first example)`` for :func:`time_warning` to report once for several pieces)."""
    if problems is None:
        problems = []
        out = parse_datetimes(arr, path, warnings, problems)
        if problems:
            warnings.append(time_warning(problems, path))
        return out
    fast, done = _fixed_width_times(arr)
    if done.all():
        return pa.array(fast, pa.timestamp("us"))
    rest = np.flatnonzero(~done)
    if len(rest) == len(arr):
        return _parse_datetimes(arr, problems)
    slow = _parse_datetimes(arr.take(pa.array(rest)), problems)
    fast[rest] = slow.to_numpy(zero_copy_only=False).astype("datetime64[us]")
    return pa.array(fast, pa.timestamp("us"), mask=np.isnat(fast))


def time_warning(problems: list, path: Path) -> str:
    """One warning for the capture times that did not parse (``problems``: (count, example) pairs)."""
    return (f"{path}: {sum(n for n, _ in problems)} capture time(s) do not parse "
            f"(e.g. {problems[0][1]!r}); left unknown")


def _parse_datetimes(arr: pa.Array, problems: list) -> pa.Array:
    """The general parser: strptime in Arrow, then pandas for other ISO forms."""
    out = pc.strptime(arr, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
    retry = pc.and_(pc.is_null(out), pc.is_valid(arr))
    n_retry = pc.sum(retry).as_py() or 0
    if not n_retry:
        return out
    fixed = out.to_numpy(zero_copy_only=False).astype("datetime64[us]")
    valid = ~np.isnat(fixed)
    bad, first = 0, None
    for i in np.flatnonzero(retry.to_numpy(zero_copy_only=False)):
        text = arr[int(i)].as_py()
        try:
            t = pd.Timestamp(text)
            if t is pd.NaT:                      # "" or "NaT": unknown on purpose, not a parse error
                continue
            fixed[i] = np.datetime64((t.tz_convert(None) if t.tzinfo is not None else t).to_datetime64(), "us")
            valid[i] = True
        except (ValueError, TypeError, OverflowError):
            bad += 1
            first = first if first is not None else text
    if bad:
        problems.append((bad, first))
    return pa.array(fixed, pa.timestamp("us"), mask=~valid)
