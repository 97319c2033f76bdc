"""The demo in a real browser: Playwright driving Debian's Chromium against the app on 127.0.0.1.

Screenshots of every tab are written to ``artifacts/ui/`` at the repo root (git-ignored).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from dxgraph.testing.net import free_port as _free_port

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "ui"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} is absent: install Debian's Chromium (apt-get install chromium)"),
]




@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a free loopback port, with its own home (store, uploads, cache)."""
    from dxgraph.config import load_settings
    from dxgraph.ui.app import launch
    from dxgraph.ui.services import Services

    home = tmp_path_factory.mktemp("ui_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DXGRAPH_HOME", str(home))
        mp.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        services = Services(load_settings())
        services.warm_up().result(timeout=120)  # the rule doctor's knowledge base, built once
        port = _free_port()
        demo = launch(port=port, block=False, services=services)
        try:
            yield f"http://127.0.0.1:{port}/", services
        finally:
            demo.close()
            services.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


def _open(browser, url):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#consult-input textarea")
    return context, page


def _upload(page, component: str, path: Path, shown: str) -> None:
    """Attach a file and wait until the page shows ``shown``.

    On a loaded machine the file input can exist before Gradio's handlers are attached, and
    a change event fired then is lost: attach again (at most three times) instead of
    waiting a minute for something that will not come.
    """
    for attempt in range(3):
        page.set_input_files(f"{component} input[type=file]", str(path))
        try:
            page.wait_for_selector(shown, timeout=20_000)
            return
        except Exception:  # noqa: BLE001 - playwright's TimeoutError; retried, then re-raised
            if attempt == 2:
                raise


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


_SETTLED = """(before) => {
  // "New consultation" is re-enabled after every turn; Send stays disabled once the doctor concluded.
  const button = document.querySelector('#consult-new');
  const bots = [...document.querySelectorAll('#consult-chat [data-testid="bot"]')];
  const last = bots.length ? bots[bots.length - 1].innerText : '';
  return button && !button.disabled && bots.length > before
         && !last.includes('thinking…') && !last.includes('analysing');
}"""


def _bot_count(page) -> int:
    return page.locator('#consult-chat [data-testid="bot"]').count()


def _send(page, text: str, *, wait: bool = True) -> None:
    """Send a message; with ``wait``, return once the doctor's turn is complete."""
    before = _bot_count(page)
    page.fill("#consult-input textarea", text)
    page.click("#consult-send")
    if wait:
        page.wait_for_function(_SETTLED, arg=before)


_LAST_BOT_ENDS_WITH_QUESTION = """() => {
  const bots = document.querySelectorAll('#consult-chat [data-testid="bot"]');
  return bots.length > 0 && bots[bots.length - 1].innerText.trim().endsWith('?');
}"""


def _bot_texts(page) -> list[str]:
    return [t.strip() for t in page.locator('#consult-chat [data-testid="bot"]').all_inner_texts()]


def _user_texts(page) -> list[str]:
    return [t.strip() for t in page.locator('#consult-chat [data-testid="user"]').all_inner_texts()]


def test_consult_reply_and_diagnosis_card(server, browser):
    url, services = server
    context, page = _open(browser, url)
    try:
        _send(page, "I have had an itchy red rash with silvery scales on my elbows for two weeks")
        assert page.evaluate(_LAST_BOT_ENDS_WITH_QUESTION)
        assert _user_texts(page) == ["I have had an itchy red rash with silvery scales on my elbows for two weeks"]
        question = _bot_texts(page)[-1]
        assert len(question) > 5
        _send(page, "Yes, it gets worse in winter and my father had something similar.")
        if page.locator("#consult-card .dx-outcome").count() == 0:  # the doctor may already be sure
            page.click("#consult-finish")
        page.wait_for_selector("#consult-card .dx-outcome")
        card = page.inner_text("#consult-card")
        assert "most likely diagnosis" in card.lower() and "not for clinical use" in card.lower()
        _shot(page, "consult")
        # The transcript is in the store, as a run of kind "consult".
        runs = services.store.list_runs(kind="consult")
        assert any(len(services.store.turns(r.id, "transcript")) >= 5 for r in runs)
    finally:
        context.close()


def test_upload_a_fundus_photo_and_run_glaucoma(server, browser, tmp_path):
    from dxgraph.tools.imaging import resolve_image_path

    url, _ = server
    sample = Path(resolve_image_path("sample:retina"))
    photo = tmp_path / f"fundus{sample.suffix}"
    shutil.copyfile(sample, photo)
    context, page = _open(browser, url)
    try:
        page.get_by_role("tab", name="Workflow").click()
        page.wait_for_selector("#wf-run")
        _upload(page, "#wf-files", photo, f"#wf-files :text('{photo.name}')")
        started = time.perf_counter()
        page.click("#wf-run")
        page.wait_for_selector("#wf-card .dx-outcome, #wf-msg .dx-msg-error", timeout=180_000)
        assert not page.locator("#wf-msg .dx-msg-error").count(), page.inner_text("#wf-msg")
        print(f"glaucoma workflow in the browser: {time.perf_counter() - started:.1f} s")
        card = page.inner_text("#wf-card")
        assert re.search(r"vcdr[\s\S]*?\b0\.\d+", card), card
        assert "Finished" in page.inner_text("#wf-msg") and "trace id" in page.inner_text("#wf-msg")
        page.wait_for_selector("#wf-overlays img")  # the disc/cup overlay
        assert "segment_optic_disc_cup" in page.input_value("#wf-plan textarea")
        _shot(page, "workflow")
    finally:
        context.close()


def test_yaml_upload_shows_errors_with_lines(server, browser, tmp_path):
    url, _ = server
    bad = tmp_path / "broken_workflow.yaml"
    bad.write_text("id: demo\nname: Demo\ncolour: red\n")
    context, page = _open(browser, url)
    try:
        page.get_by_role("tab", name="Workflow").click()
        _upload(page, "#wf-yaml", bad, "#wf-msg .dx-msg-error")
        assert "broken_workflow.yaml:3:" in page.inner_text("#wf-msg")
    finally:
        context.close()


def test_short_simulation_with_rule_agents(server, browser):
    url, _ = server
    context, page = _open(browser, url)
    try:
        page.get_by_role("tab", name="Simulate").click()
        page.wait_for_selector("#sim-run")
        page.click("#sim-run")
        page.wait_for_selector("#sim-judge .dx-badge", timeout=120_000)
        verdict = page.inner_text("#sim-judge")
        assert re.search(r"\b(correct|incorrect|abstained)\b", verdict)
        assert page.locator('#sim-chat [data-role="patient"]').count() >= 1
        assert page.locator('#sim-chat [data-role="doctor"]').count() >= 1
        assert "stated confidence" in page.inner_text("#sim-final").lower()
        _shot(page, "simulate")
    finally:
        context.close()


def _seed_benchmark(services, run_id: str, temperaments: list[str]) -> list[str]:
    """A small benchmark run made of real rule-agent consultations, stored as the runner stores them."""
    import json

    from dxgraph.bench.record import SampleResult
    from dxgraph.bench.dialogue import run_consultation
    from dxgraph.store import SampleRow

    case = next(iter(services.cases.values()))
    services.store.create_run(run_id, kind="dialogue", samples_total=len(temperaments),
                              config={"grid": {"strategies": ["dialogue"], "temperaments": temperaments}})
    keys = []
    for t in temperaments:
        # Playwright's sync API keeps an event loop in this thread: run on the app's agent loop.
        res = services.agents.submit(run_consultation(case, services.personas[t], services.doctor("dialogue"),
                                                      services.patient(), services.judge(), max_turns=4)).result(120)
        key = f"{case.id}|{t}|dialogue|rules"
        services.store.save_sample(SampleRow(run_id=run_id, key=key, case_id=case.id, temperament=t,
                                             strategy="dialogue", doctor="rules",
                                             result_json=SampleResult.from_consultation(case, res).model_dump_json()), res.turns)
        keys.append(key)
    services.store.set_run_status(run_id, "done")
    return keys


def test_benchmarks_tab_shows_metrics_and_transcripts_not_consultations(server, browser):
    url, services = server
    keys = _seed_benchmark(services, "bench-browser", ["neutral", "choleric", "melancholic"])
    context, page = _open(browser, url)
    try:
        page.get_by_role("tab", name="Benchmarks").click()
        page.click("#bench-refresh")
        page.wait_for_function("() => document.querySelector('#bench-runs').innerText.includes('bench-browser')")
        assert "consult-" not in page.inner_text("#bench-runs")
        page.wait_for_selector("#bench-details", state="visible")
        page.wait_for_function("() => document.querySelector('#bench-summary').innerText.includes('3 of 3')")
        page.wait_for_selector("#bench-conclusion .dx-outcome")
        assert page.locator('#bench-transcript [data-role="patient"]').count() >= 1
        assert "top-1 all assigned" in page.inner_text("#bench-overall")
        assert keys[0] in page.inner_text("#bench-samples")
        _shot(page, "benchmarks")
    finally:
        context.close()


def test_two_visitors_never_see_each_other(server, browser):
    url, _ = server
    (ctx_a, a), (ctx_b, b) = _open(browser, url), _open(browser, url)
    try:
        _send(a, "My left knee has been swollen and painful since a football match", wait=False)
        _send(b, "I have a blistering rash around my mouth that started three days ago", wait=False)
        a.wait_for_function(_LAST_BOT_ENDS_WITH_QUESTION)
        b.wait_for_function(_LAST_BOT_ENDS_WITH_QUESTION)
        text_a, text_b = a.inner_text("#consult-chat"), b.inner_text("#consult-chat")
        assert "knee" in text_a and "knee" not in text_b
        assert "mouth" in text_b and "mouth" not in text_a
        # A reload finds this browser's own consultation again, and only its own.
        a.reload(wait_until="domcontentloaded")
        a.wait_for_function("() => { const c = document.querySelector('#consult-chat'); return !!c && c.innerText.includes('knee'); }")
        assert "mouth" not in a.inner_text("#consult-chat")
    finally:
        ctx_a.close()
        ctx_b.close()


def test_upload_of_a_wrong_type_is_refused_with_a_message(server, browser, tmp_path):
    url, _ = server
    odd = tmp_path / "photo.png"
    odd.write_bytes(b"this is not a png at all")
    context, page = _open(browser, url)
    try:
        _upload(page, "#consult-files", odd, "#consult-files :text('photo.png')")
        _send(page, "Here is a photo of my eye", wait=False)
        page.wait_for_selector("#consult-msg .dx-msg-error")
        assert "does not look like a PNG file" in page.inner_text("#consult-msg")
        assert "Traceback" not in page.content()
    finally:
        context.close()


@pytest.fixture(autouse=True)
def _time_each(request):
    start = time.perf_counter()
    yield
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        print(f"{request.node.name}: {time.perf_counter() - start:.1f} s")


def test_consult_with_a_glaucoma_phantom_concludes_glaucoma_suspect_with_a_full_size_overlay(server, browser, tmp_path):
    """Issue 14.4/14.5: attach the phantom photo, pick the glaucoma workflow, get "glaucoma suspect"
    and the measurement overlay, opened at full size."""
    import numpy as np
    from PIL import Image

    from dxgraph.phantoms.fundus import render_fundus

    url, _ = server
    img, _ = render_fundus(np.random.default_rng(20001), 768, 0.75)
    photo = tmp_path / "my_eye.png"
    Image.fromarray(img).save(photo)
    context, page = _open(browser, url)
    try:
        _upload(page, "#consult-files", photo, f"#consult-files :text('{photo.name}')")
        page.click("#consult-workflow input")
        page.get_by_role("option", name=re.compile("Glaucomatous optic neuropathy")).click()
        _send(page, "My optician said my optic nerve looks odd; here is the photo", wait=False)
        page.wait_for_selector("#consult-card .dx-outcome", timeout=180_000)
        card = page.inner_text("#consult-card")
        assert "glaucoma suspect" in card.lower(), card
        page.wait_for_selector("#consult-overlays img")
        page.locator("#consult-overlays img").first.click()  # the preview: full size
        page.wait_for_function("""() => [...document.querySelectorAll('#consult-overlays img')]
            .some(i => i.naturalWidth >= 720 && i.getBoundingClientRect().width >= 400)""")
        _shot(page, "consult_glaucoma")
    finally:
        context.close()
