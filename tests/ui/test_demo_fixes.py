"""Issue 15's demo fixes, below the browser: the page's text and its session state."""

from __future__ import annotations

import re

import pytest

from dxgraph.bench.judge import JudgeResult
from dxgraph.types import Diagnosis, FinalDiagnosis, IndicatorResult, Turn
from dxgraph.ui import render
from dxgraph.ui.consult import NO_WORKFLOW, consult_turn, restore
from dxgraph.ui.services import Services
from dxgraph.ui.sessions import ConsultSession, SessionStore

INSTALL = "/opt/venv/lib/python3.11/site-packages/skimage/data/retina.jpg"
NO_VLM = "no VLM configured: set DXGRAPH_VLM_MODEL=openai:MODEL@URL (e.g. a vLLM server with Qwen2.5-VL)"


@pytest.fixture
def services():
    s = Services()
    yield s
    s.close()


async def _last(gen):
    updates = [u async for u in gen]
    return updates[-1]


def _dx(error: str = NO_VLM) -> Diagnosis:
    return Diagnosis(
        workflow="glaucoma", outcome="no glaucomatous optic disc signs detected", score=0.33, threshold=0.5,
        coverage=0.5, seconds=1.0,
        indicators=[
            IndicatorResult(id="vcdr", kind="quantitative", value=0.4, unit="ratio", rule="vcdr >= 0.6", status="ok"),
            IndicatorResult(id="disc_haemorrhage", kind="qualitative", status="unavailable", error=error),
            IndicatorResult(id="peripapillary_atrophy", kind="qualitative", status="unavailable", error=error),
        ],
    )


def test_messages_and_evidence_never_show_the_servers_paths():
    err = f"cannot read {INSTALL}: not a DICOM file"
    html = render.diagnosis_card(_dx(err)) + render.message_html(f"tool failed on {INSTALL}")
    assert "site-packages" not in html and "/opt/" not in html
    assert "retina.jpg" in html  # the file is still named
    # URLs and model specs are not paths
    assert render.public_text("server http://127.0.0.1:8000/v1 down") == "server http://127.0.0.1:8000/v1 down"
    assert render.public_text("set openai:MODEL@URL") == "set openai:MODEL@URL"


def test_the_evidence_table_gives_a_shared_reason_once():
    html = render.diagnosis_card(_dx())
    assert html.count("no VLM configured") == 1 and "as above" in html
    assert "evidence score 0.33 (threshold 0.5)" in html and "coverage 50%" in html


def test_quotes_cut_mid_word_end_at_a_word_with_an_ellipsis():
    said = ["An over-the-counter cream calmed it down. I get a runny nose around them.", "It itches."]
    basis = 'Findings: "It itches."; "An over-the-counter cream calmed it down. I get a runny nose around th"'
    out = render.tidy_quotes(basis, said)
    assert out.endswith('"An over-the-counter cream calmed it down. I get a runny nose around…"')
    assert '"It itches."' in out  # a whole quote stays as it was
    card = render.final_card(FinalDiagnosis(label="eczema", basis=basis), sources=said)
    assert "around th&quot;" not in card and "around…" in card


def test_the_patient_reads_no_probability():
    final = FinalDiagnosis(label="glaucoma suspect", confidence=1.0, differential=["glaucoma suspect"],
                           basis=f"workflow: disc_haemorrhage: unavailable ({NO_VLM})")
    text = render.conclusion_text(final, _dx())
    assert "most likely diagnosis is glaucoma suspect" in text
    assert "%" not in text and "confidence" not in text and "no VLM" not in text
    card = render.final_card(final, _dx())
    assert "confidence" not in card and "100%" not in card
    assert card.count("no VLM configured") == 1  # in the evidence table, not again in the basis


def test_unscored_rubric_rows_say_why():
    judge = JudgeResult(correct=False, predicted_label="x", true_label="y", top3_correct=False, match="table",
                        rubric={"medical_history": 1.0, "respect_empathy": None}, judge="rules",
                        rubric_reasons={"medical_history": "history asked"})
    html = render.judge_card(judge)
    row = re.search(r"respect empathy</td>.*?</tr>", html).group(0)
    assert "not scored by the rule judge" in row


def test_the_whole_transcript_with_disclosed_facts_highlighted():
    turns = [Turn(index=i, role="patient" if i % 2 == 0 else "doctor", text=f"turn {i}",
                  revealed_facts=["f1"] if i == 2 else []) for i in range(12)]
    html = render.transcript_html(turns, {"f1": "history", "f2": "symptom"})
    assert html.count('class="dx-turn ') == 12
    assert html.count("<mark>") == 1 and "f1 (history)" in html and "1 of 2 facts disclosed" in html
    tool = Turn(index=0, role="tool", tool="workflow:glaucoma", text="outcome x; vcdr = 0.7 (sign present; abnormal if vcdr >= 0.6)")
    assert "outcome x\nvcdr = 0.7 (sign present; abnormal if vcdr &gt;= 0.6)" in render.transcript_html([tool])


def test_session_store_keeps_sessions_apart_and_bounded():
    store = SessionStore(max_sessions=2)
    a, b, c = store.new_token(), store.new_token(), store.new_token()
    store.put(a, ConsultSession(complaint="knee"))
    store.put(b, ConsultSession(complaint="mouth"))
    assert store.get(a).complaint == "knee" and store.get(b).complaint == "mouth"
    copy = store.get(a)
    copy.complaint = "changed"
    assert store.get(a).complaint == "knee"  # only put() changes what the store holds
    store.put(c, ConsultSession())
    assert len(store) == 2 and store.get(b) is None  # the least recently used went
    with pytest.raises(Exception):
        ConsultSession(turns=[{"role": "nobody"}])  # typed: a bad turn is refused


async def test_a_consultation_comes_back_after_a_reload_and_only_to_its_browser(services):
    *_, token = await _last(consult_turn(services, "I have a swollen knee since football", None, NO_WORKFLOW, ""))
    chat, *_, again = restore(services, token)
    assert again == token and any("knee" in m["content"] for m in chat)
    other = restore(services, services.sessions.new_token())
    assert other[0] == [] and restore(services, "")[0] == []


async def test_consult_with_the_glaucoma_workflow_says_no_vlm_once_and_no_probability(services):
    from dxgraph.tools.imaging import resolve_image_path

    photo = str(resolve_image_path("sample:retina"))
    chat, _, _, card, _, msg, token = await _last(
        consult_turn(services, "My optician says my optic nerve looks odd", [photo], "glaucoma", ""))
    shown = " ".join(str(m["content"]) for m in chat) + card + msg
    assert shown.count("no VLM configured") == 1
    assert "site-packages" not in shown
    s = services.sessions.get(token)
    assert s.final is not None  # the workflow's evidence decided it
    conclusion = chat[-1]["content"]
    assert conclusion.startswith("My conclusion") and "confidence" not in conclusion and "confidence" not in card
    assert not chat[-2]["content"].startswith("My conclusion")  # its own message


def test_simulate_offers_the_imaging_cases(services):
    from dxgraph.ui.simulate import default_strategy

    imaging = [c for c in services.cases.values() if c.images]
    assert imaging and all(c.workflow for c in imaging)
    assert default_strategy(services, imaging[0].id) == "dialogue+image+tools"
    assert default_strategy(services, next(iter(services.cases))) == "dialogue"


async def test_an_imaging_case_simulates_with_its_workflow(services):
    from dxgraph.ui.simulate import simulate

    case = next(c for c in services.cases.values() if c.images and c.workflow == "glaucoma")
    chat, final, verdict, msg = await _last(simulate(services, case.id, "neutral", "dialogue+image+tools", 4))
    assert "workflow:glaucoma" in chat and "saved as run" in msg, msg
    assert chat.count("no VLM configured") == 1 and "no VLM configured" not in final


async def test_a_runs_report_is_computed_once_per_state_of_the_run(services):
    from dxgraph.bench.dialogue import run_consultation
    from dxgraph.bench.record import SampleResult
    from dxgraph.store import SampleRow
    from dxgraph.ui.benchmarks_tab import cached_report

    case = next(iter(services.cases.values()))
    store = services.store
    store.create_run("bench-cache", kind="dialogue", samples_total=2, config={"grid": {"strategies": ["dialogue"]}})

    async def add(key: str) -> None:
        res = await run_consultation(case, services.personas["neutral"], services.doctor("dialogue"),
                                     services.patient(), services.judge(), max_turns=2)
        store.save_sample(SampleRow(run_id="bench-cache", key=key, case_id=case.id, temperament="neutral",
                                    strategy="dialogue", doctor="rules",
                                    result_json=SampleResult.from_consultation(case, res).model_dump_json()), res.turns)

    await add("k1")
    first = cached_report(services, "bench-cache", 50)
    assert cached_report(services, "bench-cache", 50) is first  # picking the run again: no recompute
    await add("k2")
    second = cached_report(services, "bench-cache", 50)
    assert second is not first and second["samples_done"] == 2  # a new sample: a new report
