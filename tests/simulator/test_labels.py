"""The label table: 34 canonical labels, synonyms, whole-phrase longest-match search."""

from __future__ import annotations

import pytest

from dxgraph.errors import ConfigError
from dxgraph.simulator import labels as lt

THREE_MDBENCH = (
    "eczema", "hives", "herpes", "allergic contact dermatitis", "contact dermatitis",
    "seborrheic dermatitis", "rosacea", "chronic lichen", "keratosis pilaris", "molluscum contagiosum",
    "lichen planus", "psoriasis", "acne", "seborrheic keratosis", "vitiligo", "shingles", "mycosis",
    "actinic keratosis", "chickenpox", "warts", "abscess", "ingrown nail", "onychomycosis",
    "onycholysis", "nail dystrophy", "conjunctivitis", "stye", "chalazion", "tonsillitis",
    "periodontitis", "caries", "dental calculus", "stomatitis", "gingivitis",
)


def test_the_34_labels_in_order_and_imaging_labels_apart():
    assert lt.LABELS == THREE_MDBENCH
    assert "glaucoma suspect" in lt.IMAGING_LABELS and "no glaucoma" in lt.IMAGING_LABELS
    assert not set(lt.LABELS) & set(lt.IMAGING_LABELS)
    assert lt.ALL_LABELS == lt.LABELS + lt.IMAGING_LABELS
    assert lt.LABEL_TABLE_VERSION == "1.0"
    assert lt.is_imaging_label("Glaucoma") and not lt.is_imaging_label("acne")


@pytest.mark.parametrize(("text", "label"), [
    ("atopic dermatitis", "eczema"), ("Urticaria", "hives"), ("herpes zoster", "shingles"),
    ("Herpes-Zoster", "shingles"), ("tinea", "mycosis"), ("ringworm", "mycosis"),
    ("fungal infection", "mycosis"), ("athlete\u2019s foot", "mycosis"),
    ("lichen simplex chronicus", "chronic lichen"), ("hordeolum", "stye"), ("tartar", "dental calculus"),
    ("verruca", "warts"), ("varicella", "chickenpox"), ("onychocryptosis", "ingrown nail"),
    ("cold sores", "herpes"), ("HSV-1", "herpes"), ("pink eye", "conjunctivitis"),
    ("tooth decay", "caries"), ("boil", "abscess"), ("meibomian cyst", "chalazion"),
    ("nail fungus", "onychomycosis"), ("solar keratosis", "actinic keratosis"),
    ("seborrhoeic dermatitis", "seborrheic dermatitis"), ("aphthous ulcers", "stomatitis"),
    ("The Psoriasis.", "psoriasis"), ("an abscess", "abscess"), ("pyorrhea", "periodontitis"),
    ("strep throat", "tonsillitis"), ("glaucomatous optic neuropathy", "glaucoma suspect"),
])
def test_normalize_label_maps_synonyms(text, label):
    assert lt.normalize_label(text) == label


@pytest.mark.parametrize("text", ["", None, "dermatitis", "eczema of the hands", "rash", "acneiform eruption"])
def test_normalize_label_needs_an_exact_synonym(text):
    assert lt.normalize_label(text) is None


def test_every_label_is_its_own_synonym():
    for label in lt.ALL_LABELS:
        assert lt.normalize_label(label) == label
        assert label in lt.synonyms(label)


@pytest.mark.parametrize(("text", "found"), [
    # The longest phrase wins where phrases overlap.
    ("allergic contact dermatitis on the wrist", ["allergic contact dermatitis"]),
    ("allergic contact dermatitis, not contact dermatitis", ["allergic contact dermatitis", "contact dermatitis"]),
    ("herpes zoster of the chest", ["shingles"]),
    ("acne rosacea", ["rosacea"]),
    ("water warts", ["molluscum contagiosum"]),
    ("a seborrheic wart and a plantar wart", ["seborrheic keratosis", "warts"]),
    ("seborrheic eczema", ["seborrheic dermatitis"]),
    ("peritonsillar abscess", ["tonsillitis"]),
    ("no glaucoma", ["no glaucoma"]),
    # Whole words only: never inside a longer word.
    ("acneiform eruption", []),
    ("warty papules", []),
    ("herpetic whitlow", []),
    ("styes and a chalazion", ["stye", "chalazion"]),
    # Order of appearance, repeats kept, hyphens and case ignored.
    ("Psoriasis or eczema? Probably PSORIASIS.", ["psoriasis", "eczema", "psoriasis"]),
    ("chicken-pox", ["chickenpox"]),
    ("", []),
])
def test_find_labels(text, found):
    assert lt.find_labels(text) == found


def test_find_labels_never_matches_substrings_of_words():
    # Every one-word synonym glued inside a longer word is not found.
    words = [syn for label in lt.ALL_LABELS for syn in lt.synonyms(label) if " " not in syn]
    assert len(words) > 60
    for syn in words:
        assert lt.find_labels(f"x{syn}x") == [], syn
        assert lt.find_labels(f"{syn}ish") == [], syn


def test_suggest_label_for_typos():
    assert lt.suggest_label("akne") == "acne"
    assert lt.suggest_label("psoriasys") == "psoriasis"
    assert lt.suggest_label("zzzzzz") is None


def test_a_table_mapping_one_synonym_to_two_labels_is_refused(tmp_path):
    bad = tmp_path / "labels.yaml"
    bad.write_text("version: '2'\nlabels:\n  acne: {group: skin, synonyms: [spots]}\n"
                   "  warts: {group: skin, synonyms: [spots]}\n")
    with pytest.raises(ConfigError, match="'spots' maps to both 'acne' and 'warts'"):
        lt.load_label_table(bad)


def test_a_table_with_unknown_keys_is_refused(tmp_path):
    bad = tmp_path / "labels.yaml"
    bad.write_text("version: '2'\nlabels:\n  acne: {group: skin, synonym: [spots]}\n")
    with pytest.raises(ConfigError, match="labels.acne.synonym"):
        lt.load_label_table(bad)
