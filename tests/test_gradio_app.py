"""The app as a whole: loopback only, narrow file serving, named endpoints, readable errors, CLI flags."""
from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from _gradio_harness import get_client, get_server

pytestmark = pytest.mark.e2e

EXPECTED_ENDPOINTS = {
    "/dataset_load", "/dataset_subset", "/dataset_open_sample", "/dataset_save", "/dataset_sort", "/dataset_fetch",
    "/dataset_stop",
    "/crop_preview", "/crop_run", "/crop_stop",
    "/tags_run", "/tags_stop", "/tags_show", "/tags_edit", "/tags_star", "/tags_reject", "/tags_caption_preview",
    "/tags_export",
    "/mosaic_run", "/mosaic_stop", "/mosaic_pick",
    "/train_run", "/train_stop", "/train_preset",
    "/generate", "/generate_grid", "/generate_stop", "/generate_loras", "/generate_lora_note",
}


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_serves_on_loopback_with_only_the_work_folder_allowed():
    s = get_server()
    assert s["url"].startswith("http://127.0.0.1:")
    demo = s["demo"]
    assert [str(p) for p in demo.allowed_paths] == [str(s["workdir"].resolve())]
    assert not demo.share
    # a file outside the work folder is refused; one inside it is served
    assert _status(s["url"] + "gradio_api/file=/etc/passwd") in (403, 404)
    inside = next((s["workdir"] / "sample").glob("*.jpg"))
    assert _status(s["url"] + f"gradio_api/file={inside}") == 200


def test_every_tab_is_built_and_every_endpoint_is_named():
    s = get_server()
    config = s["demo"].config
    texts = [c.get("props", {}).get("value") for c in config["components"] if c.get("type") == "markdown"]
    assert not [t for t in texts if t and "not available in this installation" in str(t)]
    api = get_client().view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert EXPECTED_ENDPOINTS <= set(api), sorted(EXPECTED_ENDPOINTS - set(api))
    # no endpoint got a name Gradio made up from a function name
    for fn in s["demo"].fns.values():
        if fn.api_visibility == "public":
            assert "/" + fn.api_name in EXPECTED_ENDPOINTS, fn.api_name


def test_core_errors_reach_the_user_as_a_readable_message():
    from gradio_client.exceptions import AppError

    c = get_client()
    with pytest.raises(AppError) as err:
        c.predict(source="/no/such/file.json", image_root="", bboxes="", detections="", threshold=0.2,
                  api_name="/dataset_load")
    msg = str(err.value)
    assert "/no/such/file.json" in msg and "Traceback" not in msg


def test_cli_defaults_are_loopback_no_share_no_auth():
    from trailcam_cli import build_parser
    from trailcam_cli.app import parse_auth
    from trailcam_core.errors import TrailcamError

    args = build_parser().parse_args(["app"])
    assert (args.host, args.port, args.share, args.auth, args.sample) == ("127.0.0.1", 7860, False, None, True)
    args = build_parser().parse_args(["app", "--port", "8123", "--auth", "ann:secret", "--no-sample"])
    assert (args.port, parse_auth(args.auth), args.sample) == (8123, ("ann", "secret"), False)
    with pytest.raises(TrailcamError):
        parse_auth("no-colon")
