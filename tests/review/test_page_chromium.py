"""The review page in a real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter

import pytest

from weaklabel.review.store import DECISIONS_DB

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed; install it with `apt-get update && apt-get "
                "install -y chromium` (the Makefile's test set-up does this)")


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=ARGS, headless=True)
        yield b
        b.close()


def states(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.get_attribute("data-state") or "" for c in page.query_selector_all(".card")]


def settle(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector("body[data-ready='1'][data-pending='0']")
    page.wait_for_selector("#status:not(.bad)")


@pytest.mark.slow
def test_flag_relabel_accept_reload(served, browser) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(served.links["ana"])
    settle(page)
    cards = page.query_selector_all(".card")
    assert 40 <= len(cards) <= 60 or len(cards) == 31  # one label's page (lips has 31 items)
    assert "입술 화장" in page.inner_text("#tabs")  # display names from the label map
    assert page.inner_text(".tab.on .prog") == "0/31"
    page.click(".card >> nth=0")                      # flag by click
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("x")                          # flag by key
    page.keyboard.press("ArrowRight")
    page.keyboard.press("2")                          # relabel to the 2nd label (nails)
    settle(page)
    assert states(page)[:4] == ["reject", "", "reject", "relabel"]
    assert "네일" in page.inner_text(".card >> nth=3")
    assert page.inner_text(".tab.on .prog") == "3/31"
    page.reload()
    settle(page)
    assert states(page)[:4] == ["reject", "", "reject", "relabel"]  # kept and resumed
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("x")                          # a second x takes the flag back
    settle(page)
    assert states(page)[:4] == ["reject", "", "", "relabel"]
    page.keyboard.press("u")                          # undo takes back the last decision
    settle(page)
    assert states(page)[:4] == ["reject", "", "", ""]
    assert page.inner_text(".tab.on .prog") == "1/31"
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("x")
    page.keyboard.press("ArrowRight")
    page.select_option("#picker", "nails")            # relabel with the picker
    settle(page)
    assert states(page)[:4] == ["reject", "", "reject", "relabel"]
    page.keyboard.press("Enter")                      # accept the rest of the page
    page.wait_for_selector("#done:not([hidden])")
    settle(page)
    assert page.inner_text(".tab.on .prog") == "31/31"
    page.reload()
    settle(page)
    assert page.inner_text(".tab.on .prog") == "31/31"  # still done after a reload
    db = sqlite3.connect(f"file:{served.ws / DECISIONS_DB}?mode=ro", uri=True)
    rows = db.execute("SELECT reviewer, action, label FROM decisions").fetchall()
    assert Counter(a for _, a, _ in rows) == {"reject": 3, "relabel": 2, "undo": 2,
                                              "accept": 28}
    assert ("ana", "relabel", "nails") in rows and {r for r, _, _ in rows} == {"ana"}
    # the second reviewer's link opens a session of its own: lips is done (one reviewer
    # per item by default), so ben starts on nails, with none of ana's decisions
    other = browser.new_page()
    other.goto(served.links["ben"])
    settle(other)
    assert other.inner_text(".tab.on").startswith("네일")
    assert set(states(other)) == {""} and other.inner_text(".tab.on .prog") == "0/32"
    other.keyboard.press("[")
    other.wait_for_selector("#done:not([hidden])")
    assert other.inner_text(".tab.on .prog") == "31/31"
    wrong = browser.new_page()
    resp = wrong.goto(served.links["ana"].replace("/r/", "/r/nope"))
    assert resp is not None and resp.status == 403
    assert errors == []


@pytest.mark.slow
def test_text_posts_show_their_caption(served, browser) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(served.links["ana"] + "#nails")
    settle(page)
    assert page.inner_text(".tab.on").startswith("네일")
    texts = [t.inner_text() for t in page.query_selector_all(".card .text")]
    assert "네일 글만" in texts and "애매한 글" in texts
    # lazy thumbnails load after the grid is drawn: wait for the first five (a slow machine
    # may take seconds), then check each one really decoded
    page.wait_for_function("() => { const i = [...document.querySelectorAll('.card img')]"
                           ".slice(0, 5); return i.length > 0 && i.every(e => e.complete); }",
                           timeout=30_000)
    imgs = page.query_selector_all(".card img")
    assert imgs and all(i.evaluate("e => e.naturalWidth") > 0 for i in imgs[:5])
