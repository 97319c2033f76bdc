"""``bench run --protocol 3mdbench`` (issue 13, defect 5) on data in 3MDBench's published JSON
and parquet layouts, imported with ``cases import-3mdbench`` and run through the CLI: every
case once per strategy, with its own personality, all cases evaluated, the rule doctor's
knowledge base from another set, and a report that names the protocol and shows 3MDBench's
metric. Classifier hints (``dialogue+hints``) are checked and are not truth."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dxgraph.agents.hints import HintedLLMDoctor
from dxgraph.bench.agents import AgentFactory
from dxgraph.bench.dialogue import run_consultation
from dxgraph.cli import app
from dxgraph.models.scripted import ScriptedModel
from dxgraph.simulator.cases import load_cases
from dxgraph.simulator.personas import load_personas
from dxgraph.store import Store
from tests.subprocess_cli import one_error, run_cli

ROWS = {
    "q1": {"general_complaint": "My inner elbows are dry, red and itch terribly at night.",
           "complaints": "It flares every winter. Scratching makes it weep. I had it as a child too.",
           "diagnosis": "eczema", "personality": "choleric"},
    "q2": {"general_complaint": "I keep getting pimples and blackheads on my chin and forehead.",
           "complaints": "They got worse in my teens. Some are painful lumps. My skin is oily.",
           "diagnosis": "acne", "personality": "melancholic"},
    "q3": {"general_complaint": "Thick silvery scaly plaques on both knees and elbows.",
           "complaints": "They have been there for years. My nails have small pits. My father had the same.",
           "diagnosis": "psoriasis", "personality": "neutral"},
}


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (24, 24), (180, 90, 80)).save(buf, format="PNG")
    return buf.getvalue()


def _json_layout(folder: Path, rows=ROWS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "imgs").mkdir(exist_ok=True)
    data = {}
    for cid, row in rows.items():
        (folder / "imgs" / f"{cid}.png").write_bytes(_png())
        data[cid] = {**row, "path": f"imgs/{cid}.png"}
    (folder / "cases.json").write_text(json.dumps(data))
    return folder / "cases.json"


def _parquet_layout(folder: Path) -> Path:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    cols = {k: [r[k] for r in ROWS.values()] for k in ("general_complaint", "complaints", "diagnosis", "personality")}
    table = pa.table({"id": list(ROWS), "image": [{"bytes": _png(), "path": None} for _ in ROWS], **cols})
    pq.write_table(table, folder / "test.parquet")
    return folder / "test.parquet"


def _invoke(*args: str):
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res


@pytest.mark.parametrize("layout", ["json", "parquet"])
def test_import_then_protocol_run_plays_each_case_once_per_strategy_with_its_personality(tmp_path, layout):
    src = (_json_layout if layout == "json" else _parquet_layout)(tmp_path / "src")
    out, url = tmp_path / "cases", f"sqlite:///{tmp_path / 's.db'}"
    _invoke("cases", "import-3mdbench", str(src), "-o", str(out), "--train-fraction", "1")
    assert {c.split for c in load_cases(str(out))} == {"train"}  # the importer's split is ignored below
    hints = tmp_path / "hints.csv"
    hints.write_text("case_id,top1,top2,top3,top4\nq1,eczema,psoriasis,acne,rosacea\nq2,acne,rosacea,eczema\n"
                     "q3,eczema,psoriasis\n")
    extra = ["--hints", str(hints)] if layout == "parquet" else []
    res = _invoke("bench", "run", "--run-id", "p", "--protocol", "3mdbench", "--cases", str(out), *extra,
                  "--no-progress", "--db", url)
    strategies = ["single", "dialogue", "dialogue+image"] + (["dialogue+hints"] if extra else [])
    assert f"{3 * len(strategies)}/{3 * len(strategies)} done" in res.output
    rows = Store(url).samples("p", "done")
    assert sorted((r.case_id, r.strategy) for r in rows) == sorted((c, s) for c in ROWS for s in strategies)
    assert {(r.case_id, r.temperament) for r in rows} == {(c, row["personality"]) for c, row in ROWS.items()}
    rep = json.loads(_invoke("bench", "report", "p", "--json", "--reps", "20", "--db", url).output)
    assert rep["protocol"] == "3mdbench" and rep["manifest"]["protocol"] == "3mdbench"
    assert rep["manifest"]["knowledge_base"] == "bundled (train split)"
    assert sorted(rep["manifest"]["temperaments"]) == ["choleric", "melancholic", "neutral"]
    for strategy in strategies:
        block = rep["metrics"]["by_strategy"][strategy]
        assert block["f1_3mdbench"]["n"] == 3 and block["failure_rate"]["value"] == 0.0
    text = _invoke("bench", "report", "p", "--reps", "20", "--db", url).output
    assert text.splitlines()[1].startswith("protocol: 3mdbench")  # named at the top
    assert "f1_3mdbench" in text
    html_file = tmp_path / "r.html"
    _invoke("bench", "report", "p", "--html", str(html_file), "--reps", "20", "--db", url)
    assert "protocol: 3mdbench" in html_file.read_text()


def test_refusals_are_one_line_exit_2(tmp_path):
    out = tmp_path / "cases"
    _invoke("cases", "import-3mdbench", str(_json_layout(tmp_path / "src")), "-o", str(out), "--train-fraction", "1")
    url = f"sqlite:///{tmp_path / 's.db'}"
    base = ["bench", "run", "--run-id", "x", "--protocol", "3mdbench", "--cases", str(out), "--no-progress",
            "--db", url]
    assert "--temperaments has no meaning under --protocol 3mdbench" in one_error(
        run_cli(*base, "--temperaments", "neutral"))
    bad = tmp_path / "bad.csv"
    bad.write_text("q1,eczema\nq9,acne\n")
    assert f"--hints {bad}:2: case 'q9' is not in the case set" in one_error(run_cli(*base, "--hints", str(bad)))
    bad.write_text("q1,eczema,not-a-disease\n")
    assert f"--hints {bad}:1: unknown label 'not-a-disease'" in one_error(run_cli(*base, "--hints", str(bad)))
    bad.write_text("q1,eczema\n")
    assert "has no row for case 'q2'" in one_error(run_cli(*base, "--hints", str(bad)))
    assert "needs --hints" in one_error(run_cli(*base, "--strategy", "dialogue+hints"))
    # The knowledge base may not hold the evaluated cases: the imported set's own train split does.
    line = one_error(run_cli(*base, "--kb-cases", str(out)))
    assert "knowledge base (--kb-cases)" in line and "--allow-train-overlap" in line
    assert Store(url).get_run("x") is None
    # A case without a personality cannot be played under its own.
    plain = tmp_path / "plain"
    _invoke("cases", "import-3mdbench", str(_json_layout(tmp_path / "src2", {
        **ROWS, "q4": {**ROWS["q1"], "general_complaint": "Itchy patches on my wrists.", "personality": ""}})),
        "-o", str(plain))
    line = one_error(run_cli(*base[:7], str(plain), "--no-progress", "--db", url))
    assert "case 'q4' has no 'personality'" in line


def test_the_default_protocol_run_identity_is_unchanged():
    from dxgraph.bench.grid import BenchConfig

    ident = BenchConfig(run_id="r").grid_identity(["neutral"])
    assert "protocol" not in ident and "kb_cases" not in ident and "hints_sha256" not in ident


CASES = load_cases("bundled", split="test")[::23][:3]
HINTS = ["rosacea", "eczema", "acne"]  # a fixed classifier output, right or wrong for each case


def _scrambled(cases):
    return [c.model_copy(update={"diagnosis": cases[(i + 1) % len(cases)].diagnosis,
                                 "differential": list(cases[(i + 1) % len(cases)].differential)})
            for i, c in enumerate(cases)]


async def _play(case, doctor):
    res = await run_consultation(case, load_personas()["neutral"], doctor, AgentFactory().patient("rules"), None,
                                 strategy="dialogue+hints", seed=1, hints=HINTS)
    return res.final, [(t.role, t.text) for t in res.turns]


async def test_hints_are_not_truth_scrambled_labels_change_nothing():
    rule = AgentFactory().doctor("rules", "dialogue+hints")
    for case, bad in zip(CASES, _scrambled(CASES)):
        assert case.diagnosis != bad.diagnosis
        assert await _play(bad, rule) == await _play(case, rule), case.id
        prompts = []
        for c in (case, bad):
            model = ScriptedModel(lambda m: {"final": {"label": "eczema", "confidence": 0.5, "differential": [],
                                                      "basis": "b"}} if len(m) > 3 else {"question": "Since when?"})
            await _play(c, HintedLLMDoctor(model))
            prompts.append([[m.text for m in call] for call in model.calls])
        assert prompts[0] == prompts[1], case.id
        assert any("A classifier that looked at the photo suggests: rosacea, eczema, acne" in t
                   for t in prompts[0][0])


async def test_the_rule_doctor_follows_the_hints_as_a_prior():
    from dxgraph.agents.hints import hinted_view

    rule = AgentFactory().doctor("rules", "dialogue+hints")
    case = CASES[0]
    plain, _ = rule.posterior(hinted_view(case, []), [])
    hinted, contributions = rule.posterior(hinted_view(case, ["rosacea"]), [])
    i = rule.kb.labels.index("rosacea")
    assert hinted[i] > plain[i] and contributions[-1][0].startswith("A classifier")
