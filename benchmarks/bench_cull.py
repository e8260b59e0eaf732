"""The culling view's speed in a real headless Chromium against the real app on this machine.

1. 2,500 images (generated JPEGs, 640x467, bursts of 3, with a CCT JSON): key press to saved
   state and next image shown (median of 50 presses, in the loupe and in the grid), first grid
   paint once the thumbnails exist, filter change (median of 10). Targets: 100 ms, 1 s, 300 ms.
2. 243,100 entries (the full-scale CCT JSON the project writes, as benchmarks/bench_dataset.py
   does): the view opens (cold: the JSON parsed for the first time; warm: its columnar cache), a
   filter change, memory of the server process above idle. Targets: 3 s, 500 ms, 1 GB.
3. Thumbnail cache rate against its baseline, the crop stage (crop_batch, the same JPEG fast path)
   on the same 2048x1494 JPEGs, both on all cores. Target: >= 0.7 of the crop stage's rate.

    python benchmarks/bench_cull.py [--n 2500] [--full 243100] [--thumb-n 300]

The machine is shared and noisy: medians are printed with their spread.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def rss_mb() -> float:
    """Resident memory of this process (the server runs in it), from psutil or /proc."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def spread(xs) -> str:
    xs = sorted(xs)
    return f"median {statistics.median(xs):.1f} ms (p10 {xs[len(xs) // 10]:.1f}, p90 {xs[(9 * len(xs)) // 10]:.1f})"


def start_app(workdir: Path):
    from _gradio_harness import free_port
    from gradio_app.app import build_app, launch

    demo = build_app(sample=False, workdir=workdir)
    _, url, _ = launch(port=free_port(), demo=demo, prevent_thread_lock=True, quiet=True)
    return demo, url.rstrip("/") + "/"


def open_page(browser, url: str, source: Path, timeout: float = 120_000):
    from urllib.parse import quote

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{url}cull/?source={quote(str(source))}&features=pyramid", wait_until="domcontentloaded")
    page.wait_for_function("window.cull.ready && window.cull.firstPaint !== null", timeout=timeout)
    return page


def presses(page, key_of, n: int) -> list[float]:
    out = []
    for k in range(n):
        before = page.evaluate("window.cull.lastAction ? window.cull.lastAction.start : 0")
        page.keyboard.press(key_of(k))
        page.wait_for_function(f"window.cull.lastAction && window.cull.lastAction.start > {before}", timeout=30_000)
        a = page.evaluate("window.cull.lastAction")
        out.append(a["end"] - a["start"])
    return out


def filter_changes(page, facet: str, n: int) -> list[float]:
    out = []
    labels = page.locator(f"#f-{facet} label input")
    for k in range(n):
        box = labels.nth(k % min(3, labels.count()))
        before = page.evaluate("window.cull.lastQuery.start")
        box.click()
        page.wait_for_function(f"window.cull.lastQuery.start > {before}", timeout=60_000)
        q = page.evaluate("window.cull.lastQuery")
        out.append(q["painted"] - q["start"])
    return out


def bench_2500(browser, url: str, tmp: Path, n: int) -> None:
    from cull_fixtures import make_collection

    t = time.perf_counter()
    facts = make_collection(tmp / "cull2500", n=n, size=(640, 467), broken=0)
    print(f"\n[1] {n} images 640x467 made in {time.perf_counter() - t:.0f} s", flush=True)
    tag_state(facts, url)
    page = open_page(browser, url, facts["json"])
    page.wait_for_function("window.cull.thumbsDone", timeout=600_000)
    job = page.evaluate("window.cull.thumbsDone")
    print(f"thumbnails built in the background: {job['total']} in {job['seconds']:.1f} s "
          f"({job['total'] / max(job['seconds'], 1e-9):.0f}/s)")
    page.close()
    paints = []
    for _ in range(3):
        page = open_page(browser, url, facts["json"])          # thumbnails exist now
        paints.append(page.evaluate("window.cull.firstPaint"))
        page.close()
    print(f"first grid paint (navigation start -> visible thumbnails decoded): {spread(paints)}  target <= 1000 ms")
    page = open_page(browser, url, facts["json"])
    grid = presses(page, lambda k: "3" if k % 2 else "p", 50)
    print(f"grid:  key press -> saved + next image selected: {spread(grid)}  target <= 100 ms")
    page.evaluate("window.cull.S.cur = 0")
    page.keyboard.press("Space")
    page.wait_for_selector("#loupe-info >> text=captured")
    loupe = presses(page, lambda k: "p" if k % 2 else "x", 50)
    print(f"loupe: key press -> saved + next large image shown: {spread(loupe)}  target <= 100 ms")
    page.keyboard.press("Escape")
    f = filter_changes(page, "species", 10)
    print(f"filter change (species) -> new grid painted: {spread(f)}  target <= 300 ms")
    page.close()


def tag_state(facts: dict, url: str) -> None:
    """Give every image auto tags in the curation state (as `trailcam tag` would), so each save
    writes a realistic, fully tagged state file of the whole collection."""
    import numpy as np

    from trailcam_core.tags.curation import Project, state_folder
    from trailcam_core.base.records import ImageRecord
    from trailcam_core.tags.model import Tag

    root = state_folder(facts["json"], _APP["demo"].trailcam_context.workdir)
    project = Project.open(root)
    rs = np.random.default_rng(0)
    folder = Path(facts["json"]).parent
    for i in facts["ids"]:
        project.add_record(ImageRecord(image_id=i, path=folder / f"{i}.jpg"))
        g = float(rs.random())
        project.set_auto_tags(i, {"species": Tag(facts["species"][i], "label"),
                                  "time_of_day": Tag(str(rs.choice(["day", "night-infrared", "night-flash"])), "pixels",
                                                     0.9),
                                  "artifact": Tag("glitch" if g > 0.8 else "clean", "pixels", g),
                                  "info_bar": Tag("none", "pixels"), "location": Tag(facts["location"][i], "label")})
    project.save()
    print(f"state: {len(facts['ids'])} images with auto tags, {project.state_path.stat().st_size / 1024:.0f} KB")


def bench_full(browser, url: str, tmp: Path, n: int) -> None:
    from trailcam_core.samples.synthetic import write_full_scale_json

    t = time.perf_counter()
    path = write_full_scale_json(tmp / "full" / "caltech_images_fullscale.json", n_images=n)
    print(f"\n[2] {n:,}-image CCT JSON written in {time.perf_counter() - t:.0f} s "
          f"({path.stat().st_size / 2**20:.0f} MB)", flush=True)
    import gc

    gc.collect()
    idle = rss_mb()
    for label in ("cold (first parse)", "warm (cached)"):
        page = open_page(browser, url, path, timeout=300_000)
        o = page.evaluate("window.cull.opened")
        print(f"open, {label}: {o['end'] - o['start']:.0f} ms to the first grid paint ({o['total']:,} images)"
              f"  target <= 3000 ms")
        if label.startswith("cold"):
            page.close()
            # the next page opens the same session: drop it, so the warm figure re-reads the table
            reg = page_app_registry()
            reg.sessions.clear()
            continue
        fl = filter_changes(page, "location", 10)
        print(f"filter change (location) at {n:,}: {spread(fl)}  target <= 500 ms")
        fs = filter_changes(page, "species", 6)
        print(f"filter change (species) at {n:,}: {spread(fs)}  target <= 500 ms")
        page.close()
    gc.collect()
    print(f"server memory: idle {idle:.0f} MB, with the collection open {rss_mb():.0f} MB "
          f"(+{rss_mb() - idle:.0f} MB)  target <= +1024 MB")


_APP: dict = {}


def page_app_registry():
    return _APP["demo"].app.state.trailcam_cull


def bench_thumbs(tmp: Path, n: int) -> None:
    from bench_crop import H, W, make_images
    from trailcam_core.crop.geometry import CropOptions
    from trailcam_core.crop.batch import crop_batch
    from trailcam_core.cull.thumbs import ThumbnailCache

    src = tmp / "frames"
    origin = make_images(src, n)
    files = sorted(src.glob("*.jpg"))
    for f in files:
        f.read_bytes()
    workers = len(os.sched_getaffinity(0))
    print(f"\n[3] {n} JPEGs {W}x{H} ({origin}), {workers} workers, 3 interleaved rounds", flush=True)
    crop_t, thumb_t = [], []
    for r in range(3):
        t = time.perf_counter()
        crop_batch(src, tmp / f"crops{r}", CropOptions(size=512, workers=workers))
        crop_t.append(time.perf_counter() - t)
        cache = ThumbnailCache(tmp / f"thumbs{r}", size=256)
        t = time.perf_counter()
        rep = cache.build(files, workers=workers)
        thumb_t.append(time.perf_counter() - t)
        assert rep.processed == n, rep.summary()
    c, th = min(crop_t), min(thumb_t)
    print(f"baseline crop stage (crop_batch, 512 px): {1000 * c / n:.2f} ms per image ({n / c:.0f}/s)")
    print(f"thumbnail cache (256 px, content-keyed):  {1000 * th / n:.2f} ms per image ({n / th:.0f}/s)")
    print(f"thumbnail rate / crop rate: {c / th:.2f}  target >= 0.7")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2500)
    ap.add_argument("--full", type=int, default=243_100)
    ap.add_argument("--thumb-n", type=int, default=300)
    ap.add_argument("--skip", nargs="*", default=[], choices=["2500", "full", "thumbs"])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_cull_"))
    os.environ["TRAILCAM_HOME"] = str(tmp / "home")          # a cold dataset cache of our own
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine: expect noise)")
    try:
        from playwright.sync_api import sync_playwright

        demo, url = start_app(tmp / "work")
        _APP["demo"] = demo
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            if "2500" not in args.skip:
                bench_2500(browser, url, tmp, args.n)
            if "full" not in args.skip:
                bench_full(browser, url, tmp, args.full)
            browser.close()
        if "thumbs" not in args.skip:
            bench_thumbs(tmp, args.thumb_n)
        try:
            import torch

            print("\nGPU:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (not used here)")
        except ImportError:
            print("\nno GPU")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
