"""Dataset tab: load a CCT JSON, a folder or a detections file; pick a subset; chart, browse, sort, fetch."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Optional

import gradio as gr

from trailcam_core.ingest import charts
from trailcam_core.subset import select as core_subset
from trailcam_core.detections import DetectionOptions
from trailcam_core.subset import fetch_images, FetchOptions, load_source

from ._common import AppContext, OptionForm, event_fn, long_job, picture, report_markdown, stop_button

GALLERY_MAX = 60
PICKED = ("locations", "categories", "exclude_categories")   # choices come from the loaded dataset
SORT_MODES = ("copy", "hardlink", "symlink")
SUBSET_MAIN = ("locations", "categories", "empty", "time_of_day", "sequence", "max_per_category", "max_total")


def load(ctx: AppContext, source: str, image_root: str = "", bboxes: str = "", detections: str = "",
         detection_options: Optional[DetectionOptions] = None, progress=None):
    """Load the dataset (plus optional boxes / detector labels); return it and a one-paragraph summary."""
    # relative paths are looked up in the work folder, as in the other tabs
    src = ctx.input_path(source, "dataset (CCT JSON or folder)")
    root = ctx.input_path(image_root, "image root") if (image_root or "").strip() else None
    box = ctx.input_path(bboxes, "bbox file") if (bboxes or "").strip() else None
    det = ctx.input_path(detections, "detections file") if (detections or "").strip() else None
    ds = load_source(src, bboxes=box, image_root=root, detections=det, detection_options=detection_options,
                     cache_dir=ctx.workdir / "cache" / "datasets", progress=progress)
    n_ann = len(ds.annotations)
    lines = [f"**{len(ds)} images**, {n_ann} annotations, {len(ds.locations)} locations, "
             f"{len(ds.category_names)} categories — `{src}`"]
    lines += [f"- warning: {w}" for w in ds.warnings[:5]]
    lines += [f"- skipped `{i}`: {r}" for i, r in ds.skipped[:5]]
    return ds, "\n".join(lines)


def subset_outputs(ctx: AppContext, sub: Any, limit: int = GALLERY_MAX):
    """Charts (one row per image, primary label) and a gallery of the first images of a subset."""
    table = charts.image_table(sub)
    out = ctx.out("charts")
    # one file pair per distinct subset: two sessions never overwrite each other's charts
    key = hashlib.sha1("\n".join(map(str, table["image_id"])).encode()).hexdigest()[:12]
    bar = charts.category_bar_chart(table, out / f"categories-{key}.png", unit="images")
    heat = charts.location_heatmap(table, out / f"locations-{key}.png", unit="images")
    gallery = []
    for rec in sub.records()[:limit]:
        img, problem = picture(rec.path)          # a missing or broken file: a placeholder with its reason
        gallery.append((img, f"{Path(rec.path).name}: {problem}" if problem
                        else f"{rec.label or 'unlabelled'} · loc {rec.location}"))
    return str(bar), str(heat), gallery


def build(ctx: AppContext) -> None:
    ds_state = gr.State(None)
    sub_state = gr.State(None)
    ctx.shared.update(dataset=ds_state, subset=sub_state)
    default_src = str(ctx.sample_json) if ctx.sample_json else ""
    with gr.Row():
        with gr.Column(scale=2):
            source = gr.Textbox(default_src, label="Dataset", info="A CCT JSON file or a folder of images/videos "
                                "on the machine running the app (relative: below the work folder)",
                                elem_id="dataset_source")
            with gr.Accordion("More sources", open=False):
                image_root = gr.Textbox("", label="Image root", info="Folder the JSON's file_name values are "
                                        "relative to (default: the JSON's folder)")
                bboxes = gr.Textbox("", label="Bounding-box file", info="A separate CCT bbox JSON merged by image id")
                detections = gr.Textbox("", label="Detections file", info="MegaDetector / AddaxAI / SpeciesNet "
                                        "results: their labels replace the dataset's")
                det_form = OptionForm(DetectionOptions, only=("threshold", "classification_threshold"))
            load_btn = gr.Button("Load", variant="primary")
        summary = gr.Markdown(elem_classes="trailcam-status")
    with gr.Row():
        with gr.Column(scale=2):
            sub_form = OptionForm(core_subset.SubsetOptions, main=SUBSET_MAIN, more_label="More filters",
                                  overrides={name: dict(choices=[], allow_custom_value=True) for name in PICKED})
            with gr.Row():
                subset_btn = gr.Button("Make subset", variant="primary")
        with gr.Column(scale=3):
            sub_summary = gr.Markdown(elem_classes="trailcam-status")
            with gr.Row():
                # the charts carry their own titles: Gradio's label would cover their top
                bar = gr.Image(label="Images per category", show_label=False, type="filepath", interactive=False,
                               elem_id="dataset_chart_categories")
                heat = gr.Image(label="Categories per location", show_label=False, type="filepath",
                                interactive=False, elem_id="dataset_chart_locations")
    gallery = gr.Gallery(label="Subset (first images)", columns=8, height=360, preview=False)
    with gr.Row():
        out_name = gr.Textbox("subset", label="Output folder", info="Below the work folder")
        save_btn = gr.Button("Save subset JSON")
        sort_btn = gr.Button("Sort into folders by category")
        sort_mode = gr.Dropdown(list(SORT_MODES), value="copy", label="Sort by")
    with gr.Row():
        fetch_form = OptionForm(FetchOptions, only=("base_url",))
        fetch_btn = gr.Button("Fetch images")
        stop_button("dataset", "dataset_stop")
    action_out = gr.Markdown(elem_classes="trailcam-status")

    det_names = det_form.names
    load_inputs = [source, image_root, bboxes, detections, *det_form.components]
    load_names = ["source", "image_root", "bboxes", "detections", *det_names]
    pick = [c for n, c in zip(sub_form.names, sub_form.components) if n in PICKED]

    def do_load(source, image_root, bboxes, detections, progress, **det):
        ds, text = load(ctx, source, image_root, bboxes, detections, det_form.parse(det), progress)
        updates = []
        for name in sub_form.names:
            if name == "locations":
                updates.append(gr.update(choices=ds.locations, value=[]))
            elif name in PICKED:
                updates.append(gr.update(choices=ds.category_names, value=[]))
        return (ds, text, *updates)

    def do_subset(dataset, progress, **values):
        if dataset is None:
            raise gr.Error("Load a dataset first.")
        opts = sub_form.parse(values)
        try:
            sub = core_subset.make_subset(dataset, opts)
        except core_subset.EmptySubsetError as exc:   # 0 images is a result: the page must not keep the old one
            return None, f"**0 of {len(dataset)} images**: {exc}", None, None, []
        bar_png, heat_png, pics = subset_outputs(ctx, sub)
        text = f"**{len(sub.images)} of {len(dataset)} images** in the subset ({len(pics)} shown below)"
        return sub, text, bar_png, heat_png, pics

    def do_load_and_subset(source, image_root, bboxes, detections, progress, **values):
        det = {k: values.pop(k) for k in det_names}
        first = do_load(source, image_root, bboxes, detections, progress, **det)
        rest = do_subset(first[0], progress, **values)
        return (*first, *rest)

    load_out = [ds_state, summary, *pick]
    sub_out = [sub_state, sub_summary, bar, heat, gallery]
    long_job(load_btn.click, event_fn(do_load, load_names, progress=True), load_inputs, load_out, "dataset_load")
    long_job(subset_btn.click, event_fn(do_subset, ["dataset", *sub_form.names], progress=True),
             [ds_state, *sub_form.components], sub_out, "dataset_subset")
    # The page opens with the bundled sample loaded and a default subset made.
    if ctx.sample_json:
        ctx.shared.setdefault("on_load", []).append(dict(
            fn=event_fn(do_load_and_subset, load_names + sub_form.names, progress=True),
            inputs=load_inputs + sub_form.components, outputs=load_out + sub_out, api_name="dataset_open_sample",
            show_progress_on=[summary, sub_summary, bar, heat, gallery]))

    def do_save(subset, out_name):
        sub = _need(subset)
        saved = sub.save(ctx.out(out_name))
        return (f"Saved **{len(sub.images)} images** to `{ctx.rel(saved['json'])}` "
                f"(manifest: `{ctx.rel(saved['manifest'])}`)")

    def do_sort(subset, out_name, sort_mode, progress):
        report = _need(subset).sort_images(ctx.out(out_name), mode=sort_mode, progress=progress)
        return report_markdown(report)

    def do_fetch(subset, out_name, base_url, progress):
        opts = fetch_form.parse({"base_url": base_url})
        report = fetch_images(_need(subset), ctx.out(out_name) / "images", opts, progress=progress)
        return report_markdown(report)

    save_btn.click(event_fn(do_save, ["subset", "out_name"]), [sub_state, out_name], action_out,
                   api_name="dataset_save")
    long_job(sort_btn.click, event_fn(do_sort, ["subset", "out_name", "sort_mode"], progress=True,
                                      stop_job="dataset"),
             [sub_state, out_name, sort_mode], [action_out], "dataset_sort")
    long_job(fetch_btn.click, event_fn(do_fetch, ["subset", "out_name", "base_url"], progress=True,
                                       stop_job="dataset"),
             [sub_state, out_name, *fetch_form.components], [action_out], "dataset_fetch")


def _need(subset: Optional[Any]):
    if subset is None:
        raise gr.Error("Make a subset first (Dataset tab).")
    return subset
