"""Issue 15's demo fixes in a real browser: readable text (contrast from computed styles), the
evidence table at a narrow width, and the Benchmarks tab naming the store it reads."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.ui.test_browser import _open, _shot, _upload, browser, pytestmark, server  # noqa: F401

# WCAG relative-luminance contrast of each visible text element against the first opaque
# background behind it; returns the ones under the bar.
_LOW_CONTRAST = """([selectors, bar]) => {
  const lum = (c) => { const m = c.match(/[\\d.]+/g).map(Number);
    const ch = m.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return [0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2], m.length > 3 ? m[3] : 1]; };
  const bg = (el) => { for (let e = el; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor; if (lum(c)[1] > 0.5) return c; } return 'rgb(255,255,255)'; };
  const low = [];
  for (const sel of selectors) for (const el of document.querySelectorAll(sel)) {
    if (!el.offsetParent || !el.innerText.trim()) continue;
    const [l1] = lum(getComputedStyle(el).color), [l2] = lum(bg(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    if (ratio < bar) low.push(`${sel} '${el.innerText.trim().slice(0, 30)}' ${ratio.toFixed(2)}:1`);
  }
  return low;
}"""

_SUBDUED = ["#dx-header p", "[data-testid='block-info']", "span[data-testid='block-info']", ".dx-sub", ".dx-meta",
            ".dx-kicker", "table.dx-evidence th", ".dx-placeholder", "label > span", ".dx-badge"]

# Words split across lines, and cells whose content runs over their neighbour.
_BROKEN_CELLS = """(sel) => {
  const bad = [];
  for (const td of document.querySelectorAll(sel + ' td, ' + sel + ' th')) {
    if (td.scrollWidth > td.clientWidth + 1) bad.push('overflows: ' + td.innerText.slice(0, 30));
    const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      for (const m of n.textContent.matchAll(/[A-Za-z]{4,}/g)) {
        const r = document.createRange(); r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
        const lines = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
        if (lines.size > 1) bad.push('split word: ' + m[0]);
      }
    }
  }
  return bad;
}"""


def test_text_contrast_is_at_least_4_5_to_1_on_every_tab(server, browser):
    url, _ = server
    context, page = _open(browser, url)
    try:
        low = []
        for tab in ("Consult", "Workflow", "Simulate", "Benchmarks"):
            page.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(300)
            low += [f"{tab}: {x}" for x in page.evaluate(_LOW_CONTRAST, [_SUBDUED, 4.5])]
        _shot(page, "contrast-benchmarks")
        assert low == []
    finally:
        context.close()


def test_benchmarks_tab_names_the_store_it_reads(server, browser):
    url, services = server
    context, page = _open(browser, url)
    try:
        page.get_by_role("tab", name="Benchmarks").click()
        page.wait_for_selector("#bench-store")
        text = page.inner_text("#bench-store")
        assert services.db_url in text and "--db" in text
        _shot(page, "benchmarks-store")
    finally:
        context.close()


def test_evidence_table_reads_whole_words_in_a_narrow_column(server, browser, tmp_path):
    from dxgraph.tools.imaging import resolve_image_path

    url, _ = server
    sample = Path(resolve_image_path("sample:retina"))
    photo = tmp_path / f"fundus{sample.suffix}"
    shutil.copyfile(sample, photo)
    context, page = _open(browser, url)
    try:
        page.get_by_role("tab", name="Workflow").click()
        _upload(page, "#wf-files", photo, f"#wf-files :text('{photo.name}')")
        page.click("#wf-run")
        page.wait_for_selector("#wf-card table.dx-evidence", timeout=180_000)
        for width in (1366, 900, 700):  # 700: about the width Consult's column gives the card
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(200)
            assert page.evaluate(_BROKEN_CELLS, "#wf-card table.dx-evidence") == [], width
        _shot(page, "evidence-narrow")
        assert page.evaluate(_LOW_CONTRAST, [["table.dx-evidence th", "table.dx-evidence td"], 4.5]) == []
    finally:
        context.close()


def test_enter_sends_and_send_is_disabled_once_the_doctor_concluded(server, browser):
    from tests.ui.test_browser import _SETTLED, _bot_count, _user_texts

    url, _ = server
    context, page = _open(browser, url)
    try:
        before = _bot_count(page)
        page.fill("#consult-input textarea", "I have had an itchy red rash with silvery scales on my elbows")
        page.press("#consult-input textarea", "Enter")
        page.wait_for_function(_SETTLED, arg=before)
        assert _user_texts(page) == ["I have had an itchy red rash with silvery scales on my elbows"]
        assert page.input_value("#consult-input textarea") == ""
        assert page.is_enabled("#consult-send")
        before = _bot_count(page)
        page.click("#consult-finish")
        page.wait_for_selector("#consult-card .dx-outcome")
        page.wait_for_function(_SETTLED, arg=before)
        assert not page.is_enabled("#consult-send") and not page.is_enabled("#consult-finish")
        _shot(page, "consult-ended")
        page.click("#consult-new")
        page.wait_for_function("() => !document.querySelector('#consult-send').disabled")
    finally:
        context.close()
