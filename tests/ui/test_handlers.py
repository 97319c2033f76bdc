"""The page's handlers driven directly (no browser): real rule agents, a real store."""

from __future__ import annotations

import json

import pytest

from dxgraph.store import SampleRow
from dxgraph.ui.benchmarks_tab import list_runs, run_view, sample_view
from dxgraph.ui.consult import KIND, NO_WORKFLOW, consult_turn
from dxgraph.ui.services import Services
from dxgraph.ui.simulate import simulate
from dxgraph.ui.workflow_tab import validate_yaml

COMPLAINT = "I have had an itchy red rash with silvery scales on my elbows for two weeks"


@pytest.fixture
def services():
    s = Services()
    yield s
    s.close()


async def _last(gen):
    updates = [u async for u in gen]
    return updates, updates[-1]


async def test_consult_gets_a_question_and_saves_the_transcript(services):
    updates, last = await _last(consult_turn(services, COMPLAINT, None, NO_WORKFLOW, ""))
    chat, _, _, _, _, msg, token = last
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert chat[0]["content"] == COMPLAINT
    assert chat[1]["content"].endswith("?")
    assert len(updates) >= 2  # the patient's message is shown before the doctor answers
    state = services.sessions.get(token)  # the browser holds only the token
    assert state.id.startswith("consult-") and state.final is None
    run = services.store.get_run(state.id)
    assert run.kind == KIND
    stored = services.store.turns(state.id, "transcript")
    assert [t.role for t in stored] == ["patient", "doctor"] and stored[0].text == COMPLAINT


async def test_consult_ends_in_a_diagnosis_on_request(services):
    _, (_, _, _, _, _, _, token) = await _last(consult_turn(services, COMPLAINT, None, NO_WORKFLOW, ""))
    _, last = await _last(consult_turn(services, "", None, NO_WORKFLOW, token, finish=True))
    chat, _, _, card, _, _, token = last
    state = services.sessions.get(token)
    assert state.final.label in services.doctor("dialogue").kb.labels
    assert "most likely diagnosis" in card and "not for clinical use" in card
    assert services.store.get_run(state.id).status == "done"
    row = services.store.samples(state.id)[0]
    assert row.status == "done" and json.loads(row.result_json)["final"]["label"] == state.final.label
    _, again = await _last(consult_turn(services, "one more thing", None, NO_WORKFLOW, token))
    assert "has ended" in again[5] and len(again[0]) == len(chat)


async def test_two_sessions_never_share_a_conversation(services):
    _, a = await _last(consult_turn(services, COMPLAINT, None, NO_WORKFLOW, ""))
    _, b = await _last(consult_turn(services, "My eyes have been red and sticky since yesterday", None,
                                    NO_WORKFLOW, ""))
    state_a, state_b = services.sessions.get(a[-1]), services.sessions.get(b[-1])
    assert a[-1] != b[-1] and state_a.id != state_b.id
    assert all("eyes" not in t.text for t in state_a.turns)
    assert all("elbows" not in t.text for t in state_b.turns)


async def test_consult_errors_are_messages_not_tracebacks(services, tmp_path):
    _, last = await _last(consult_turn(services, "   ", None, NO_WORKFLOW, ""))
    assert "type a message" in last[5] and last[0] == []
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(b"%PDF-1.4 hello")
    _, last = await _last(consult_turn(services, COMPLAINT, [str(pdf)], NO_WORKFLOW, ""))
    assert "'scan.pdf' is not an accepted file type" in last[5]
    assert "Traceback" not in last[5] and last[0] == []


async def test_simulation_streams_turns_then_the_verdict(services):
    case_id = next(iter(services.cases))
    updates = [u async for u in simulate(services, case_id, "neutral", "dialogue", 3)]
    chat, final, verdict, msg = updates[-1]
    n_turns = chat.count('class="dx-turn ')
    assert len(updates) >= n_turns + 1  # one page update per turn, then the verdict
    assert chat.index('data-role="patient"') < chat.index('data-role="doctor"')
    assert "stated confidence" in final
    assert ("correct" in verdict) and services.cases[case_id].diagnosis in verdict
    assert "doctor turns" in msg
    run_id = msg.split("saved as run '")[1].split("'")[0]
    [row] = services.store.samples(run_id)
    assert row.case_id == case_id and row.status == "done"
    assert len(services.store.turns(run_id, row.key)) == n_turns  # the whole transcript is shown
    assert run_id in list(list_runs(services)["run"])  # visible in the Benchmarks tab
    summary = run_view(services, run_id)[0]
    assert "complete" in summary, summary


async def test_simulation_rejects_an_unknown_temperament(services):
    case_id = next(iter(services.cases))
    updates = [u async for u in simulate(services, case_id, "grumpy", "dialogue", 3)]
    assert "unknown temperament 'grumpy'" in updates[-1][3]


async def test_benchmark_viewer_reads_runs_but_never_consultations(services):
    from dxgraph.bench.record import SampleResult
    from dxgraph.bench.dialogue import run_consultation

    case = next(iter(services.cases.values()))
    res = await run_consultation(case, services.personas["neutral"], services.doctor("dialogue"),
                                 services.patient(), services.judge(), max_turns=3)
    store = services.store
    store.create_run("bench-1", kind="dialogue", config={"grid": {"strategies": ["dialogue"]}}, samples_total=1)
    store.save_sample(SampleRow(run_id="bench-1", key="k1", case_id=case.id, temperament="neutral",
                                strategy="dialogue", doctor="rules", result_json=SampleResult.from_consultation(case, res).model_dump_json()),
                      res.turns)
    store.create_run("consult-secret", kind=KIND, config={}, samples_total=1)
    runs = list_runs(services)
    assert list(runs["run"]) == ["bench-1"]
    summary, overall, by_temp, _, plot_temp, _, samples, keys, shown = run_view(services, "bench-1", reps=20)
    assert "1 of 1" in summary and overall.iloc[0, 0] == "all"
    assert list(by_temp["temperament"]) == ["neutral"] and list(plot_temp["temperament"]) == ["neutral"]
    assert list(samples["sample"]) == ["k1"] and keys["value"] == "k1" and shown["visible"] is True
    chat, card = sample_view(services, "bench-1", "k1")
    assert chat.count('class="dx-turn ') == len(res.turns)  # the whole transcript
    assert "stored conclusion" in card and case.diagnosis in card
    assert 'class="dx-turn ' not in sample_view(services, "consult-secret", "transcript")[0]
    assert "no run 'nope'" in run_view(services, "nope")[0]


def test_yaml_upload_errors_name_the_line(services, tmp_path):
    bad = tmp_path / "my_workflow.yaml"
    bad.write_text("id: demo\nname: Demo\ncolour: red\n")
    msg, plan = validate_yaml(services, str(bad))
    assert "my_workflow.yaml:3:" in msg and plan == ""
    not_yaml = tmp_path / "w.yaml"
    not_yaml.write_text("id: [unclosed\n")
    assert "w.yaml:" in validate_yaml(services, str(not_yaml))[0]


async def test_workflow_evidence_streams_indicator_by_indicator(services):
    from dxgraph.ui.workflow_tab import run_workflow_ui

    updates, last = await _last(run_workflow_ui(services, "glaucoma", None, None, "sample:retina"))
    progress = [u[1] for u in updates if isinstance(u[1], str) and "indicators done" in u[1]]
    assert len(progress) == 4  # one update per finished indicator, before the card
    assert "4 of 4 indicators done" in progress[-1] and "vcdr = 0.372" in "".join(progress)
    assert "Finished in" in last[1] and "vcdr" in last[2]


async def test_consult_concludes_from_the_glaucoma_workflow_with_the_whole_basis(services, tmp_path):
    """Issue 14.4: a patient attaching a retina photo and running the glaucoma workflow was told
    "conjunctivitis (29%)" with the evidence cut mid-string."""
    import numpy as np
    from PIL import Image

    from dxgraph.phantoms.fundus import render_fundus

    img, truth = render_fundus(np.random.default_rng(20001), 768, 0.75)
    path = tmp_path / "eye.png"
    Image.fromarray(img).save(path)
    _, last = await _last(consult_turn(services, "My optician said my optic nerve looks odd; here is the photo",
                                       [str(path)], "glaucoma", ""))
    chat, _, _, card, _, _, token = last
    final = services.sessions.get(token).final
    assert final is not None and final.label == "glaucoma suspect"
    basis = final.basis
    assert "workflow 'glaucoma': outcome glaucoma suspect" in basis and "rim_to_disc = " in basis
    assert "peripapillary_atrophy: unavailable" in basis  # the last item: nothing cut off
    assert "glaucoma suspect" in card
