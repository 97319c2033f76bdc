"""The LLM patient against a real llama.cpp server serving SmolLM2: plumbing, not quality.

A 135M model cannot play a temperament; what is under test is that each turn's prompt
carries the policy's released facts, the server's grammar keeps the reply a PatientOutput,
revealed ids stay within what the policy released, and the disclosure record is filled in.
"""

from __future__ import annotations

import pytest

from dxgraph.models.openai_compat import OpenAICompatModel
from dxgraph.simulator.patient_llm import LLMPatient
from dxgraph.simulator.personas import load_personas
from tests.models.test_llamacpp import llama_server  # noqa: F401  (the module-scoped server fixture)
from tests.simulator.test_disclosure import CASE

pytestmark = [pytest.mark.llamacpp, pytest.mark.slow]


@pytest.mark.parametrize("temperament", ["melancholic", "choleric"])
async def test_llm_patient_turns_against_llama_cpp(llama_server, temperament):  # noqa: F811
    model = OpenAICompatModel("smollm2", llama_server, timeout_s=120)
    patient = LLMPatient(model, max_tokens=80, worries=["My joints ache every morning."])
    patient.reset(CASE, load_personas()[temperament], seed=2)
    replies = [await patient.step(q) for q in ("Does the rash itch?", "Where is the rash?")]
    await model.aclose()
    released = {f.id for f in CASE.facts}
    for r in replies:
        assert r.text.strip() and r.disclosure is not None and r.disclosure.words > 0
        assert set(r.revealed) <= released and set(r.disclosure.asked) <= set(r.revealed)
        assert r.output_tokens > 0
