"""A calm theme: one accent colour, system fonts (nothing fetched from a font CDN, so the
page renders the same on a machine without internet), roomy tables."""

from __future__ import annotations

import gradio as gr

__all__ = ["theme", "CSS"]


def theme() -> gr.themes.Base:
    return gr.themes.Soft(
        primary_hue="teal",
        secondary_hue="sky",
        neutral_hue="slate",
        radius_size="md",
        font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    ).set(
        # Soft's subdued text is slate-400 on near-white (about 2.5:1); slate-600 reads at ~7:1,
        # above WCAG AA's 4.5:1 (tests/ui/test_browser.py checks computed styles).
        body_text_color_subdued="*neutral_600",
        body_text_color_subdued_dark="*neutral_300",
        block_info_text_color="*neutral_600",
        block_info_text_color_dark="*neutral_300",
        block_label_text_color="*neutral_700",
        block_label_text_color_dark="*neutral_200",
        block_title_text_color="*neutral_700",
        block_title_text_color_dark="*neutral_200",
        input_placeholder_color="*neutral_500",
        input_placeholder_color_dark="*neutral_400",
    )


CSS = """
.gradio-container { max-width: 1240px !important; margin: 0 auto; }
#dx-header h1 { font-size: 1.5rem; margin: 0; }
#dx-header p { margin: .2rem 0 0; color: var(--body-text-color-subdued); }
.dx-notice { background: #fff8e6; border: 1px solid #f0d9a0; color: #5c4400; border-radius: 8px;
  padding: .55rem .8rem; font-size: .9rem; margin: .6rem 0; }
.dx-notice-short { font-size: .82rem; padding: .3rem .6rem; font-weight: 600; }
.dark .dx-notice { background: #3a3120; color: #f3e2b5; border-color: #6b5a2e; }
.dx-msg { border-radius: 8px; padding: .55rem .8rem; margin: .3rem 0; font-size: .95rem; white-space: pre-wrap; }
.dx-msg-error { background: #fdecec; border: 1px solid #f3b7b7; color: #7a1d1d; }
.dx-msg-info { background: #eef6fb; border: 1px solid #bcd9ea; color: #17425b; }
.dx-msg-ok { background: #ecf8f1; border: 1px solid #b4e0c6; color: #1d5a37; }
.dx-card { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: .9rem 1rem;
  background: var(--background-fill-primary); }
.dx-kicker { text-transform: uppercase; letter-spacing: .04em; font-size: .75rem;
  color: var(--body-text-color-subdued); margin-top: .3rem; }
.dx-outcome { font-size: 1.35rem; font-weight: 600; margin: .15rem 0 .25rem; }
.dx-meta { color: var(--body-text-color-subdued); font-size: .9rem; margin-bottom: .4rem; }
.dx-sub { color: var(--body-text-color-subdued); font-size: .82rem; }
.dx-note { background: var(--background-fill-secondary); border-radius: 6px; padding: .35rem .6rem;
  font-size: .88rem; margin: .4rem 0; }
.dx-conf { height: 6px; background: var(--background-fill-secondary); border-radius: 3px; margin: .2rem 0 .6rem;
  max-width: 320px; }
.dx-conf span { display: block; height: 6px; border-radius: 3px; background: var(--color-accent); }
.dx-scroll { overflow-x: auto; }
/* Consult's card column (~400 px) would scroll the six-column table sideways and hide the
   finding: there each indicator is a block of labelled lines (render.evidence_table(compact=True)). */
table.dx-evidence.dx-compact colgroup, table.dx-evidence.dx-compact thead { display: none; }
table.dx-evidence.dx-compact, table.dx-evidence.dx-compact tbody, table.dx-evidence.dx-compact tr,
table.dx-evidence.dx-compact td { display: block; width: auto !important; }
table.dx-evidence.dx-compact tr { border-bottom: 1px solid var(--border-color-primary); padding: .35rem 0; }
table.dx-evidence.dx-compact td { border: none !important; padding: .1rem .3rem; white-space: normal; }
table.dx-evidence.dx-compact td[data-label]::before { content: attr(data-label) ": "; font-weight: 600;
  font-size: .78rem; color: var(--body-text-color-subdued); }
table.dx-evidence.dx-compact td[data-label="unit"]:empty { display: none; }
/* Auto layout: a narrow column (Consult's) gives each column at least its longest word and its
   numbers with units, instead of fixed shares that split words letter by letter and let a
   no-wrap number run over its neighbour; .dx-scroll scrolls what still does not fit. */
table.dx-evidence { width: 100%; border-collapse: collapse; margin: .6rem 0; font-size: .88rem;
  table-layout: auto; border: none !important; }
table.dx-evidence th, table.dx-evidence td { border-left: none !important; border-right: none !important;
  border-top: none !important; overflow-wrap: normal; word-break: normal; hyphens: manual; }
table.dx-evidence code { font-size: .8rem; white-space: normal; }
#wf-plan textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .8rem; }
table.dx-evidence th { text-align: left; font-weight: 600; font-size: .8rem;
  color: var(--body-text-color-subdued); border-bottom: 1px solid var(--border-color-primary); padding: .35rem .5rem; }
table.dx-evidence td { border-bottom: 1px solid var(--border-color-primary); padding: .4rem .5rem; vertical-align: top; }
td.dx-num { font-variant-numeric: tabular-nums; font-weight: 600; white-space: nowrap; }
.dx-badge { display: inline-block; border-radius: 999px; padding: .05rem .55rem; font-size: .8rem; font-weight: 600; }
.dx-badge.dx-absent { background: #e3f4ea; color: #1d6b3e; }
.dx-badge.dx-present { background: #fdecd2; color: #8a3b00; }
.dx-badge.dx-na { background: #eceff3; color: #3d4754; }
.dx-narrative { font-style: italic; }
#dx-roles table { font-size: .88rem; }
.dx-placeholder { border: 1px dashed var(--border-color-primary); border-radius: 10px; padding: 1.2rem 1rem;
  color: var(--body-text-color-subdued); font-size: .92rem; text-align: center; }
footer { display: none !important; }
/* Gradio's chat "Clear" (a bin over the newest message) would wipe the page's copy of a
   consultation the server still holds: "New consultation" is the one way to start again. */
#consult-chat button[aria-label="Clear"], #bench-transcript button[aria-label="Clear"] { display: none !important; }
.dx-transcript { display: flex; flex-direction: column; gap: .45rem; }
.dx-turn { max-width: 85%; border-radius: 10px; padding: .45rem .7rem; border: 1px solid var(--border-color-primary);
  white-space: pre-wrap; font-size: .95rem; }
.dx-turn.dx-patient { align-self: flex-end; background: var(--background-fill-secondary); }
.dx-turn.dx-doctor { align-self: flex-start; background: var(--background-fill-primary); }
.dx-turn.dx-end { border-color: var(--color-accent); }
.dx-turn.dx-tool { align-self: stretch; max-width: 100%; font-size: .85rem; background: var(--background-fill-secondary); }
.dx-turn.dx-disclosed { border-color: #c9a227; }
.dx-turn mark { background: #fff1b8; color: #3b2f00; padding: 0 .1rem; border-radius: 3px; }
.dx-who { font-size: .72rem; text-transform: uppercase; letter-spacing: .04em; color: var(--body-text-color-subdued); }
.dx-facts { font-size: .8rem; color: #5c4400; margin-top: .2rem; }
.dark .dx-facts { color: #f3e2b5; }
"""
