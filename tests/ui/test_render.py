"""The cards and chat messages the page shows, built from real result types."""

from __future__ import annotations

from dxgraph.types import Diagnosis, FinalDiagnosis, IndicatorResult, ToolCallRecord, Turn
from dxgraph.ui import render


def _dx() -> Diagnosis:
    return Diagnosis(
        workflow="glaucoma", outcome="glaucoma suspect", probability=0.67, threshold=0.5,
        decision="weighted vote over 2 of 3 available indicators", note="1 indicator unavailable",
        seconds=1.234, trace_id="abc123",
        indicators=[
            IndicatorResult(id="vcdr", kind="quantitative", value=0.71234, unit="ratio", rule="vcdr >= 0.6",
                            status="ok", passed=True, weight=2, seconds=0.8,
                            calls=[ToolCallRecord(tool="segment_optic_disc_cup", version="1.0", seconds=0.7)],
                            artifacts={"overlay": "/tmp/vcdr.png"}),
            IndicatorResult(id="rim_to_disc", kind="quantitative", value=0.25, unit="ratio", rule="rdr < 0.2",
                            status="ok", passed=False),
            IndicatorResult(id="disc_haemorrhage", kind="qualitative", status="unavailable",
                            rule='answer == "yes"', error="no VLM configured <script>"),
        ],
    )


def test_diagnosis_card_shows_every_number_and_verdict():
    html = render.diagnosis_card(_dx())
    assert "glaucoma suspect" in html
    assert "0.712" in html and "probability 0.67 (threshold 0.5)" in html
    # a rule states the abnormal sign: the high vCDR reads "sign present" in the warning colour,
    # the normal rim "sign absent"; nothing reads pass/meets for an abnormal sign
    assert html.count("sign present") == 1 and html.count("sign absent") == 1
    assert 'dx-badge dx-present">sign present' in html and 'dx-badge dx-absent">sign absent' in html
    assert "meets" not in html and ">pass<" not in html
    assert "unavailable" in html and "2 of 3 indicators available" in html
    assert "trace <code>abc123</code>" in html
    assert "not for clinical use" in html


def test_tool_errors_are_escaped_not_rendered():
    html = render.diagnosis_card(_dx())
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_final_card_with_workflow_evidence():
    final = FinalDiagnosis(label="psoriasis", confidence=0.82, differential=["psoriasis", "eczema"],
                           basis="silvery scales on the elbows")
    html = render.final_card(final, _dx())
    # the patient reads the most likely diagnosis and its basis, no probability (issue 15)
    assert "psoriasis" in html and "most likely diagnosis" in html and "eczema" in html
    assert "confidence" not in html and "82%" not in html
    assert "stated confidence 82%" in render.final_card(final, _dx(), patient=False)
    assert "evidence from workflow glaucoma" in html and "0.712" in html
    abstained = render.final_card(FinalDiagnosis(label=None))
    assert "abstained" in abstained


def test_overlays_come_with_captions():
    assert render.overlay_items(_dx()) == [("/tmp/vcdr.png", "vcdr: overlay (0.712)")]
    assert render.overlay_items(None) == []


def test_turns_become_chat_messages():
    assert render.turn_message(Turn(index=0, role="patient", text="hi")) == {"role": "user", "content": "hi"}
    assert render.turn_message(Turn(index=1, role="doctor", text="Where?"))["role"] == "assistant"
    tool = render.turn_message(Turn(index=2, role="tool", tool="workflow:glaucoma", text="vcdr = 0.7",
                                    latency_ms=1500))
    assert tool["metadata"] == {"title": "Tool step: workflow:glaucoma", "status": "done", "duration": 1.5}


def test_message_box_kinds():
    assert render.message_html("") == ""
    assert 'role="alert"' in render.message_html("bad <b>", "error") and "&lt;b&gt;" in render.message_html("bad <b>")
    assert "dx-msg-ok" in render.message_html("fine", "ok")


def test_values_read_well():
    assert render.fmt_value(0.123456) == "0.123"
    assert render.fmt_value(54.0, "%") == "54 %"
    assert render.fmt_value(None) == "–" and render.fmt_value(True) == "yes"
