"""The app writes curation state only below its work folder (Tags tab and culling page alike), and
the culling page's HTTP routes serve nothing but the open collection's images."""
from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request

import pytest

from _gradio_harness import get_client, get_server
from cull_fixtures import make_collection

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_tags_tab_keeps_the_state_of_an_outside_folder_below_the_work_folder(tmp_path):
    """Auto-tag with the Images box set to a folder outside the work folder (as /etc once was)."""
    from trailcam_core.tags.curation import STATE_NAME, Project, state_folder

    s, c = get_server(), get_client()
    photos = tmp_path / "photos"
    photos.mkdir()
    for src in sorted((s["workdir"] / "sample").glob("*.jpg"))[:3]:
        shutil.copy(src, photos / src.name)
    before = sorted(p.name for p in photos.iterdir())
    report, _gallery = c.predict(folder=str(photos), labels_from="No labels", metadata="", artifact_threshold=0.5,
                                 min_label_score=0.2, api_name="/tags_run")
    assert "3 done" in report
    assert sorted(p.name for p in photos.iterdir()) == before          # nothing written beside the photos
    assert not (photos / STATE_NAME).exists()
    root = state_folder(photos, s["workdir"])
    assert root.is_relative_to(s["workdir"]) and (root / STATE_NAME).is_file()
    first = sorted(Project.open(root).ids())[0]
    msg, _gallery = c.predict(folder=str(photos), image_id=first, show="all", api_name="/tags_star")
    assert "Favorite on" in msg and Project.open(root).images[first]["favorite"] is True
    assert sorted(p.name for p in photos.iterdir()) == before


def _req(url: str, data=None):
    r = urllib.request.Request(url, data=None if data is None else json.dumps(data).encode(),
                               headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_cull_routes_serve_only_the_open_collection(tmp_path):
    s = get_server()
    base = s["url"] + "cull/"
    facts = make_collection(tmp_path / "cam", n=6)
    code, _, body = _req(base + "api/open", {"source": str(facts["json"]), "features": "pyramid"})
    assert code == 200
    key = json.loads(body)["key"]
    code, headers, body = _req(base + f"api/thumb/{key}/0")
    assert code == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    code, headers, body = _req(base + f"api/thumb/{key}/5")           # the broken frame: a placeholder tile
    assert code == 200 and headers["Content-Type"].startswith("image/svg") and "X-Trailcam-Problem" in headers
    for path in (f"api/thumb/{key}/999", f"api/image/{key}/-1", "api/thumb/000000000000/0"):
        code, _, body = _req(base + path)
        assert code == 400 and json.loads(body)["error"], path
    for path in ("static/..%2F..%2Fapp.py", "static/app.py", "static/%2Fetc%2Fpasswd"):
        code, _, _ = _req(base + path)
        assert code == 404, path
    code, _, body = _req(base + "api/open", {"source": str(tmp_path / "nowhere")})
    assert code == 400 and "not found" in json.loads(body)["error"]
    code, _, body = _req(base + "api/act", {"key": key, "rows": [0], "action": "stars", "value": "many"})
    assert code == 400 and "0 to 5" in json.loads(body)["error"]
    code, _, body = _req(base + "api/query", {"key": key, "view": "v", "query": {"flag": "sometimes"}})
    assert code == 400 and "unknown flag" in json.loads(body)["error"]
    assert sorted(p.name for p in (tmp_path / "cam").iterdir()) == sorted([f"{i}.jpg" for i in facts["ids"]] + ["cct.json"])


def test_the_apps_login_guards_the_culling_page(tmp_path):
    """With --auth, the culling page and its API answer 401 until the user logged in to the app."""
    import http.cookiejar
    import urllib.parse

    from _gradio_harness import free_port
    from gradio_app.app import build_app, launch

    demo = build_app(sample=False, workdir=tmp_path / "work")
    _, url, _ = launch(port=free_port(), demo=demo, auth=("ann", "secret"), prevent_thread_lock=True, quiet=True)
    try:
        url = url.rstrip("/") + "/"
        assert _req(url + "cull/")[0] == 401
        assert _req(url + "cull/api/open", {"source": str(tmp_path)})[0] == 401
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = urllib.parse.urlencode({"username": "ann", "password": "secret"}).encode()
        opener.open(urllib.request.Request(url + "login", data=form))
        with opener.open(url + "cull/") as resp:
            assert resp.status == 200 and b"cull.js" in resp.read()
    finally:
        demo.close()
