"""What the Gradio face costs, and whether the page stays responsive while a heavy job runs.

1. Crop the synthetic sample (centre, 256 px) through the app's /crop_run endpoint with
   gradio_client, against the baseline: the same core call, crop_batch, in this process.
   Both write fresh output folders, so neither is a no-op rerun.
2. Latency of a light endpoint (/tags_show) with the machine idle, and while a long generation
   holds the heavy slot: the ratio says how much a running job slows the rest of the page.

    python benchmarks/bench_app.py

The machine is shared and noisy: compare the ratios, not the absolute seconds.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _gradio_harness import get_client, get_server  # noqa: E402


def timed(fn, repeat=3):
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main() -> None:
    from trailcam_core.crop.geometry import CropOptions
    from trailcam_core.crop.batch import crop_batch
    from trailcam_core.ingest.dataset import load_dataset

    s, c = get_server(), get_client()
    wd = s["ctx"].workdir
    sample = s["ctx"].sample_json
    c.predict(source=str(sample), image_root="", bboxes="", detections="", threshold=0.2, api_name="/dataset_load")
    c.predict(locations=[], categories=[], empty="include", time_of_day="any", sequence="all", max_per_category=0,
              max_total=0, api_name="/dataset_subset")
    records = load_dataset(sample, cache_dir=wd / "cache" / "datasets").records()
    n = len(records)
    runs = iter(range(100))

    def core():
        crop_batch(records, wd / f"bench-core-{next(runs)}", CropOptions(size=256, workers=1))

    def face():
        c.predict(source="Dataset subset", folder="", out_name=f"bench-app-{next(runs)}", mode="center", size=256,
                  strip_info_bar=True, margin=0.15, min_score=0.0, workers=1, api_name="/crop_run")

    t_core, t_face = timed(core), timed(face)
    print(f"crop {n} images at 256 px, workers=1 (median of 3):")
    print(f"  baseline core crop_batch in-process : {t_core:6.2f} s  ({1000 * t_core / n:5.1f} ms/image)")
    print(f"  app /crop_run via gradio_client     : {t_face:6.2f} s  ({1000 * t_face / n:5.1f} ms/image)")
    print(f"  face overhead ratio                 : {t_face / t_core:6.2f}x")

    c.predict(source="Dataset subset", folder="", out_name="crops", mode="center", size=96, strip_info_bar=True,
              margin=0.15, min_score=0.0, api_name="/crop_run")
    c.predict(folder="crops", labels_from="No labels", metadata="", artifact_threshold=0.5, min_label_score=0.2,
              api_name="/tags_run")

    def light():
        c.predict(folder="crops", show="all", api_name="/tags_show")

    idle = timed(light, 5)
    job = c.submit(base=str(wd / "models" / "tiny-sdxl"), lora="(no LoRA)", strength_model=1.0, strength_clip=1.0,
                   prompt="coyote", negative_prompt="", seed=1, steps=200, guidance=5.0, width=128, height=128,
                   scheduler="euler", batch=1, api_name="/generate")
    while not job.status().progress_data:
        time.sleep(0.2)
    busy = timed(light, 5)
    still_running = not job.done()
    c.predict(api_name="/generate_stop")
    try:
        job.result(timeout=120)
    except Exception:
        pass
    print(f"light endpoint /tags_show ({n} thumbnails), median of 5:")
    print(f"  baseline, nothing running           : {idle:6.2f} s")
    print(f"  while a generation holds the slot   : {busy:6.2f} s  (job still running: {still_running})")
    print(f"  slowdown ratio                      : {busy / idle:6.2f}x (2 cores shared with the job)")


if __name__ == "__main__":
    main()
