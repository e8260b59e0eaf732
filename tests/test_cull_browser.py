"""The culling page in a real headless Chromium (Debian's package driven by Playwright) against the
real app: keyboard flags and stars, filters with counts, bursts, map selection, bulk tags and undo
on a generated collection outside the work folder; the curation state is read back from disk after
each action; another program saving at the same time loses nothing; broken and deleted images."""
from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

from _gradio_harness import get_server
from cull_fixtures import make_collection

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    """A collection outside the work folder: 36 frames in 12 bursts, the last one broken."""
    facts = make_collection(tmp_path_factory.mktemp("photos") / "cam", n=36)
    return facts


def state(facts) -> dict:
    """The curation state on disk, where the app keeps it for this outside folder."""
    from trailcam_core.tags.curation import Project, state_folder

    return Project.open(state_folder(facts["json"], get_server()["workdir"])).images


def open_page(browser, facts, **params):
    s = get_server()
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    q = "&".join(f"{k}={quote(str(v))}" for k, v in {"source": facts["json"], "features": "pyramid", **params}.items())
    page.goto(f"{s['url']}cull/?{q}", wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_function("window.cull.ready && window.cull.firstPaint !== null", timeout=60_000)
    page.errors = errors
    return page


def press(page, key: str, what: str = "lastAction") -> dict:
    before = page.evaluate(f"window.cull.{what} ? window.cull.{what}.start || window.cull.{what} : 0")
    page.keyboard.press(key)
    page.wait_for_function(f"window.cull.{what} && (window.cull.{what}.start || window.cull.{what}) > {before}",
                           timeout=30_000)
    return page.evaluate(f"window.cull.{what}")


def current(page) -> dict:
    return page.evaluate("(() => { const S = window.cull.S; const p = S.pages.get(Math.floor(S.cur / 200));"
                         " const k = S.cur - p.offset; return {i: S.cur, id: p.ids[k], row: p.rows[k]}; })()")


def count_text(page) -> str:
    return page.locator("#count").inner_text()


def test_keyboard_flags_stars_undo_saved_on_disk(browser, coll):
    page = open_page(browser, coll)
    assert count_text(page).startswith("36 of 36 images")
    order = []
    a = current(page)
    order.append(a["id"])
    act = press(page, "p")
    assert act["to"] == act["from"] + 1                       # moved on to the next image
    assert state(coll)[a["id"]]["favorite"] is True
    # the sidebar's counts follow the action, the grid stays
    page.wait_for_function("window.cull.countsAt > 0", timeout=10_000)
    assert page.locator("#f-flag label", has_text="favourites").locator(".n").inner_text() == "1"
    b = current(page)
    press(page, "x")
    assert state(coll)[b["id"]]["reject"] is True and state(coll)[b["id"]]["favorite"] is False
    c = current(page)
    press(page, "4")
    assert state(coll)[c["id"]]["stars"] == 4
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert current(page)["id"] == b["id"]
    press(page, "u")
    assert state(coll)[b["id"]]["reject"] is False
    press(page, "z", "lastUndo")                              # undo the unflag: rejected again
    assert state(coll)[b["id"]]["reject"] is True
    press(page, "z", "lastUndo")                              # undo the stars
    assert state(coll)[c["id"]].get("stars", 0) == 0
    # N: next unflagged skips the favourite and the reject
    page.keyboard.press("Home")
    page.evaluate("window.cull.S.cur = 0")
    page.keyboard.press("n")
    page.wait_for_function("window.cull.S.cur === 2")
    # rejected tiles are dimmed, favourites marked
    assert page.locator(f".tile.rej[data-row='{b['row']}']").count() == 1
    assert page.locator(f".tile.fav[data-row='{a['row']}']").count() == 1
    # loupe: Space opens it with the image's details; P in the loupe moves to the next image
    page.keyboard.press("Space")
    page.locator("#loupe-info >> text=captured").wait_for(timeout=10_000)
    assert "2012-03-17" in page.locator("#loupe-info").inner_text()
    d = current(page)
    act = press(page, "p")
    assert state(coll)[d["id"]]["favorite"] is True and act["to"] == act["from"] + 1 and act["end"] >= act["saved"]
    page.keyboard.press("Escape")
    assert not page.errors, page.errors
    page.close()


def test_filters_with_counts_and_sorting(browser, coll):
    page = open_page(browser, coll)
    species = coll["species"]
    n_coyote = sum(1 for v in species.values() if v == "coyote")
    label = page.locator("#f-species label", has_text="coyote")
    assert label.locator(".n").inner_text() == str(n_coyote)
    before = page.evaluate("window.cull.lastQuery.start")
    label.locator("input").check()
    page.wait_for_function(f"window.cull.lastQuery.start > {before}")
    assert count_text(page).startswith(f"{n_coyote} of 36 images")
    ids = page.evaluate("window.cull.S.pages.get(0).ids")
    assert ids and all(species[i] == "coyote" for i in ids)
    # combined with a location: counts of the other facet follow the first
    n_both = sum(1 for i, v in species.items() if v == "coyote" and coll["location"][i] == "10")
    loc = page.locator("#f-location label", has_text="10")
    assert loc.locator(".n").inner_text() == str(n_both)
    before = page.evaluate("window.cull.lastQuery.start")
    loc.locator("input").check()
    page.wait_for_function(f"window.cull.lastQuery.start > {before}")
    assert count_text(page).startswith(f"{n_both} of 36 images")
    # clear, then sort newest first
    before = page.evaluate("window.cull.lastQuery.start")
    page.locator("#clear").click()
    page.wait_for_function(f"window.cull.lastQuery.start > {before}")
    before = page.evaluate("window.cull.lastQuery.start")
    page.locator("#sort").select_option("-time")
    page.wait_for_function(f"window.cull.lastQuery.start > {before}")
    assert page.evaluate("window.cull.S.pages.get(0).ids[0]") in coll["ids"][-3:]
    # S on the broken frame says why it cannot; on the next one it puts that image first
    page.keyboard.press("s")
    page.locator("#status >> text=has no features").wait_for(timeout=30_000)
    page.keyboard.press("ArrowRight")
    first = current(page)
    before = page.evaluate("window.cull.lastQuery.start")
    page.keyboard.press("s")
    page.wait_for_function(f"window.cull.lastQuery.start > {before}", timeout=60_000)
    assert page.evaluate("window.cull.S.pages.get(0).ids[0]") == first["id"]
    assert not page.errors, page.errors
    page.close()


def test_bursts_stack_and_best_of_burst(browser, coll):
    page = open_page(browser, coll)
    before = page.evaluate("window.cull.lastQuery.start")
    page.locator("#stack").check()
    page.wait_for_function(f"window.cull.lastQuery.start > {before}")
    assert "(12 tiles)" in count_text(page)
    assert page.locator(".tile .burst", has_text="×3").count() >= 6
    # expand one burst: its three frames show
    before = page.evaluate("window.cull.lastQuery.start")
    page.locator(".tile .burst").nth(3).click()
    page.wait_for_function(f"window.cull.lastQuery.start > {before}")
    assert "(14 tiles)" in count_text(page)
    # B on the fifth burst: one favourite, the other frames rejected
    page.evaluate("window.cull.S.cur = 0")
    target = [i for i in coll["ids"] if coll["burst"][i] == "seq005"]
    row = page.evaluate(f"window.cull.S.pages.get(0).ids.indexOf('{target[0]}')")
    page.evaluate(f"window.cull.S.cur = {row}")
    page.keyboard.press("b")
    page.locator("#status >> text=best of the burst").wait_for(timeout=30_000)
    st = state(coll)
    favs = [i for i in target if st[i]["favorite"]]
    rejs = [i for i in target if st[i]["reject"]]
    assert len(favs) == 1 and len(rejs) == 2
    page.keyboard.press("z")
    page.locator("#status >> text=undid best-of-burst").wait_for(timeout=30_000)
    st = state(coll)
    assert not any(st[i]["reject"] for i in target)
    page.close()


def test_map_drag_selects_and_favourites_in_bulk(browser, coll):
    page = open_page(browser, coll)
    page.keyboard.press("m")
    page.wait_for_function("window.cull.mapReady", timeout=120_000)
    cells = page.evaluate("window.cull.S && Array.from(document.querySelectorAll('#mapgrid img')).length")
    assert cells == 35                                       # the broken frame has no features
    grid = page.locator("#mapgrid").bounding_box()
    size = page.evaluate("parseInt(document.querySelector('#mapgrid img').style.width)")
    x0, y0 = grid["x"] + 2, grid["y"] + 2
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 2 * size + size // 2, y0 + size // 2, steps=5)
    page.mouse.up()
    sel = page.evaluate("Array.from(window.cull.S.sel)")
    assert len(sel) == 3
    ids = page.evaluate(f"(() => {{ const S = window.cull.S; const out = []; for (const p of S.pages.values())"
                        f" p.rows.forEach((r, k) => {{ if ({json.dumps(sel)}.includes(r)) out.push(p.ids[k]); }});"
                        f" return out; }})()")
    assert len(ids) == 3
    page.locator("#map [data-bulk=reject]").click()
    page.locator("#status >> text=reject: 3 images saved").wait_for(timeout=30_000)
    st = state(coll)
    assert all(st[i]["reject"] for i in ids)
    # a click (no drag) on a tile opens the loupe on that image
    page.mouse.click(x0 + size // 2, y0 + size // 2)
    page.locator("#loupe-info >> text=captured").wait_for(timeout=10_000)
    page.keyboard.press("Escape")
    # bulk tag on the selection from the bar
    page.locator("#tagkey").fill("mood")
    page.locator("#tagval").fill("eerie")
    page.locator("#tagbtn").click()
    page.locator("#status >> text=tag: 3 images saved").wait_for(timeout=30_000)
    st = state(coll)
    assert all(st[i]["tags"]["mood"] == {"value": "eerie", "source": "hand"} for i in ids)
    page.locator("#undo").click()
    page.locator("#status >> text=undid tag").wait_for(timeout=30_000)
    assert all("mood" not in state(coll)[i]["tags"] for i in ids)
    page.close()


def test_two_faces_at_once_lose_nothing(browser, coll):
    """The page flags frames while another program (the CLI, the Tags tab) saves tags into the same state."""
    from trailcam_core.tags.curation import Project, state_folder

    page = open_page(browser, coll)
    page.evaluate("window.cull.S.cur = 0")
    root = state_folder(coll["json"], get_server()["workdir"])
    ids = coll["ids"]
    stop = threading.Event()
    written = []

    def other_face():
        k = 0
        while not stop.is_set() and k < 60:
            p = Project.open(root)
            iid = ids[k % len(ids)]
            p.images.setdefault(iid, {"file": "", "favorite": False, "reject": False, "tags": {}})
            p.set_tag(iid, "note", f"n{k}")
            p.save()
            written.append((iid, f"n{k}"))
            k += 1

    t = threading.Thread(target=other_face)
    t.start()
    flagged = []
    for _ in range(12):
        flagged.append(current(page)["id"])
        press(page, "3")
    stop.set()
    t.join()
    st = state(coll)
    assert all(st[i]["stars"] == 3 for i in flagged)
    last = {}
    for iid, v in written:
        last[iid] = v
    assert all(st[i]["tags"]["note"]["value"] == v for i, v in last.items())
    page.close()


def test_broken_deleted_images_and_a_damaged_state(browser, coll, tmp_path):
    facts = make_collection(tmp_path / "cam2", n=9, broken=1, seed=3)
    page = open_page(browser, facts)
    # the broken frame: a placeholder tile and its reason listed; the rest works
    page.wait_for_function("window.cull.thumbsDone", timeout=60_000)
    assert "cannot be shown" in page.locator("#thumbs").inner_text()
    assert facts["broken"][0] in page.locator("#problems").inner_text()
    page.locator(".tile.problem").first.wait_for(timeout=10_000)
    # an image deleted while the page is open: the loupe says so, keys still work
    victim = Path(facts["json"]).parent / f"{facts['ids'][1]}.jpg"
    victim.unlink()
    page.evaluate("window.cull.S.cur = 1")
    page.keyboard.press("Space")
    page.locator("#loupe-problem >> text=file not found").wait_for(timeout=10_000)
    press(page, "x")
    assert state(facts)[facts["ids"][1]]["reject"] is True
    page.close()
    # a state file damaged on disk: the last good copy is used and the page says so
    from trailcam_core.tags.curation import STATE_NAME, state_folder

    path = state_folder(facts["json"], get_server()["workdir"]) / STATE_NAME
    page = open_page(browser, facts)
    press(page, "p")                           # a second save, so a good .bak copy exists
    page.close()
    path.write_text('{"format": "trailcam-curation", "images": {"x": ')
    get_server()["demo"].app.state.trailcam_cull.sessions.clear()       # as after a restart
    page = open_page(browser, facts)
    page.locator("#warnings >> text=last good copy").wait_for(timeout=10_000)
    assert state(facts)[facts["ids"][1]]["reject"] is True
    page.close()
