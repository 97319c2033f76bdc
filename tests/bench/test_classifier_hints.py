"""``--hints classifier:PATH`` (issue 13, item 3): a local image classifier's top-3 labels per
case, computed from the case's own pictures, in place of a CSV. A tiny random-weight ViT is
built here (no download); what it says is meaningless, what is checked is that the hints are
its ranking, mapped to dxgraph labels, and that nothing but pixels reaches it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dxgraph.bench.classifier_hints import check_same_hints, classifier_hints, hints_sha256
from dxgraph.bench.protocol import read_hints
from dxgraph.cli import app
from dxgraph.errors import InputError
from dxgraph.models.classifier import classifier_sha256
from dxgraph.simulator.cases import load_cases
from dxgraph.store import Store
from dxgraph.types import Case, ImageRef
from tests.bench.test_protocol_3mdbench import ROWS, _json_layout
from tests.subprocess_cli import one_error, run_cli

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

# Known labels, a synonym of one of them, and a class name that names no dxgraph label.
CLASS_NAMES = ["eczema", "acne", "psoriasis", "rosacea", "not-a-dxgraph-label", "Atopic dermatitis"]
UNKNOWN = 4


def _save_vit(folder, seed: int = 0, names=CLASS_NAMES, boost_unknown: bool = True):
    torch.manual_seed(seed)
    config = transformers.ViTConfig(image_size=32, patch_size=16, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=37,
                                    id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    model = transformers.ViTForImageClassification(config)
    if boost_unknown:  # the unknown class ranks first: it must be dropped, not shift the top 3
        with torch.no_grad():
            model.classifier.bias[UNKNOWN] += 50.0
    model.save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    return _save_vit(tmp_path_factory.mktemp("vit"))


def _png(path, seed: int):
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


def _cases(tmp_path, n: int = 4) -> list[Case]:
    labels = ["eczema", "acne", "psoriasis", "rosacea"]
    return [Case(id=f"c{i}", chief_complaint=f"complaint {i}", diagnosis=labels[i % 4],
                 images=[ImageRef(path=_png(tmp_path / f"c{i}.png", i))]) for i in range(n)]


def _direct_probs(folder, paths) -> np.ndarray:
    """The classifier's probabilities by a plain transformers forward pass."""
    from PIL import Image

    model = transformers.ViTForImageClassification.from_pretrained(folder).eval()
    processor = transformers.ViTImageProcessor.from_pretrained(folder)
    with torch.no_grad():
        logits = model(**processor(images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt")).logits
    return torch.softmax(logits, -1).numpy()


def _expected(probs: np.ndarray) -> list[str]:
    canon = {"eczema": "eczema", "acne": "acne", "psoriasis": "psoriasis", "rosacea": "rosacea",
             "Atopic dermatitis": "eczema"}
    ranked = [canon[CLASS_NAMES[i]] for i in np.argsort(-probs, kind="stable") if CLASS_NAMES[i] in canon]
    return list(dict.fromkeys(ranked))[:3]


def test_hints_are_the_classifiers_ranking_mapped_unknown_dropped(vit, tmp_path):
    cases = _cases(tmp_path)
    hints, skipped = classifier_hints(str(vit), cases, batch_size=3)  # batches of 3 over 4 cases
    probs = _direct_probs(vit, [c.images[0].path for c in cases])
    assert skipped == [] and sorted(hints) == [c.id for c in cases]
    assert all(int(np.argmax(row)) == UNKNOWN for row in probs)  # the unknown class is top everywhere...
    for case, row in zip(cases, probs):
        assert hints[case.id] == _expected(row), case.id  # ...and dropped; the rest in score order
        assert len(hints[case.id]) == 3 and "not-a-dxgraph-label" not in hints[case.id]


def test_a_case_with_several_pictures_ranks_their_mean_score(vit, tmp_path):
    paths = [_png(tmp_path / "a.png", 11), _png(tmp_path / "b.png", 12)]
    case = Case(id="two", chief_complaint="x", diagnosis="acne", images=[ImageRef(path=p) for p in paths])
    hints, _ = classifier_hints(str(vit), [case])
    assert hints["two"] == _expected(_direct_probs(vit, paths).mean(axis=0))


def test_the_classifier_sees_pixels_only_poisoned_labels_ids_and_texts_change_nothing(vit, tmp_path):
    cases = _cases(tmp_path)
    poisoned = [c.model_copy(update={"id": f"renamed-{cases[(i + 1) % 4].diagnosis}-{i}",
                                     "diagnosis": cases[(i + 1) % 4].diagnosis,
                                     "differential": [cases[(i + 2) % 4].diagnosis],
                                     "chief_complaint": f"I am sure this is {cases[(i + 1) % 4].diagnosis}"})
                for i, c in enumerate(cases)]
    assert all(p.diagnosis != c.diagnosis for p, c in zip(poisoned, cases))
    clean, _ = classifier_hints(str(vit), cases)
    dirty, _ = classifier_hints(str(vit), poisoned)
    assert [dirty[p.id] for p in poisoned] == [clean[c.id] for c in cases]


def test_cases_without_a_picture_are_refused_for_a_run_and_skipped_for_a_csv(vit, tmp_path):
    cases = [*_cases(tmp_path, 2), Case(id="bare", chief_complaint="x", diagnosis="acne")]
    with pytest.raises(InputError, match=r"case 'bare' has no image \(1 evaluated case"):
        classifier_hints(str(vit), cases)
    hints, skipped = classifier_hints(str(vit), cases, skip_without_image=True)
    assert skipped == ["bare"] and sorted(hints) == ["c0", "c1"]


def test_a_classifier_whose_labels_name_no_dxgraph_label_is_refused_naming_a_few(tmp_path):
    folder = tmp_path / "alien"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"id2label": {str(i): f"class_{i}" for i in range(6)}}))
    (folder / "preprocessor_config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match=r"none of the classifier's 6 labels \('class_0', 'class_1', 'class_2', "
                                         r"'class_3', \.\.\.\) is a dxgraph label"):
        classifier_hints(str(folder), _cases(tmp_path, 1))


def test_the_model_hash_follows_the_weights_not_the_path(tmp_path):
    a = _save_vit(tmp_path / "a", seed=1)
    b = _save_vit(tmp_path / "b", seed=1)
    assert classifier_sha256(a) == classifier_sha256(b)
    _save_vit(b, seed=2)
    assert classifier_sha256(a) != classifier_sha256(b)


def _imported(tmp_path):
    out = tmp_path / "cases"
    res = CliRunner().invoke(app, ["cases", "import-3mdbench", str(_json_layout(tmp_path / "src")), "-o", str(out),
                                   "--train-fraction", "1"])
    assert res.exit_code == 0, res.output
    return out


def _run(*args):
    return CliRunner().invoke(app, ["bench", "run", *args])


def test_cli_protocol_run_with_a_classifier_records_and_resumes_its_hints(vit, tmp_path):
    out, url = _imported(tmp_path), f"sqlite:///{tmp_path / 's.db'}"
    base = ["--run-id", "k", "--protocol", "3mdbench", "--cases", str(out), "--hints", f"classifier:{vit}",
            "--strategy", "dialogue+hints", "--no-progress", "--db", url]
    res = _run(*base)
    assert res.exit_code == 0, res.output
    assert "3/3 done" in res.output
    store = Store(url)
    assert {(r.case_id, r.strategy) for r in store.samples("k", "done")} == {(c, "dialogue+hints") for c in ROWS}
    stored = json.loads(store.get_run("k").config_json)
    expected, _ = classifier_hints(str(vit), load_cases(str(out)))
    assert stored["hints_used"] == expected and sorted(expected) == sorted(ROWS)
    assert stored["manifest"]["hints"] == {"classifier": str(vit.resolve()), "model_sha256": classifier_sha256(vit),
                                           "sha256": hints_sha256(expected), "n_cases": 3}
    assert stored["grid"]["hints_classifier_sha256"] == classifier_sha256(vit)
    again = _run(*base)  # same folder content: nothing re-planned, nothing re-run
    assert again.exit_code == 0 and "skipped 3 already done" in again.output, again.output
    _save_vit(vit.parent / "other", seed=5)
    import shutil

    shutil.copy(vit.parent / "other" / "model.safetensors", vit / "model.safetensors")
    try:
        refused = _run(*base)  # in process, the InputError that `dxgraph` turns into exit 2
        assert isinstance(refused.exception, InputError), refused.output
        assert "differs in hints_classifier_sha256" in str(refused.exception)
    finally:
        _save_vit(vit)  # the module's fixture folder back as it was


def test_a_resume_whose_pictures_now_give_other_hints_is_refused():
    stored = {"manifest": {"hints": {"classifier": "/m", "model_sha256": "ab", "sha256": "1" * 64, "n_cases": 3}}}
    same = {"hints": dict(stored["manifest"]["hints"])}
    check_same_hints("r", stored, same)
    with pytest.raises(InputError, match="started with other classifier hints"):
        check_same_hints("r", stored, {"hints": {**same["hints"], "sha256": "2" * 64}})


def test_bench_hints_writes_a_csv_that_read_hints_reads_back(vit, tmp_path):
    out, csv_file = _imported(tmp_path), tmp_path / "h" / "hints.csv"
    res = CliRunner().invoke(app, ["bench", "hints", "--classifier", str(vit), "--cases", str(out),
                                   "--out", str(csv_file)])
    assert res.exit_code == 0, res.output
    assert f"wrote {csv_file}: top-3 labels of 3 case(s)" in res.output
    cases = load_cases(str(out))
    assert read_hints(str(csv_file), cases) == classifier_hints(str(vit), cases)[0]
    assert csv_file.read_text().splitlines()[0] == "case_id,top1,top2,top3"


def test_bad_classifier_paths_are_one_line_exit_2(tmp_path):
    out = _imported(tmp_path)
    missing = tmp_path / "no-such-model"
    line = one_error(run_cli("bench", "run", "--run-id", "x", "--protocol", "3mdbench", "--cases", str(out),
                             "--hints", f"classifier:{missing}", "--no-progress", "--db",
                             f"sqlite:///{tmp_path / 's.db'}"))
    assert f"classifier folder {str(missing)!r} does not exist" in line
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text("{}")
    line = one_error(run_cli("bench", "hints", "--classifier", str(half), "--cases", str(out),
                             "--out", str(tmp_path / "h.csv")))
    assert "has no preprocessor_config.json" in line


def test_an_empty_classifier_spec_names_no_folder_rather_than_the_working_directory():
    from dxgraph.bench.grid import BenchConfig
    from dxgraph.bench.protocol import load_hints

    config = BenchConfig(run_id="r", hints="classifier:")
    assert config.hints == "classifier:"
    with pytest.raises(InputError, match="names no folder"):
        load_hints(config.hints, [])


def test_bench_hints_on_a_case_set_without_pictures_refuses_rather_than_write_an_empty_csv(vit, tmp_path):
    out = tmp_path / "h.csv"
    res = CliRunner().invoke(app, ["bench", "hints", "--classifier", str(vit), "--split", "test", "--out", str(out)])
    assert isinstance(res.exception, InputError) and "has a picture" in str(res.exception), res.output
    assert not out.exists()
