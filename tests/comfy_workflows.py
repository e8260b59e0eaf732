"""The shareable workflows: one spec, written as UI-format and API-format JSON, and checked against /object_info.

    python tests/comfy_workflows.py      # starts a real ComfyUI, rewrites workflows/*.json and workflows/api/*.json

The checkers (``check_ui``, ``check_api``, ``ui_to_api``) read the JSON files on their own: node
types, links (ids, slots, types on both ends) and widget values (count, type, range, combo
options) against what a running server reports for each node, as the frontend would load them.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
# Combos listing the user's own files: a workflow may name a file this server does not have.
FILE_COMBOS = {("CheckpointLoaderSimple", "ckpt_name"), ("LoraLoader", "lora_name"), ("TrainLoRA", "base_model"),
               ("LoadTrailcamSubset", "source"), ("LoadTrailcamSubset", "detections")}
FRONTEND_ONLY = {"Note", "MarkdownNote"}

SAMPLE = "trailcam_sample/sample_cct.json"
SDXL = "sd_xl_base_1.0.safetensors"
GEN_PROMPT = "trlcm, trailcam photo, coyote, infrared night"   # the captions' words
NEGATIVE = "blurry, cartoon, text, watermark"


def _gen_nodes(batch: int, prefix: str) -> list[tuple]:
    return [
        (1, "CheckpointLoaderSimple", {"ckpt_name": SDXL}, {}),
        (2, "LoraLoader", {"lora_name": "trailcam_lora.safetensors", "strength_model": 0.8, "strength_clip": 0.8},
         {"model": (1, 0), "clip": (1, 1)}),
        (3, "CLIPTextEncode", {"text": GEN_PROMPT}, {"clip": (2, 1)}),
        (4, "CLIPTextEncode", {"text": NEGATIVE}, {"clip": (2, 1)}),
        (5, "EmptyLatentImage", {"width": 1024, "height": 1024, "batch_size": batch}, {}),
        (6, "KSampler", {"seed": 42, "steps": 30, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal",
                         "denoise": 1.0},
         {"model": (2, 0), "positive": (3, 0), "negative": (4, 0), "latent_image": (5, 0)}),
        (7, "VAEDecode", {}, {"samples": (6, 0), "vae": (1, 2)}),
        (8, "SaveImage", {"filename_prefix": prefix}, {"images": (7, 0)}),
    ]


# The template browser shows each file's name as its title: numbered (so "Alphabetical" keeps the
# order of the tutorial) and readable, with a picture of the same name beside it (thumbnails.py).
WF_SUBSET = "1. Subset, crop and caption a dataset"
WF_MOSAIC = "2. Similarity mosaic"
WF_TRAIN = "3. Train a LoRA"
WF_GENERATE = "4. Generate with model and CLIP strength"
WF_GENERATIONS_MOSAIC = "5. Mosaic of generations"

# name -> nodes: (id, type, widget values (others: the node's defaults), links {input: (node id, output slot)})
SPEC: dict[str, list[tuple]] = {
    WF_SUBSET: [
        (1, "LoadTrailcamSubset", {"source": SAMPLE, "empty": "exclude", "max_total": 24}, {}),
        (2, "CropSquare", {"mode": "bbox", "size": 512}, {"subset": (1, 1)}),
        (3, "PreviewImage", {}, {"images": (2, 0)}),
        (4, "AutoTagCaptions", {"trigger": "trlcm"}, {"subset": (2, 1)}),
        (5, "SaveCaptionedDataset", {"folder": "trailcam/dataset"}, {"subset": (4, 0)}),
        (6, "DistributionChart", {"chart": "categories"}, {"subset": (1, 1)}),
        (7, "PreviewImage", {}, {"images": (6, 0)}),
    ],
    WF_MOSAIC: [
        (1, "LoadTrailcamSubset", {"source": SAMPLE, "max_total": 0}, {}),
        (2, "EmbedImages", {}, {"subset": (1, 1)}),
        (3, "MosaicLayout", {"folder": "trailcam/mosaic", "tile": 96}, {"embeddings": (2, 0)}),
        (4, "PreviewImage", {}, {"images": (3, 0)}),
    ],
    WF_TRAIN: [
        (1, "LoadTrailcamSubset", {"source": SAMPLE, "empty": "exclude", "sequence": "first", "max_total": 40}, {}),
        (2, "CropSquare", {"mode": "bbox", "size": 1024}, {"subset": (1, 1)}),
        (3, "AutoTagCaptions", {"trigger": "trlcm"}, {"subset": (2, 1)}),
        (4, "SaveCaptionedDataset", {"folder": "trailcam/lora_dataset"}, {"subset": (3, 0)}),
        (7, "TrainLoRAOptions", {"trigger_word": "trlcm"}, {}),
        (5, "TrainLoRA", {"base_model": SDXL, "output_name": "trailcam_lora", "dataset": "trailcam/lora_dataset"},
         {"dataset": (4, 0), "options": (7, 0)}),
        (6, "PreviewImage", {}, {"images": (5, 1)}),
    ],
    WF_GENERATE: _gen_nodes(1, "trailcam/generations/trlcm"),
    WF_GENERATIONS_MOSAIC: _gen_nodes(16, "trailcam/generations/batch") + [
        (9, "EmbedImages", {}, {"images": (7, 0)}),
        (10, "MosaicLayout", {"folder": "trailcam/generations_mosaic", "tile": 128}, {"embeddings": (9, 0)}),
        (11, "PreviewImage", {}, {"images": (10, 0)}),
    ],
}

# ----------------------------------------------------------------------------- node definitions


def _all_inputs(defn: dict) -> list[tuple[str, list, bool]]:
    """(name, spec, required) in the node's input order."""
    out = []
    order = defn.get("input_order", {})
    for group in ("required", "optional"):
        specs = defn["input"].get(group, {})
        for name in order.get(group, list(specs)):
            out.append((name, specs[name], group == "required"))
    return out


def input_kind(spec: list) -> str:
    return "COMBO" if isinstance(spec[0], list) else spec[0]


def is_widget(spec: list) -> bool:
    conf = spec[1] if len(spec) > 1 else {}
    return input_kind(spec) in WIDGET_TYPES and not conf.get("forceInput")


def has_control(name: str, spec: list) -> bool:
    conf = spec[1] if len(spec) > 1 else {}
    if input_kind(spec) not in ("INT", "COMBO"):
        return False
    flag = conf.get("control_after_generate")
    return bool(flag) if flag is not None else (input_kind(spec) == "INT" and name in ("seed", "noise_seed"))


def combo_options(spec: list) -> list:
    return spec[0] if isinstance(spec[0], list) else spec[1].get("options", [])


def check_value(node_type: str, name: str, spec: list, value: Any) -> Optional[str]:
    """Why ``value`` is not acceptable for this widget (None when it is)."""
    kind, conf = input_kind(spec), (spec[1] if len(spec) > 1 else {})
    if kind == "COMBO":
        if (node_type, name) in FILE_COMBOS:
            return None if isinstance(value, str) and value else f"{name}: {value!r} is not a file name"
        return None if value in combo_options(spec) else f"{name}: {value!r} not among {combo_options(spec)}"
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"{name}: {value!r} is not a boolean"
    if kind == "STRING":
        return None if isinstance(value, str) else f"{name}: {value!r} is not a string"
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "INT" and not isinstance(value, int)):
            return f"{name}: {value!r} is not {kind}"
        if "min" in conf and value < conf["min"] or "max" in conf and value > conf["max"]:
            return f"{name}: {value} outside {conf.get('min')}..{conf.get('max')}"
    return None


def types_match(out_type: str, in_type: str) -> bool:
    return out_type == in_type or "*" in (out_type, in_type)

# ----------------------------------------------------------------------------- building


def build(name: str, info: dict, spec: Optional[list] = None) -> tuple[dict, dict]:
    """The UI-format and API-format workflow of ``SPEC[name]`` or ``spec`` (widget defaults from ``info``)."""
    spec = SPEC[name] if spec is None else spec
    nodes, links, api = [], [], {}
    by_id = {n[0]: n for n in spec}
    link_id = 0
    outgoing: dict[tuple[int, int], list[int]] = {}
    incoming: dict[tuple[int, str], int] = {}
    for nid, ntype, _, wired in spec:
        for inp, (src, slot) in wired.items():
            link_id += 1
            src_type = info[by_id[src][1]]["output"][slot]
            links.append([link_id, src, slot, nid, None, src_type])
            outgoing.setdefault((src, slot), []).append(link_id)
            incoming[(nid, inp)] = link_id
    depth: dict[int, int] = {}

    def level(nid: int) -> int:
        if nid not in depth:
            depth[nid] = 1 + max((level(src) for src, _ in by_id[nid][3].values()), default=-1)
        return depth[nid]

    rows: dict[int, int] = {}
    for order, (nid, ntype, values, wired) in enumerate(spec):
        defn = info[ntype]
        col = level(nid)
        row = rows.get(col, 0)
        rows[col] = row + 1
        ui_inputs, widgets_values, api_inputs = [], [], {}
        for inp, spec, required in _all_inputs(defn):
            if is_widget(spec):
                conf = spec[1] if len(spec) > 1 else {}
                default = conf.get("default", combo_options(spec)[0] if input_kind(spec) == "COMBO" and combo_options(spec) else None)
                value = values.get(inp, default)
                widgets_values.append(value)
                if has_control(inp, spec):
                    widgets_values.append("fixed")
                if (nid, inp) in incoming:
                    ui_inputs.append({"name": inp, "type": input_kind(spec), "widget": {"name": inp},
                                      "link": incoming[(nid, inp)]})
                    src, slot = wired[inp]
                    api_inputs[inp] = [str(src), slot]
                else:
                    api_inputs[inp] = value
            else:
                ui_inputs.append({"name": inp, "type": input_kind(spec), "link": incoming.get((nid, inp))})
                if (nid, inp) in incoming:
                    src, slot = wired[inp]
                    api_inputs[inp] = [str(src), slot]
        for link in links:
            if link[3] == nid and link[4] is None:
                inp_name = next(k for k, v in incoming.items() if v == link[0])[1]
                link[4] = next(i for i, e in enumerate(ui_inputs) if e["name"] == inp_name)
        ui_outputs = [{"name": oname, "type": otype, "links": outgoing.get((nid, slot), []), "slot_index": slot}
                      for slot, (otype, oname) in enumerate(zip(defn["output"], defn["output_name"]))]
        nodes.append({"id": nid, "type": ntype, "pos": [40 + 380 * col, 40 + 360 * row], "size": [340, 300],
                      "flags": {}, "order": order, "mode": 0, "inputs": ui_inputs, "outputs": ui_outputs,
                      "properties": {"Node name for S&R": ntype}, "widgets_values": widgets_values})
        api[str(nid)] = {"class_type": ntype, "inputs": api_inputs, "_meta": {"title": defn["display_name"]}}
    ui = {"last_node_id": max(by_id), "last_link_id": link_id, "nodes": nodes, "links": links, "groups": [],
          "config": {}, "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}}, "version": 0.4}
    return ui, api

# ----------------------------------------------------------------------------- checking


def check_ui(wf: dict, info: dict) -> list[str]:
    """Problems of a UI-format workflow against the server's node definitions (empty when none)."""
    errors = []
    nodes = {n["id"]: n for n in wf["nodes"]}
    for link in wf["links"]:
        lid, src, sslot, dst, dslot, ltype = link
        if src not in nodes or dst not in nodes:
            errors.append(f"link {lid}: node {src} or {dst} missing")
            continue
        s, d = nodes[src], nodes[dst]
        if sslot >= len(s["outputs"]) or lid not in s["outputs"][sslot]["links"]:
            errors.append(f"link {lid}: not listed on output {sslot} of node {src}")
        if dslot >= len(d["inputs"]) or d["inputs"][dslot].get("link") != lid:
            errors.append(f"link {lid}: not the link of input {dslot} of node {dst}")
        if s["type"] in info and sslot < len(info[s["type"]]["output"]):
            if info[s["type"]]["output"][sslot] != ltype:
                errors.append(f"link {lid}: type {ltype} but {s['type']} output {sslot} is {info[s['type']]['output'][sslot]}")
    link_ids = {l[0] for l in wf["links"]}
    for n in wf["nodes"]:
        ntype = n["type"]
        if ntype in FRONTEND_ONLY:
            continue
        if ntype not in info:
            errors.append(f"node {n['id']}: unknown type {ntype}")
            continue
        defn = info[ntype]
        specs = {name: spec for name, spec, _ in _all_inputs(defn)}
        for slot, out in enumerate(n["outputs"]):
            if slot >= len(defn["output"]) or out["type"] != defn["output"][slot]:
                errors.append(f"node {n['id']} {ntype}: output {slot} type {out['type']} is not {defn['output'][slot:slot + 1]}")
            for lid in out.get("links") or []:
                if lid not in link_ids:
                    errors.append(f"node {n['id']}: output {slot} lists missing link {lid}")
        wired = {}
        for e in n["inputs"]:
            if e["name"] not in specs:
                errors.append(f"node {n['id']} {ntype}: no input named {e['name']}")
                continue
            if e.get("link") is not None:
                link = next((l for l in wf["links"] if l[0] == e["link"]), None)
                if link is None:
                    errors.append(f"node {n['id']}: input {e['name']} has missing link {e['link']}")
                elif not types_match(link[5], input_kind(specs[e["name"]])):
                    errors.append(f"node {n['id']} {ntype}: {e['name']} takes {input_kind(specs[e['name']])}, "
                                  f"linked to {link[5]}")
                wired[e["name"]] = e["link"]
        for name, spec, required in _all_inputs(defn):
            if required and not is_widget(spec) and wired.get(name) is None:
                errors.append(f"node {n['id']} {ntype}: required input {name} is not connected")
        values = list(n.get("widgets_values") or [])
        expected = [(name, spec) for name, spec, _ in _all_inputs(defn) if is_widget(spec)]
        count = sum(2 if has_control(name, spec) else 1 for name, spec in expected)
        if len(values) != count:
            errors.append(f"node {n['id']} {ntype}: {len(values)} widget values, the node has {count}")
            continue
        it = iter(values)
        for name, spec in expected:
            why = check_value(ntype, name, spec, next(it))
            if why:
                errors.append(f"node {n['id']} {ntype}: {why}")
            if has_control(name, spec) and next(it) not in CONTROL_VALUES:
                errors.append(f"node {n['id']} {ntype}: bad control value after {name}")
    return errors


def ui_to_api(wf: dict, info: dict) -> dict:
    """What the frontend queues for a UI-format workflow (widget values by name, links as [id, slot])."""
    links = {l[0]: l for l in wf["links"]}
    api = {}
    for n in wf["nodes"]:
        if n["type"] in FRONTEND_ONLY or n.get("mode", 0) != 0:
            continue
        defn = info[n["type"]]
        inputs: dict[str, Any] = {}
        it = iter(n.get("widgets_values") or [])
        for name, spec, _ in _all_inputs(defn):
            if is_widget(spec):
                inputs[name] = next(it)
                if has_control(name, spec):
                    next(it)
        for e in n["inputs"]:
            if e.get("link") is not None:
                l = links[e["link"]]
                inputs[e["name"]] = [str(l[1]), l[2]]
        api[str(n["id"])] = {"class_type": n["type"], "inputs": inputs}
    return api


def check_api(api: dict, info: dict) -> list[str]:
    """Problems of an API-format graph (what POST /prompt takes) against the node definitions."""
    errors = []
    for nid, node in api.items():
        ntype = node.get("class_type")
        if ntype not in info:
            errors.append(f"node {nid}: unknown class_type {ntype}")
            continue
        specs = {name: (spec, req) for name, spec, req in _all_inputs(info[ntype])}
        for name in node["inputs"]:
            if name not in specs:
                errors.append(f"node {nid} {ntype}: no input named {name}")
        for name, (spec, required) in specs.items():
            if name not in node["inputs"]:
                if required:
                    errors.append(f"node {nid} {ntype}: required input {name} missing")
                continue
            value = node["inputs"][name]
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                src, slot = value
                if src not in api:
                    errors.append(f"node {nid} {ntype}: {name} links to missing node {src}")
                    continue
                outs = info.get(api[src]["class_type"], {}).get("output", [])
                if slot >= len(outs):
                    errors.append(f"node {nid} {ntype}: {name} links to missing output {slot} of node {src}")
                elif not types_match(outs[slot], input_kind(spec)):
                    errors.append(f"node {nid} {ntype}: {name} takes {input_kind(spec)}, linked to {outs[slot]}")
            elif not is_widget(spec):
                errors.append(f"node {nid} {ntype}: {name} must be linked, got {value!r}")
            else:
                why = check_value(ntype, name, spec, value)
                if why:
                    errors.append(f"node {nid} {ntype}: {why}")
    return errors


def load(name: str) -> tuple[dict, dict]:
    """The UI-format and API-format files of workflow ``name``."""
    return (json.loads((WORKFLOWS / f"{name}.json").read_text()),
            json.loads((WORKFLOWS / "api" / f"{name}.json").read_text()))


def write_all(info: dict) -> None:
    (WORKFLOWS / "api").mkdir(parents=True, exist_ok=True)
    for name in SPEC:
        ui, api = build(name, info)
        problems = check_ui(ui, info) + check_api(api, info)
        if problems:
            raise SystemExit(f"{name}: " + "; ".join(problems))
        (WORKFLOWS / f"{name}.json").write_text(json.dumps(ui, indent=1) + "\n")
        (WORKFLOWS / "api" / f"{name}.json").write_text(json.dumps(api, indent=1) + "\n")
        print("wrote", name)


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from comfy_harness import prepare_test_inputs, start_comfy
    from trailcam_core.samples.synthetic import ensure_sample

    with tempfile.TemporaryDirectory() as tmp:
        sample = ensure_sample(Path(tmp) / "sample")
        with start_comfy(Path(tmp), prepare=lambda root: prepare_test_inputs(root, sample)) as server:
            write_all(server.object_info())
