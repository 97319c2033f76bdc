"""Fact -> question wording for the rule doctor's bank."""

from __future__ import annotations

import doctest
import re

import pytest

from dxgraph.agents.questions import question_from_fact
from dxgraph.simulator.cases import load_cases


def test_question_from_fact():
    assert question_from_fact("I have had the rash for two weeks.") == "Have you had the rash for two weeks?"
    assert question_from_fact("I had chickenpox as a child") == "Did you have chickenpox as a child?"


@pytest.mark.parametrize(("fact", "question"), [
    # Real train facts of the bundled cases, one per rule.
    ("My dad gets hay fever every spring.", "Does your dad get hay fever every spring?"),  # -s verb -> Does
    ("The blisters appeared two days ago.", "Did the blisters appear two days ago?"),  # -ed -> Did
    ("We got a new kitten last month.", "Did you get a new kitten last month?"),  # irregular past
    ("Hot showers and wool jumpers make it much worse.", "Do hot showers and wool jumpers make it much worse?"),
    ("There are painful little cracks over my knuckles.", "Are there painful little cracks over your knuckles?"),
    ("I've never had skin allergies.", "Have you ever had skin allergies?"),  # negatives asked positively
    ("I don't have any fever and my breathing is fine.", "Do you have any fever, and is your breathing fine?"),
    ("Mouthwash for sensitive mouths made no difference.", "Did mouthwash for sensitive mouths make any difference?"),
    ("It comes and goes, and got bad again when the weather turned cold.",
     "Does it come and go, and did it get bad again when the weather turned cold?"),  # verbs agree
    ("When I scratch, the skin gets thick and sometimes weeps a bit.",
     "When you scratch, does the skin get thick and sometimes weep a bit?"),
    ("Before they appeared my lip tingled and burned for a day.",
     "Before they appeared, did your lip tingle and burn for a day?"),
    ("The welts are raised and red and itch intensely.", "Are the welts raised and red, and do they itch intensely?"),
    ("It's been about four days.", "Has it been about four days?"),  # "'s" before "been" is "has"
    ("I do a lot of housework with my hands in water.", "Do you do a lot of housework with your hands in water?"),
    ("On my left forearm.", "Is it on your left forearm?"),  # fragments: a place, a time
    ("Inner thighs and lower belly.", "Is it on your inner thighs and lower belly?"),
    ("About three months ago.", "Did it start about three months ago?"),
    ("No itch, no rash, no flakes.", "Have you had any itch, any rash, any flakes?"),
    # The wording asked for in the issue.
    ("The rash started after gardening.", "Did the rash start after gardening?"),
    ("My father has the same problem.", "Does your father have the same problem?"),
    ("It itches more at night.", "Does it itch more at night?"),
    ("No fever.", "Have you had any fever?"),
    ("Pain is 7 out of 10.", "Is the pain 7 out of 10?"),
])
def test_question_reads_like_a_doctor(fact, question):
    assert question_from_fact(fact) == question


def test_every_train_fact_gets_a_natural_question():
    facts = [f.text for c in load_cases(split="train") for f in c.facts]
    questions = [question_from_fact(f) for f in facts]
    assert len(facts) > 400
    for fact, q in zip(facts, questions, strict=True):
        assert q[:1].isupper() and q.endswith("?") and not q.endswith(" ?"), (fact, q)
        assert "noticed this" not in q and "Is it true that" not in q, (fact, q)
        assert not re.search(r"\b(I|my|me|I'm|I've)\b", q), (fact, q)  # asked in the second person


@pytest.mark.parametrize("junk", ["", "  ", "?", "Yes", "it", "I.", "Not really."])
def test_question_from_fact_never_fails(junk):
    assert question_from_fact(junk) == "Is there anything else you have noticed?"


def test_question_from_fact_docstring_examples():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(question_from_fact, "question_from_fact"):
        runner.run(test)
    assert runner.failures == 0 and runner.tries >= 3
