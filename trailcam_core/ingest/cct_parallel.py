"""Parse a large COCO Camera Traps file on every core (Linux and other fork platforms).

The one-process parser (:mod:`trailcam_core.ingest.cct`) spends its time turning ~2.4 million decoded
values into Arrow columns; that work splits cleanly by record.  Here:

1. one msgspec pass over the top level keeps ``images`` and ``annotations`` as raw byte spans (a
   validating scan that builds no objects) and decodes the small sections;
2. each span is cut into runs of elements at the commas between them, and the runs are dealt to
   the workers in order;
3. forked workers (the file's buffer is shared copy-on-write: nothing is pickled or copied)
   decode one run at a time into structs, turn it into columns with :func:`cct.image_columns` /
   :func:`cct.annotation_columns` (capture times parsed too) and stream the columns as Arrow
   IPC into shared memory; they exit without freeing anything;
4. the parent concatenates the columns and runs the same checks as the one-process path.

A cut that is not between two elements (a comma followed by ``{`` inside a string, or inside a
nested array) always leaves a run that does not decode, and any failure in a worker (malformed
record, failed fork, results larger than their shared memory) makes :func:`parse_columns`
return None: the caller then parses in one process, which names the problem exactly.
``TRAILCAM_PARSE_WORKERS=1`` turns this off; ``=N`` sets the number of workers.
"""
from __future__ import annotations

import gc
import json
import mmap
import os
import re
import signal
import struct
import time
from concurrent.futures import ThreadPoolExecutor
import warnings
from pathlib import Path
from typing import Optional

import msgspec
import msgspec.structs
import numpy as np
import pyarrow as pa

from trailcam_core.ingest import cct
from trailcam_core.ingest.cct_times import time_warning

MIN_BYTES = 8 << 20             # below this one process is as fast (fork and results cost ~20 ms)
PIECE_BYTES = 4 << 20           # a worker decodes this much JSON at a time (its memory stays flat)
_ELEMENT_COMMA = re.compile(rb"\}\s*(,)\s*\{")
_IMAGES = msgspec.json.Decoder(list[cct.CctImage])
_ANNOTATIONS = msgspec.json.Decoder(list[cct.CctAnnotation])
STATS: dict = {}                # the last parallel parse: workers and their peak own memory (MB)


class _Spans(msgspec.Struct):
    images: msgspec.Raw
    annotations: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"[]"))
    categories: list[cct.CctCategory] = msgspec.field(default_factory=list)
    info: Optional[dict] = None


def workers_for(size: int) -> int:
    """How many worker processes to use for a file of ``size`` bytes (1 = parse in this process)."""
    if not hasattr(os, "fork") or size < MIN_BYTES:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    env = os.environ.get("TRAILCAM_PARSE_WORKERS", "").strip()
    if env.isdigit() and int(env) >= 1:
        cores = int(env)
    return max(1, min(cores, 8, size // MIN_BYTES))


def parse_columns(buf, path: Path, workers: int):
    """Decode ``buf`` (a whole CCT file) with ``workers`` processes.

    Returns ``(image columns, annotation columns, categories, info, time problems)``: the columns
    :func:`cct.image_columns` / :func:`cct.annotation_columns` would give for the whole file, with
    ``datetime`` already parsed (``time problems`` as :func:`cct.parse_datetimes` collects them),
    or None when anything failed (the caller parses in one process and reports the problem).
    ``buf`` must be writable (a bytearray or a copy-on-write mmap); it is never changed here.
    """
    try:
        jobs, categories, info = _plan(buf, workers)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    children = []
    try:
        for runs in jobs:
            # results come back through shared memory: only the pages written are ever allocated
            size = sum(end - start for _, start, end, _, _ in runs)
            children.append(_fork(buf, path, runs, mmap.mmap(-1, 4 * size + (64 << 20))))
    except OSError:
        _reap(children)
        return None
    if isinstance(buf, mmap.mmap):
        # the workers have their own mapping: drop this process's pages of the file (the page cache
        # keeps them; a one-process retry simply maps them again)
        try:
            buf.madvise(mmap.MADV_DONTNEED)
        except (AttributeError, OSError, ValueError):
            pass
    # a worker that hangs (a lock some other thread held at the fork) is killed and the file is
    # parsed in one process: generous, at 2 MB/s the full Caltech file would get 105 s
    results = _collect(children, deadline=time.monotonic() + 60 + len(buf) / 2e6)
    if results is None:
        return None
    images = pa.concat_tables([r[0] for r in results])
    annotations = pa.concat_tables([r[1] for r in results])
    problems = [tuple(p) for r in results for p in r[3]]
    STATS.update(workers=workers, worker_private_mb=[r[2] / 1024 for r in results])
    return images, annotations, categories, info, problems


def _plan(buf, workers: int):
    """Scan the top level and deal runs of ~PIECE_BYTES to the workers, in order (each worker's
    runs are contiguous, so the concatenated results keep the file's order).  Returns the runs
    per worker, the categories and the info; raises msgspec's errors for a malformed file."""
    top = msgspec.json.decode(buf, type=_Spans)
    base = np.frombuffer(buf, np.uint8).ctypes.data
    spans = {"images": _span(top.images, base), "annotations": _span(top.annotations, base)}
    categories, info = top.categories, top.info
    del top
    jobs: list[list] = [[] for _ in range(workers)]
    for kind, (lo, hi) in spans.items():
        pieces = max(workers, -(-(hi - lo) // PIECE_BYTES))
        pieces = -(-pieces // workers) * workers
        cuts = _cuts(buf, lo, hi, pieces)
        runs = [(kind, a, b, lo, hi) for a, b in zip(cuts, cuts[1:])]
        per = -(-len(runs) // workers)
        for w in range(workers):
            jobs[w].extend(runs[w * per:(w + 1) * per])
    return jobs, categories, info


def _span(raw: msgspec.Raw, base: int) -> tuple[int, int]:
    """Where a zero-copy Raw lies in the buffer that starts at address ``base``."""
    a = np.frombuffer(raw, np.uint8)
    start = a.ctypes.data - base
    return start, start + len(a)


def _cuts(buf, lo: int, hi: int, pieces: int) -> list[int]:
    """Boundaries splitting the JSON array ``buf[lo:hi]`` into up to ``pieces`` runs of elements:
    ``lo``, the positions of element-separating commas, ``hi``."""
    out = [lo]
    for i in range(1, pieces):
        m = _ELEMENT_COMMA.search(buf, max(out[-1] + 1, lo + (hi - lo) * i // pieces), hi)
        if m is None:
            break
        if m.start(1) > out[-1]:
            out.append(m.start(1))
    out.append(hi)
    return out


def _decode_run(buf, start: int, end: int, lo: int, hi: int, decoder):
    """Decode the elements between boundaries ``start`` and ``end`` of the array ``buf[lo:hi]``:
    a comma boundary is overwritten with '[' or ']' (in this worker's private copy of the page)."""
    if start != lo:
        buf[start] = 0x5B
    if end != hi:
        buf[end] = 0x5D
        end += 1
    return decoder.decode(memoryview(buf)[start:end])


# --------------------------------------------------------------------------------------------
# Workers
# --------------------------------------------------------------------------------------------
def _fork(buf, path: Path, runs: list, out: mmap.mmap) -> tuple[int, mmap.mmap]:
    with warnings.catch_warnings():           # Python 3.12+ warns about fork in threaded processes
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:                              # the worker: never returns
        code = 1
        try:
            import gc

            gc.disable()                      # the structs hold no cycles and are never freed here
            try:                              # keep freed Arrow pages for the next run (no refaults)
                pa.jemalloc_set_decay_ms(-1)
            except (NotImplementedError, pa.ArrowException, AttributeError):
                pass
            _worker(buf, path, runs, out)
            code = 0
        except BaseException:
            pass
        finally:
            os._exit(code)
    return pid, out


def _worker(buf, path: Path, runs: list, out: mmap.mmap) -> None:
    """In the forked child: decode and convert the runs and stream them into ``out`` (shared
    memory) one run at a time: [8-byte length][8-byte peak own memory, kB][IPC stream: images]
    [IPC stream: annotations][IPC stream: the capture times that did not parse]."""
    expect = min(len(out), int(0.6 * sum(end - start for _, start, end, _, _ in runs)))   # ~ what comes out
    try:                                      # fault the results' pages in at once (Linux 5.14+)
        out.madvise(23, 0, expect - expect % mmap.PAGESIZE)       # MADV_POPULATE_WRITE
    except (OSError, ValueError, OverflowError):
        pass
    sink = pa.FixedSizeBufferWriter(pa.py_buffer(memoryview(out)[16:]))
    peak, problems, pins = 0, [], {}
    for kind in ("images", "annotations"):
        mine = [r for r in runs if r[0] == kind]
        writer = None
        for k, (_, start, end, lo, hi) in enumerate(mine):
            if kind == "images":
                structs = _decode_run(buf, start, end, lo, hi, _IMAGES)
                _pin(structs, pins)
                cols = cct.image_columns(structs)
                del structs
                t = cols.schema.get_field_index("datetime")
                cols = cols.set_column(t, "datetime", cct.parse_datetimes(cols.column(t).combine_chunks(), path, [],
                                                                          problems))
            else:
                structs = _decode_run(buf, start, end, lo, hi, _ANNOTATIONS)
                _pin(structs, pins)
                cols = cct.annotation_columns(structs, path)
                del structs
            if writer is None:
                writer = pa.ipc.new_stream(sink, cols.schema)
            writer.write_table(cols)
            if k == len(mine) - 1:
                peak = max(peak, _own_kb() - sink.tell() // 1024)
            del cols
        if writer is None:                    # no run of this kind: an empty stream
            writer = pa.ipc.new_stream(sink, (_empty_images() if kind == "images" else _empty_annotations()).schema)
        writer.close()
    meta = pa.table({"problems": [json.dumps(problems, default=str)]})
    with pa.ipc.new_stream(sink, meta.schema) as writer:
        writer.write_table(meta)
    out[:16] = struct.pack("<QQ", sink.tell(), max(peak, 0))


def _pin(structs: list, pins: dict) -> None:
    """Keep a few of a run's objects alive in every memory arena they fill, so that when the run
    is freed Python keeps those arenas (it unmaps empty ones) and the next run reuses their pages
    instead of faulting in fresh ones (a page fault costs more than decoding what fills it)."""
    for o in structs[::32]:
        for x in (o, *(v for v in msgspec.structs.astuple(o) if isinstance(v, str))):
            pins.setdefault(id(x) >> 20, x)


def _empty_images() -> pa.Table:
    cols = cct.image_columns([])
    return cols.set_column(cols.schema.get_field_index("datetime"), "datetime", pa.array([], pa.timestamp("us")))


def _empty_annotations() -> pa.Table:
    return cct.annotation_columns([], Path(""))


def _own_kb() -> int:
    """This worker's own memory now (kB): its private dirty pages (its heap and the parent's pages
    it copied on write; pages still shared with the parent are the parent's, file pages are the
    page cache's).  The caller subtracts the results written to shared memory so far: the parent
    maps those and they count there."""
    try:
        with open("/proc/self/smaps_rollup") as fh:
            return sum(int(line.split()[1]) for line in fh if line.startswith("Private_Dirty:"))
    except (OSError, ValueError):
        return 0


def _wait(pid: int, deadline: float) -> int:
    """The exit status of worker ``pid``; killed (status -9) once ``deadline`` passes."""
    delay = 0.0005
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            os.waitpid(pid, 0)
            return -9
        time.sleep(delay)
        delay = min(delay * 2, 0.004)


def _collect(children: list, deadline: float):
    """Wait for every worker and read its results (combined into one chunk per column, which copies
    them out of the shared memory); None if any failed."""
    results, ok = [], True
    for pid, out in children:
        status = _wait(pid, deadline)
        if status != 0 or not ok:
            ok = False
            continue
        try:
            length, own_kb = struct.unpack("<QQ", out[:16])
            reader = pa.BufferReader(pa.py_buffer(out).slice(16, length))
            images = pa.ipc.open_stream(reader).read_all()
            annotations = pa.ipc.open_stream(reader).read_all()
            problems = json.loads(pa.ipc.open_stream(reader).read_all()["problems"][0].as_py())
            del reader                        # the shared memory goes when nothing points into it
            results.append((images, annotations, own_kb, problems))
        except (pa.ArrowException, struct.error, ValueError, BufferError):
            ok = False
    return results if ok else None


def _reap(children: list) -> None:
    for pid, out in children:
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass


def parse(holder: list, path: Path):
    """Parse CCT bytes (``holder = [data]``; emptied so the buffer can be freed early).

    Returns (images table, annotations table, categories, info, warnings).  Files of at least
    :data:`MIN_BYTES` held in a writable buffer are parsed by several processes; anything else,
    and any worker failure, goes to :func:`cct.parse_serial`, which names any problem exactly.
    The cyclic garbage collector is paused meanwhile: the decoded structs hold no cycles, and
    scanning millions of new objects again and again would cost more than the parse.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        data = holder.pop()
        warnings: list[str] = []
        if isinstance(data, (bytearray, mmap.mmap)):
            workers = workers_for(len(data))
            got = parse_columns(data, path, workers) if workers > 1 else None
            if got is not None:                      # else: one process, which names any problem exactly
                del data
                image_cols, ann_cols, cats, info, problems = got
                del got
                categories = cct.categories_map(cats, path)
                # the two checks run side by side: Arrow's kernels release the GIL
                with ThreadPoolExecutor(1) as pool:
                    ann_job = pool.submit(cct.finish_annotations, ann_cols, categories,
                                          image_cols["image_id"].combine_chunks(), path, False,
                                          image_cols["id_hash"].to_numpy())
                    images = cct.finish_images(image_cols, path)   # capture times were parsed by the workers
                    del image_cols
                    ann, _ = ann_job.result()
                if problems:
                    warnings.append(time_warning(problems, path))
                return images, ann, categories, info or {}, warnings
        holder.append(data)
        del data
        return cct.parse_serial(holder, path)
    finally:
        if enabled:
            gc.enable()
