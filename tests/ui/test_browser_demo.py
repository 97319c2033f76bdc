"""Issue 15's demo fixes in a real browser: the consultation as a patient meets it (its own
conclusion message, no probability, no delete icons, each tool reason once), a reload that
keeps the consultation, two sessions at once, Simulate's imaging cases and whole transcript,
and errors without the server's paths. Screenshots go to ``artifacts/ui/``."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.ui.test_browser_readable import _BROKEN_CELLS, _LOW_CONTRAST
from tests.ui.test_browser import (  # noqa: F401
    _SETTLED, _bot_count, _bot_texts, _open, _shot, _upload, browser, pytestmark, server,
)

_CHAT_HAS = "(word) => { const c = document.querySelector('#consult-chat'); return !!c && c.innerText.includes(word); }"
_CONCLUDED = "() => document.querySelector('#consult-card .dx-outcome') !== null"

# Visible buttons inside the chat that would delete or clear messages.
_DELETE_BUTTONS = """() => [...document.querySelectorAll('#consult-chat button')]
  .filter(b => b.offsetParent !== null && /delete|clear|remove|trash/i.test(
     (b.getAttribute('aria-label') || '') + ' ' + (b.title || '')))
  .map(b => b.getAttribute('aria-label') || b.title)"""


def _consult_three_turns(page) -> None:
    for text in ("I have had an itchy red rash with silvery scales on my elbows for two weeks",
                 "Yes, it gets worse in winter", "My father had something similar"):
        if page.evaluate(_CONCLUDED):
            break
        before = _bot_count(page)
        page.fill("#consult-input textarea", text)
        page.click("#consult-send")
        page.wait_for_function(_SETTLED, arg=before)
    if not page.evaluate(_CONCLUDED):
        before = _bot_count(page)
        page.click("#consult-finish")
        page.wait_for_function(_SETTLED, arg=before)
    page.wait_for_selector("#consult-card .dx-outcome")


def test_conclusion_is_its_own_message_without_probability_or_delete_icons(server, browser):
    url, _ = server
    context, page = _open(browser, url)
    try:
        _consult_three_turns(page)
        bots = _bot_texts(page)
        conclusion = bots[-1]
        assert conclusion.startswith("My conclusion"), bots
        # the question before it is a bubble of its own, not merged with the conclusion
        assert not bots[-2].startswith("My conclusion") and "My conclusion" not in bots[-2]
        assert conclusion.count("?") == 0, conclusion
        card = page.inner_text("#consult-card")
        for text in (conclusion, card):
            assert not re.search(r"confidence|\d+\s*%", text, re.I), text
        assert "most likely diagnosis" in card.lower()
        page.hover('#consult-chat [data-testid="user"] >> nth=0')
        assert page.evaluate(_DELETE_BUTTONS) == []
        _shot(page, "consult-conclusion")
    finally:
        context.close()


def test_a_reload_keeps_the_consultation(server, browser):
    url, _ = server
    context, page = _open(browser, url)
    try:
        before = _bot_count(page)
        page.fill("#consult-input textarea", "My left knee has been swollen since a football match")
        page.click("#consult-send")
        page.wait_for_function(_SETTLED, arg=before)
        question = _bot_texts(page)[-1]
        page.reload(wait_until="domcontentloaded")
        page.wait_for_function(_CHAT_HAS, arg="knee")
        assert _bot_texts(page)[-1] == question
        assert "restored" in page.inner_text("#consult-msg")
        # and it goes on from there: the next answer joins the same consultation
        before = _bot_count(page)
        page.fill("#consult-input textarea", "It hurts most when I climb stairs")
        page.click("#consult-send")
        page.wait_for_function(_SETTLED, arg=before)
        chat = page.inner_text("#consult-chat")
        assert "knee" in chat and "stairs" in chat
        _shot(page, "consult-after-reload")
        # "New consultation" starts afresh, and a reload then shows the fresh one
        page.click("#consult-new")
        page.wait_for_function("() => { const c = document.querySelector('#consult-chat'); return c && !c.innerText.includes('knee'); }")
        page.reload(wait_until="domcontentloaded")
        page.wait_for_selector("#consult-input textarea")
        page.wait_for_timeout(1500)
        assert "knee" not in page.inner_text("#consult-chat")
    finally:
        context.close()


def test_two_sessions_at_once_keep_their_own_consultation_through_reloads(server, browser):
    url, _ = server
    (ctx_a, a), (ctx_b, b) = _open(browser, url), _open(browser, url)
    try:
        for page, text in ((a, "My left knee has been swollen and painful since a football match"),
                           (b, "I have a blistering rash around my mouth that started three days ago")):
            page.fill("#consult-input textarea", text)
            page.click("#consult-send")  # both in flight together
        for page in (a, b):
            page.wait_for_function(_SETTLED, arg=0)
        for page in (a, b):
            page.reload(wait_until="domcontentloaded")
        a.wait_for_function(_CHAT_HAS, arg="knee")
        b.wait_for_function(_CHAT_HAS, arg="mouth")
        assert "mouth" not in a.inner_text("#consult-chat") and "knee" not in b.inner_text("#consult-chat")
        _shot(a, "two-sessions-a")
        _shot(b, "two-sessions-b")
    finally:
        ctx_a.close()
        ctx_b.close()


def test_consult_with_a_workflow_names_a_missing_vlm_once(server, browser, tmp_path):
    import shutil

    from dxgraph.tools.imaging import resolve_image_path

    url, _ = server
    sample = Path(resolve_image_path("sample:retina"))
    photo = tmp_path / f"eye{sample.suffix}"
    shutil.copyfile(sample, photo)
    context, page = _open(browser, url)
    try:
        _upload(page, "#consult-files", photo, f"#consult-files :text('{photo.name}')")
        page.click("#consult-workflow input")
        page.get_by_role("option", name=re.compile("Glaucomatous optic neuropathy")).click()
        before = _bot_count(page)
        page.fill("#consult-input textarea", "My optician said my optic nerve looks odd; here is the photo")
        page.click("#consult-send")
        page.wait_for_function(_SETTLED, arg=before, timeout=180_000)
        body = page.inner_text("body")
        assert body.count("no VLM configured") == 1, body
        assert "site-packages" not in page.content()
        assert not re.search(r"confidence \d+\s*%", body)
        # the evidence table reads at the card's width: no sideways scroll, whole words, contrast
        table = "#consult-card table.dx-evidence"
        assert page.evaluate(f"() => {{ const s = document.querySelector('{table}').parentElement;"
                             " return s.scrollWidth <= s.clientWidth + 1; }")
        assert page.evaluate(_BROKEN_CELLS, table) == []
        assert page.evaluate(_LOW_CONTRAST, [[f"{table} td", ".dx-sub", ".dx-meta"], 4.5]) == []
        _shot(page, "consult-workflow-vlm-once")
    finally:
        context.close()


def test_simulate_offers_imaging_cases_and_shows_the_whole_transcript(server, browser):
    url, services = server
    context, page = _open(browser, url)
    try:
        page.get_by_role("tab", name="Simulate").click()
        page.click("#sim-case input")
        options = page.locator("[role=option]").all_inner_texts()
        assert any(o.startswith("[imaging]") for o in options), options[-5:]
        page.keyboard.press("Escape")
        page.click("#sim-run")  # the first (text) case, six questions at most
        page.wait_for_selector("#sim-judge .dx-badge", timeout=120_000)
        run_id = re.search(r"saved as run '([^']+)'", page.inner_text("#sim-msg")).group(1)
        [row] = services.store.samples(run_id)
        stored = services.store.turns(run_id, row.key)
        shown = page.locator("#sim-chat .dx-turn")
        assert shown.count() == len(stored) > 4  # every turn, not a scrolled window's last two
        assert shown.first.is_visible() and shown.last.is_visible()
        disclosed = sum(1 for t in stored if t.role == "patient" and t.revealed_json not in ("", "[]"))
        assert page.locator("#sim-chat .dx-disclosed mark").count() == disclosed > 0
        # every unscored rubric row says why
        for tr in page.locator("#sim-judge tbody tr").all():
            cells = tr.locator("td").all_inner_texts()
            if cells[1].strip() == "–":
                assert cells[2].strip(), cells
        # quoted evidence ends at a whole word
        final = page.inner_text("#sim-final")
        patient_words = " ".join(t.text for t in stored if t.role == "patient")
        for quote in re.findall(r"[\"']([^\"']{12,}?)[\"'](?=[;.,\s]|$)", final):
            if not quote.endswith("…"):
                continue
            last_word = quote.rstrip("…").split()[-1]
            assert re.search(rf"\b{re.escape(last_word)}\b", patient_words), quote
        _shot(page, "simulate-whole-transcript")
        # an imaging case: its workflow runs as a tool step
        page.click("#sim-case input")
        page.locator("[role=option]", has_text="[imaging] glaucoma-").first.click()
        page.wait_for_function("() => document.querySelector('#sim-strategy input').value.includes('tools')")
        started = time.perf_counter()
        page.click("#sim-run")
        page.wait_for_function("() => document.querySelector('#sim-chat').textContent.includes('workflow:glaucoma')"
                               " && document.querySelector('#sim-judge .dx-badge') !== null", timeout=180_000)
        print(f"imaging simulation: {time.perf_counter() - started:.1f} s")
        _shot(page, "simulate-imaging")
    finally:
        context.close()


def test_workflow_errors_show_no_install_paths(server, browser):
    url, _ = server
    context, page = _open(browser, url)
    try:
        page.get_by_role("tab", name="Workflow").click()
        page.click("#wf-sample input")
        page.get_by_role("option", name="sample:ct").click()  # a CT slice for the glaucoma workflow
        page.click("#wf-run")
        page.wait_for_selector("#wf-card .dx-outcome, #wf-msg .dx-msg-error", timeout=180_000)
        html = page.content()
        for leak in ("site-packages", "/.venv/", "/usr/lib/python"):
            assert leak not in html, leak
        _shot(page, "workflow-error-no-paths")
    finally:
        context.close()
