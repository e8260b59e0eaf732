"""Tags & captions tab: auto-tag, a gallery with per-image tags, hand edits, favourites and rejects,
the caption template preview, and the export of the training set."""
from __future__ import annotations

import gradio as gr

from trailcam_core.tags import (CaptionOptions, export_favorites, ExportOptions, parse_tag_lines, Project,
                                render_caption, state_folder, tag_collection, tag_lines, tag_text, TagOptions)
from trailcam_core.base import TrailcamError

from ._common import (LABEL_SOURCES, AppContext, OptionForm, event_fn, label_metadata, long_job, readable,
                      picture, report_markdown, stop_button)

SHOWS = ("all", "favorites", "not-rejected", "rejected")
GALLERY_MAX = 120


tags_lines = tag_lines


def caption_of(project: Project, image_id: str) -> str:
    e = project.entry(image_id)
    mark = ("★ " if e.get("favorite") else "") + ("✗ " if e.get("reject") else "")
    tags = project.visible_tags(image_id)
    words = [w for w in (tag_text(k, tags.get(k)) for k in ("species", "time_of_day", "artifact")) if w]
    return mark + (" · ".join(words) or image_id[:16])


def build(ctx: AppContext) -> None:
    subset = ctx.shared.get("subset") or gr.State(None)
    with gr.Row():
        with gr.Column(scale=2):
            folder = gr.Textbox("crops", label="Images", info="The collection to tag (e.g. the crops), below the "
                                "work folder or an absolute path; its curation state is kept inside it (for a "
                                "folder outside the work folder: below the work folder, keyed by the folder)")
            labels_from = gr.Radio(list(LABEL_SOURCES), value=LABEL_SOURCES[0], label="Species and location from")
            metadata = gr.Textbox("", label="CCT JSON", info="When labels come from a CCT JSON")
            tag_form = OptionForm(TagOptions, main=("artifact_threshold", "min_label_score"),
                                  more_label="More tagging options")
            with gr.Row():
                run_btn = gr.Button("Auto-tag", variant="primary")
                stop_button("tags", "tags_stop")
            run_out = gr.Markdown(elem_classes="trailcam-status")
        with gr.Column(scale=3):
            with gr.Row():
                show = gr.Dropdown(list(SHOWS), value="all", label="Show")
                show_btn = gr.Button("Refresh gallery")
            gallery = gr.Gallery(label="Images (★ favourite, ✗ rejected)", columns=6, height=420, preview=False)
    ids_state = gr.State([])
    with gr.Row():
        with gr.Column(scale=2):
            image_id = gr.Textbox("", label="Image id", info="Click an image in the gallery")
            tags_box = gr.Textbox("", label="Tags", lines=6, info="One 'key: value' per line; delete a line to "
                                  "remove a tag. Your edits survive auto-tagging.")
            with gr.Row():
                save_tags = gr.Button("Save tags")
                star = gr.Button("★ Favourite")
                reject = gr.Button("✗ Reject")
            edit_out = gr.Markdown()
        with gr.Column(scale=2):
            cap_form = OptionForm(CaptionOptions, main=("template", "trigger"), more_label="More caption options")
            cap_btn = gr.Button("Preview caption")
            caption = gr.Textbox(label="Caption", interactive=False)
        with gr.Column(scale=2):
            exp_form = OptionForm(ExportOptions, prefix="export_")
            out_name = gr.Textbox("training", label="Export folder", info="Below the work folder")
            export_btn = gr.Button("Export training set", variant="primary")
            export_out = gr.Markdown()

    def project_of(folder: str) -> Project:
        return Project.open(state_folder(ctx.input_path(folder, "images folder"), ctx.workdir), create=False)

    def gallery_of(folder, show):
        project = project_of(folder)
        ids = [i for i in project.ids()
               if show == "all" or (show == "favorites" and project.entry(i).get("favorite"))
               or (show == "rejected" and project.entry(i).get("reject"))
               or (show == "not-rejected" and not project.entry(i).get("reject"))][:GALLERY_MAX]
        pics = []
        for i in ids:
            img, problem = picture(project.image_path(i))          # a bad file: a placeholder with its reason
            pics.append((img, f"{i}: {problem}" if problem else caption_of(project, i)))
        return pics, ids

    def do_run(folder, labels_from, metadata, subset, show, progress, **values):
        opts = tag_form.parse(values)
        src = ctx.input_path(folder, "images folder")
        meta = label_metadata(ctx, labels_from, subset, metadata)
        report = tag_collection(src, state_folder(src, ctx.workdir), options=opts, metadata=meta, progress=progress)
        pics, ids = gallery_of(folder, show)
        return report_markdown(report), pics, ids

    def do_show(folder, show):
        return gallery_of(folder, show)

    def on_select(folder, ids, evt: gr.SelectData):
        try:
            iid = ids[evt.index]
            project = project_of(folder)
            return iid, tags_lines(project, iid)
        except Exception as exc:
            raise readable(exc) from None

    def do_edit(folder, image_id, tags):
        project = project_of(folder)
        project.apply_tag_edits(image_id, parse_tag_lines(tags))   # only changed keys become hand edits
        project.save()
        return tags_lines(project, image_id), f"Saved tags of `{image_id}`"

    def toggle(which):
        def do(folder, image_id, show):
            project = project_of(folder)
            e = project.entry(image_id)
            (project.set_favorite if which == "favorite" else project.set_reject)([image_id], not e.get(which))
            project.save()
            state = "on" if project.entry(image_id).get(which) else "off"
            pics, ids = gallery_of(folder, show)
            return f"{which.capitalize()} {state} for `{image_id}`", pics, ids
        return do

    def do_caption(folder, image_id, **values):
        project = project_of(folder)
        if not image_id:
            raise TrailcamError("pick an image first")
        return render_caption(project.visible_tags(image_id), cap_form.parse(values), image_id=image_id)

    def do_export(folder, out_name, progress, **values):
        project = project_of(folder)
        cap, opts = cap_form.parse(values), exp_form.parse(values)
        report = export_favorites(project, ctx.out(out_name, "export folder"), cap, opts, progress=progress)
        return report_markdown(report)

    long_job(run_btn.click, event_fn(do_run, ["folder", "labels_from", "metadata", "subset", "show", *tag_form.names],
                                     progress=True, stop_job="tags"),
             [folder, labels_from, metadata, subset, show, *tag_form.components], [run_out, gallery, ids_state],
             "tags_run")
    show_btn.click(event_fn(do_show, ["folder", "show"]), [folder, show], [gallery, ids_state], api_name="tags_show")
    gallery.select(on_select, [folder, ids_state], [image_id, tags_box], api_name="tags_pick",
                   api_visibility="private")
    save_tags.click(event_fn(do_edit, ["folder", "image_id", "tags"]), [folder, image_id, tags_box],
                    [tags_box, edit_out], api_name="tags_edit")
    star.click(event_fn(toggle("favorite"), ["folder", "image_id", "show"]), [folder, image_id, show],
               [edit_out, gallery, ids_state], api_name="tags_star")
    reject.click(event_fn(toggle("reject"), ["folder", "image_id", "show"]), [folder, image_id, show],
                 [edit_out, gallery, ids_state], api_name="tags_reject")
    cap_btn.click(event_fn(do_caption, ["folder", "image_id", *cap_form.names]),
                  [folder, image_id, *cap_form.components], caption, api_name="tags_caption_preview")
    long_job(export_btn.click, event_fn(do_export, ["folder", "out_name", *cap_form.names, *exp_form.names],
                                        progress=True, stop_job="tags"),
             [folder, out_name, *cap_form.components, *exp_form.components], export_out, "tags_export")
