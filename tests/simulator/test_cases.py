"""The bundled case set, the loader's one-line errors, the 3MDBench importer and the CLI."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dxgraph.cli import app
from dxgraph.errors import InputError
from dxgraph.simulator import labels as lt
from dxgraph.simulator.cases import (
    assign_splits,
    get_case,
    leaked_labels,
    load_cases,
    split_cases,
)
from dxgraph.simulator.cases_import import complaint_facts, guess_category, import_3mdbench

CASES = load_cases("bundled")
IMAGING = load_cases("bundled-imaging")


# -- the bundled set ---------------------------------------------------------------------------

def test_every_label_has_two_train_and_two_test_cases():
    counts = Counter((c.diagnosis, c.split) for c in CASES)
    for label in lt.LABELS:
        assert counts[(label, "train")] >= 2, label
        assert counts[(label, "test")] >= 2, label
    assert {c.diagnosis for c in CASES} == set(lt.LABELS)
    assert len(CASES) >= 136


def test_ids_are_unique_and_named_after_the_label():
    ids = [c.id for c in CASES + IMAGING]
    assert len(ids) == len(set(ids))
    for c in CASES:
        assert re.fullmatch(r"[a-z-]+-\d\d", c.id), c.id
        assert c.id.rsplit("-", 1)[0] == c.diagnosis.replace(" ", "-"), c.id


def test_split_is_deterministic_by_case_number():
    for c in CASES:
        n = int(c.id.rsplit("-", 1)[1])
        assert c.split == ("train" if n <= 2 else "test"), c.id
    assert load_cases("bundled", split="train") == [c for c in CASES if c.split == "train"]
    train, test = split_cases(CASES)
    assert len(train) + len(test) == len(CASES) and all(c.split == "test" for c in test)


def test_no_case_leaks_its_own_label_to_an_agent():
    # The complaint and facts reach the patient, the visual findings the doctor: none may name the label.
    for c in CASES + IMAGING:
        assert leaked_labels(c) == [], c.id
        for text in [c.chief_complaint, *(f.text for f in c.facts), c.visual_findings or ""]:
            assert c.diagnosis not in lt.find_labels(text), (c.id, text)


def test_leak_check_catches_a_synonym():
    case = get_case("hives-01")
    leaky = case.model_copy(update={"facts": [*case.facts[:1], case.facts[1].model_copy(
        update={"text": "My sister said it looks like nettle rash."})]})
    assert leaked_labels(leaky) == ["hives"]


def test_leak_check_scans_the_visual_findings_the_doctor_reads():
    case = get_case("caries-04")
    leaky = case.model_copy(update={"visual_findings": "Large cavitated carious lesion on a lower molar."})
    assert leaked_labels(leaky) == ["caries"]


def test_cases_are_synthetic_realistic_shapes():
    for c in CASES:
        assert c.synthetic is True and c.source == "dxgraph-synthetic-v1", c.id
        assert 6 <= len(c.facts) <= 10, c.id
        assert [f.id for f in c.facts] == [f"f{i + 1}" for i in range(len(c.facts))], c.id
        assert c.age is not None and c.sex in ("female", "male"), c.id
        assert c.visual_findings and not c.images and c.workflow is None, c.id
        assert 2 <= len(c.differential) <= 4 and c.diagnosis not in c.differential, c.id
        assert set(c.differential) <= set(lt.LABELS), c.id
        # More than one category of fact, so a doctor has to ask about several topics.
        assert len({f.category for f in c.facts}) >= 4, c.id


def test_facts_are_first_person_without_third_person_pronouns():
    # The rule patient rewrites he/she/his/her into the first person, which would garble
    # a fact about a relative ("my mum ... her arms" -> "my arms").
    pronoun = re.compile(r"\b(he|she|his|her|him|hers|himself|herself)\b", re.I)
    for c in CASES + IMAGING:
        for f in c.facts:
            assert not pronoun.search(f.text), (c.id, f.id, f.text)


def test_cases_of_a_label_are_not_copies():
    by_label: dict[str, list] = {}
    for c in CASES:
        by_label.setdefault(c.diagnosis, []).append(c)
    for label, group in by_label.items():
        complaints = [c.chief_complaint for c in group]
        assert len(set(complaints)) == len(complaints), label
        facts = [f.text for c in group for f in c.facts]
        assert len(set(facts)) == len(facts), label
        ages = {c.age for c in group}
        assert len(ages) == len(group), label


def test_imaging_cases_are_kept_apart_and_point_at_real_images():
    assert IMAGING and all(c.workflow for c in IMAGING)
    assert all(lt.is_imaging_label(c.diagnosis) for c in IMAGING)
    assert not any(c.workflow for c in CASES)
    assert {c.workflow for c in IMAGING} >= {"glaucoma", "diabetic_retinopathy", "cardiomegaly"}
    for c in IMAGING:
        for img in c.images:
            assert img.path.startswith("sample:") or Path(img.path).is_file(), img.path
    assert len(load_cases("bundled-all")) == len(CASES) + len(IMAGING)


def test_get_case_finds_any_bundled_case_and_suggests_close_ids():
    assert get_case("psoriasis-03").diagnosis == "psoriasis"
    assert get_case("glaucoma-01").workflow == "glaucoma"
    with pytest.raises(InputError, match=r"no case 'psoriasis-3'.*did you mean 'psoriasis-03'"):
        get_case("psoriasis-3")


def test_unknown_split_is_refused():
    with pytest.raises(InputError, match="unknown split 'dev'"):
        load_cases("bundled", split="dev")


# -- loader errors -----------------------------------------------------------------------------

GOOD = """
cases:
  - id: acne-01
    chief_complaint: Spots on my face.
    facts: [{id: f1, category: symptom, text: Red bumps.}]
    diagnosis: {diagnosis}
    differential: [rosacea]
"""


def _write(tmp_path: Path, text: str, name: str = "acne.yaml") -> Path:
    folder = tmp_path / "cases"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


def _one_line_error(source) -> str:
    with pytest.raises(InputError) as exc:
        load_cases(source)
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_unknown_label_names_file_case_field_and_suggestion(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = _write(tmp_path, GOOD.replace("{diagnosis}", "akne").replace("acne-01", "acne-02"))
    assert _one_line_error(folder) == (
        "cases/acne.yaml: case 'acne-02': field 'diagnosis': unknown label 'akne' (did you mean 'acne'?)")


def test_synonyms_are_stored_canonical(tmp_path):
    folder = _write(tmp_path, GOOD.replace("{diagnosis}", "acne vulgaris").replace("[rosacea]", "[urticaria]"))
    (case,) = load_cases(folder)
    assert case.diagnosis == "acne" and case.differential == ["hives"]


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda t: t.replace("    chief_complaint: Spots on my face.\n", ""),
     "case 'acne-01': field 'chief_complaint': missing"),
    (lambda t: t.replace("[rosacea]", "[rosacea, spots]"),
     "case 'acne-01': field 'differential[1]': unknown label 'spots'"),
    (lambda t: t.replace("category: symptom", "category: feeling"),
     "case 'acne-01': field 'facts.0.category'"),
    (lambda t: t.replace("    differential", "    colour: red\n    differential"),
     "case 'acne-01': field 'colour': Extra inputs are not permitted"),
    (lambda t: t + "    images: [{path: photos/missing.jpg}]\n",
     "case 'acne-01': field 'images[0].path': image 'photos/missing.jpg' not found"),
    (lambda t: t + "    images: [{path: 'sample:nope'}]\n",
     "case 'acne-01': field 'images[0].path': unknown sample image 'sample:nope'"),
    (lambda t: t.replace("[{id: f1, category: symptom, text: Red bumps.}]",
                         "[{id: f1, text: a}, {id: f1, text: b}]"),
     "case 'acne-01': field 'facts': duplicate fact id 'f1'"),
    (lambda t: t.replace("  - id: acne-01\n", "  - age: 3\n"),
     "case #1: field 'id': missing"),
    (lambda t: t.replace("cases:", "casez:"), "unknown top-level key 'casez'"),
    (lambda t: t.replace("diagnosis: acne", "diagnosis: [acne"), "not valid YAML"),
])
def test_bad_files_give_one_line_errors(tmp_path, edit, expected):
    folder = _write(tmp_path, edit(GOOD.replace("{diagnosis}", "acne")))
    message = _one_line_error(folder)
    assert "acne.yaml" in message and expected in message, message


def test_duplicate_ids_across_files_are_refused(tmp_path):
    folder = _write(tmp_path, GOOD.replace("{diagnosis}", "acne"))
    _write(tmp_path, GOOD.replace("{diagnosis}", "acne"), name="more.yaml")
    message = _one_line_error(folder)
    assert "more.yaml: case 'acne-01': field 'id': duplicate id, already defined in" in message
    assert "acne.yaml" in message


def test_images_resolve_relative_to_the_case_file_and_json_works(tmp_path):
    folder = tmp_path / "set"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    case = {"id": "x-1", "chief_complaint": "My eye is red.", "diagnosis": "pink eye",
            "images": ["img/a.png", {"path": "sample:retina", "modality": "fundus"}]}
    (folder / "cases.json").write_text(json.dumps([case]))
    (loaded,) = load_cases(folder)
    assert loaded.diagnosis == "conjunctivitis"
    assert loaded.images[0].path == str((folder / "img" / "a.png").resolve())
    assert loaded.images[1].path == "sample:retina"


def test_defaults_apply_to_every_case_of_a_file(tmp_path):
    text = "defaults: {synthetic: false, source: mine, split: train}\n" + GOOD.replace("{diagnosis}", "acne")
    (case,) = load_cases(_write(tmp_path, text))
    assert (case.synthetic, case.source, case.split) == (False, "mine", "train")


def test_missing_source_is_explained(tmp_path):
    with pytest.raises(InputError, match="neither 'bundled'"):
        load_cases(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no case files"):
        load_cases(tmp_path / "empty")


def test_assign_splits_is_per_label_and_keeps_one_of_each():
    cases = [c.model_copy(update={"split": "test"}) for c in CASES if c.diagnosis in ("acne", "warts")]
    assigned = assign_splits(cases, train_fraction=0.5)
    assert [c.split for c in assigned] == [c.split for c in CASES if c.diagnosis in ("acne", "warts")]
    few = assign_splits(cases[:2], train_fraction=0.9)
    assert sorted(c.split for c in few) == ["test", "train"]
    with pytest.raises(InputError):
        assign_splits(cases, train_fraction=2)


# -- 3MDBench importer ---------------------------------------------------------------------------

def _png(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (seed, 10, 20)).save(buf, format="PNG")
    return buf.getvalue()


ROWS = [
    {"general_complaint": "I have itchy red patches on my elbows.",
     "complaints": "The patches itch at night. They started two weeks ago! I tried a moisturiser; it helped a bit.",
     "diagnosis": "Atopic dermatitis", "personality": "Choleric"},
    {"general_complaint": "My toe hurts at the nail.",
     "complaints": "The side of my big toe is swollen.\nI cut my nails short.",
     "diagnosis": "ingrown nail", "personality": "phlegmatic"},
    {"general_complaint": "My lip tingles.", "complaints": "Blisters on my lip.",
     "diagnosis": "herpes", "personality": "sanguine"},
    {"general_complaint": "My skin burns.", "complaints": "Red patches on my hands.",
     "diagnosis": "eczema", "personality": "melancholic"},
]


def test_complaints_split_into_sentence_facts():
    facts = complaint_facts(ROWS[0]["complaints"])
    assert [f.text for f in facts] == ["The patches itch at night.", "They started two weeks ago!",
                                       "I tried a moisturiser;", "it helped a bit."]
    assert [f.id for f in facts] == ["f1", "f2", "f3", "f4"]
    assert facts[1].category == "onset" and facts[2].category == "treatment"
    assert guess_category("I take metformin tablets.") == "medication"
    assert guess_category("It is itchy.") == "symptom"


def test_import_json_keyed_by_id_with_image_folders(tmp_path):
    src = tmp_path / "3mdb"
    (src / "images" / "eczema").mkdir(parents=True)
    data = {}
    for i, row in enumerate(ROWS):
        cid = f"case {i}"
        rel = f"images/eczema/{i}.png"
        (src / rel).write_bytes(_png(i))
        data[cid] = {"path": rel, **row}
    (src / "cases.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    cases = import_3mdbench(src / "cases.json", out)
    assert [c.id for c in cases] == ["case-0", "case-1", "case-2", "case-3"]
    first = cases[0]
    assert first.diagnosis == "eczema" and first.personality == "choleric"
    assert first.chief_complaint == ROWS[0]["general_complaint"]
    assert [f.text for f in first.facts][:2] == ["The patches itch at night.", "They started two weeks ago!"]
    assert first.synthetic is False and first.source == "3mdbench"
    assert Path(first.images[0].path).read_bytes() == _png(0)
    # Round trip: the folder loads as a case source, identical to what the importer returned.
    assert load_cases(out) == cases
    # Two eczema cases: one train, one test; single-case labels go to the train split.
    by_label = {(c.diagnosis, c.split) for c in cases}
    assert {("eczema", "train"), ("eczema", "test")} <= by_label


def test_import_parquet_with_image_bytes(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    plain = pa.table({
        "image": [_png(1), _png(2), None, _png(4)],
        **{k: [r[k] for r in ROWS] for k in ("general_complaint", "complaints", "diagnosis", "personality")},
    })
    pq.write_table(plain, tmp_path / "test.parquet")
    cases = import_3mdbench(tmp_path / "test.parquet", tmp_path / "out")
    assert [c.id for c in cases] == ["3mdb-0001", "3mdb-0002", "3mdb-0003", "3mdb-0004"]
    assert [len(c.images) for c in cases] == [1, 1, 0, 1]
    assert Path(cases[1].images[0].path).read_bytes() == _png(2)
    assert cases[1].images[0].path.endswith(".png")
    assert load_cases(tmp_path / "out") == cases
    # Hugging Face datasets store images as {bytes, path} structs.
    columns = ("general_complaint", "complaints", "diagnosis", "personality")
    struct = pa.table({"image": pa.array([{"bytes": _png(1), "path": "a"}, {"bytes": _png(2), "path": "b"}]),
                       **{k: [r[k] for r in ROWS[:2]] for k in columns}})
    pq.write_table(struct, tmp_path / "hf.parquet")
    hf = import_3mdbench(tmp_path / "hf.parquet", tmp_path / "out2")
    assert Path(hf[0].images[0].path).read_bytes() == _png(1)


def test_import_errors_name_the_case_and_field(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.json").write_text(json.dumps({"c1": {**ROWS[0], "diagnosis": "psoriasys"}}))
    with pytest.raises(InputError, match=r"case 'c1': field 'diagnosis': unknown label 'psoriasys' "
                                         r"\(did you mean 'psoriasis'\?\)"):
        import_3mdbench(tmp_path / "a.json", tmp_path / "o1")
    (tmp_path / "b.json").write_text(json.dumps({"c2": {**ROWS[0], "path": "nope.jpg"}}))
    with pytest.raises(InputError, match=r"case 'c2': field 'path': image 'nope.jpg' not found"):
        import_3mdbench(tmp_path / "b.json", tmp_path / "o2")
    pq.write_table(pa.table({"image": [b""], "general_complaint": ["x"], "diagnosis": ["acne"]}),
                   tmp_path / "c.parquet")
    with pytest.raises(InputError, match="missing column 'complaints'"):
        import_3mdbench(tmp_path / "c.parquet", tmp_path / "o3")


# -- CLI ---------------------------------------------------------------------------------------------

def test_cli_list_show_validate_and_import(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["cases", "list", "--split", "test", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == sum(c.split == "test" for c in CASES) and all(r["split"] == "test" for r in rows)
    res = runner.invoke(app, ["cases", "show", "psoriasis-03"])
    assert res.exit_code == 0 and "GROUND TRUTH" in res.output and "diagnosis: psoriasis" in res.output
    shown = json.loads(runner.invoke(app, ["cases", "show", "psoriasis-03", "--json"]).output)
    assert shown["ground_truth_included"] is True and shown["diagnosis"] == "psoriasis"
    res = runner.invoke(app, ["cases", "validate"])
    assert res.exit_code == 0 and "0 with leaks" in res.output
    (tmp_path / "in.json").write_text(json.dumps({"k1": ROWS[0], "k2": ROWS[3]}))
    res = runner.invoke(app, ["cases", "import-3mdbench", str(tmp_path / "in.json"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 0 and "imported 2 cases (1 train, 1 test, 1 labels)" in res.output
    res = runner.invoke(app, ["cases", "list", "--cases", str(tmp_path / "o"), "--json"])
    assert [r["id"] for r in json.loads(res.output)] == ["k1", "k2"]
