"""Draft a new workflow from a clinical question with the planner model, for a person to review.

The planner model sees the question, the guideline passages retrieved for it (each with its
published source), the JSON schemas of the registered tools and one built-in workflow as a
format example, and answers with a workflow file in YAML. The answer is checked exactly as a
hand-written file is (``parse_workflow``: schema, tools, inputs, cycles, rules) plus the
drafting checks below; the ``FILE:LINE`` errors go back to the model for a corrected file, at
most ``max_repairs`` times.

Why YAML text rather than JSON-schema structured output of ``Workflow``: the loader's errors
carry line numbers the model can act on; the reviewer reads and edits YAML (with comments);
structured output only guarantees the shape, not that tools exist or rules resolve, so the
repair loop is needed anyway; and the local and llama.cpp-style servers we support do not
all implement ``response_format`` for a schema this nested (unions of str/list/dict).

Nothing drafted is run, and nothing from the model is executed: the YAML is read with
``yaml.safe_load`` (a ``!!python`` tag is a parse error sent back for repair) and rules are
only ever compiled by the safe evaluator in ``rules.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date as _date

import yaml

from dxgraph.errors import ConfigError
from dxgraph.models.base import ChatModel, GenerateConfig, Message, assistant, system, user
from dxgraph.workflows.loader import WorkflowErrors, builtin_dir, parse_workflow
from dxgraph.workflows.retrieval import Passage, find_reference, search
from dxgraph.workflows.schema import Workflow

__all__ = ["DraftResult", "draft_workflow", "build_prompt", "extract_yaml", "render_draft", "DRAFT_FILE"]

DRAFT_FILE = "draft.yaml"
"""The file name the model's answer is checked under (the ``FILE`` in ``FILE:LINE`` errors)."""

_SYSTEM = (
    "You draft diagnostic workflow files for dxgraph, a research system that measures clinical "
    "criteria on medical images with registered tools. You write YAML only. You never invent "
    "tools, tool parameters or literature references: use only the tools and sources you are given. "
    "A person reviews every draft before it is used."
)


@dataclass
class DraftResult:
    """A validated draft and how it was reached.

    Attributes:
        yaml_text: the workflow file as the model wrote it (validated, no header).
        workflow: the parsed workflow.
        passages: the guideline passages shown to the model, best first.
        attempts: model answers needed (1 = valid at once; repairs = attempts - 1).
        errors: for each rejected answer, its error lines, in order.
    """

    yaml_text: str
    workflow: Workflow
    passages: list[Passage]
    attempts: int
    errors: list[list[str]] = field(default_factory=list)

    @property
    def repairs(self) -> int:
        return self.attempts - 1


def _tool_lines() -> list[str]:
    from dxgraph.tools.registry import registry

    specs = sorted(registry().values(), key=lambda s: s.name)
    return [json.dumps(s.json_schema(), default=str, separators=(",", ":")) for s in specs]


def _example() -> str:
    return (builtin_dir() / "glaucoma.yaml").read_text(encoding="utf-8")


def build_prompt(question: str, passages: list[Passage]) -> str:
    """The drafting request: question, cited passages, tool schemas, format example, rules."""
    blocks = []
    for i, p in enumerate(passages, start=1):
        blocks.append(f"[{i}] {p.title} (topic: {p.topic})\n{p.text}\nSource: {p.source}\n"
                      f"Cite as: {json.dumps(p.reference(), ensure_ascii=False)}")
    refs = {p.ref for p in passages}
    return "\n\n".join([
        f"QUESTION: {question.strip()}",
        "GUIDELINE PASSAGES (retrieved from the project's guideline corpus; base every criterion on them):\n\n"
        + "\n\n".join(blocks),
        "REGISTERED TOOLS (JSON schema per tool; parameters with \"x-kind\":\"input\" are data and go under "
        "'inputs', bound to a workflow input name or an earlier step's output; \"x-kind\":\"arg\" are literal "
        "settings and go under 'args'; 'outputs' are what the tool returns, in order):\n"
        + "\n".join(_tool_lines()),
        "FORMAT EXAMPLE (a built-in workflow; copy its structure, not its content unless it fits the question):\n"
        + _example(),
        "WRITE the workflow for the QUESTION as one YAML document inside a ```yaml code block, nothing else. Rules:\n"
        "- Use only the registered tools above, with their exact parameter names.\n"
        "- Start each indicator with a load_image step (inputs: {path: <workflow input name>}) where that tool exists.\n"
        "- A rule may use only names produced by its own indicator's steps; it allows comparisons, and/or/not, "
        "arithmetic and 'in'; strings in double quotes (answer == \"yes\"). No function calls, no attributes.\n"
        "- Qualitative signs: ask the vision-language tool a closed yes/no question; rule answer == \"yes\".\n"
        "- Thresholds come from the passages' 'Measure' lines; say in each description which source gives them.\n"
        "- 'references' lists only sources of the passages above, copied from their 'Cite as' entries "
        f"(ids: {', '.join(sorted(refs))}); every indicator cites at least one of them by id.\n"
        "- Choose decision method weighted (with threshold), k_of_n (with k), all or any; no 'calibration' key.",
    ])


def extract_yaml(answer: str) -> str:
    """The YAML in a model answer: the first fenced code block, else the whole answer."""
    m = re.search(r"```(?:ya?ml)?[ \t]*\n(.*?)(?:```|\Z)", answer, flags=re.DOTALL | re.IGNORECASE)
    text = m.group(1) if m else answer
    return text.strip("\n") + "\n"


def _top_lines(text: str) -> dict[tuple, int]:
    """Lines of the top-level keys, references items and indicators, for drafting errors."""
    lines: dict[tuple, int] = {}
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            lines[(key.value,)] = key.start_mark.line + 1
            if isinstance(value, yaml.SequenceNode):
                for i, item in enumerate(value.value):
                    lines[(key.value, i)] = item.start_mark.line + 1
    return lines


def _draft_checks(wf: Workflow, text: str, passages: list[Passage]) -> list[ConfigError]:
    """What a draft must satisfy beyond a valid file: real, retrieved sources behind every criterion."""
    lines = _top_lines(text)
    errors: list[ConfigError] = []

    def err(loc: tuple, msg: str) -> None:
        errors.append(ConfigError(msg, file=DRAFT_FILE, line=lines.get(loc) or lines.get(loc[:1]) or 1))

    retrieved = {p.ref for p in passages}
    allowed = ", ".join(sorted(retrieved))
    cited_retrieved = False
    for i, ref in enumerate(wf.references):
        hit = find_reference(ref.id, ref.url)
        if hit is None:
            err(("references", i), f"reference {ref.id!r} is not a source of the guideline corpus; "
                                   f"cite only the passages' sources (ids: {allowed})")
        elif hit.ref in retrieved:
            cited_retrieved = True
    if not wf.references:
        err(("id",), f"the draft has no 'references'; list the passages' sources it rests on (ids: {allowed})")
    elif not cited_retrieved:
        err(("references",), f"none of the references is a retrieved passage's source; cite them (ids: {allowed})")
    for i, ind in enumerate(wf.indicators):
        if not ind.references:
            err(("indicators", i), f"indicator {ind.id!r} cites no reference; add 'references: [ID]' naming its source")
    if wf.calibration is not None:
        err(("calibration",), "a draft must not carry a 'calibration' block; calibrate it later with 'dxgraph workflows calibrate'")
    return errors


def _check(answer: str, passages: list[Passage]) -> tuple[str, Workflow | None, list[str]]:
    text = extract_yaml(answer)
    try:
        wf = parse_workflow(text, file=DRAFT_FILE)
    except WorkflowErrors as exc:
        return text, None, [str(e) for e in exc.errors]
    problems = _draft_checks(wf, text, passages)
    return text, (None if problems else wf), [str(e) for e in problems]


def _repair_request(errors: list[str]) -> str:
    return (
        "That file is not valid. The errors, as FILE:LINE: message (lines count from the first line of the "
        "YAML inside your code block):\n" + "\n".join(f"- {e}" for e in errors)
        + "\n\nUse only the REGISTERED TOOLS and the 'Cite as' sources of the first message. Answer with the "
        "complete corrected workflow file as one ```yaml code block, nothing else."
    )


async def draft_workflow(
    question: str,
    model: ChatModel,
    *,
    k: int = 6,
    max_repairs: int = 3,
    retriever: Callable[[str, int], list[Passage]] | None = None,
    config: GenerateConfig | None = None,
) -> DraftResult:
    """Draft a workflow answering ``question`` from retrieved guideline passages.

    Args:
        question: the clinical question, e.g. "Is there pleural effusion on this radiograph?".
        model: the planner model.
        k: how many guideline passages to retrieve and show.
        max_repairs: how many times an invalid answer is sent back with its errors.
        retriever: ``(query, k) -> passages``; default the shipped corpus' ``search``.
        config: generation settings (default: temperature 0, room for a whole file).

    Returns:
        The first answer that validates, with the passages and the rejected attempts' errors.

    Raises:
        ConfigError: the question is empty, or no valid file came after ``max_repairs`` repairs
            (the message lists the last answer's errors).
    """
    if not question or not question.strip():
        raise ConfigError("the question is empty; ask e.g. 'Is there pleural effusion on this chest radiograph?'")
    if max_repairs < 0:
        raise ConfigError(f"max_repairs must be 0 or more, got {max_repairs!r}")
    passages = (retriever or (lambda q, n: search(q, k=n)))(question, k)
    # A whole file is long: room for ~4k tokens and a timeout for a slow server to write them.
    config = config or GenerateConfig(temperature=0.0, max_tokens=4096, timeout_s=300.0)
    first: list[Message] = [system(_SYSTEM), user(build_prompt(question, passages))]
    messages = first
    history: list[list[str]] = []
    for attempt in range(1, max_repairs + 2):
        out = await model.generate(messages, config=config)
        text, wf, errors = _check(out.text, passages)
        if wf is not None:
            return DraftResult(yaml_text=text, workflow=wf, passages=passages, attempts=attempt, errors=history)
        history.append(errors)
        # Only the latest answer goes back: the context stays bounded however many rounds run.
        messages = first + [assistant(out.text), user(_repair_request(errors))]
    shown = "; ".join(history[-1][:8]) + (f" (and {len(history[-1]) - 8} more)" if len(history[-1]) > 8 else "")
    raise ConfigError(f"the planner model gave no valid workflow after {max_repairs} repair round(s); last errors: {shown}")


def render_draft(result: DraftResult, *, model_name: str, question: str, when: _date | None = None) -> str:
    """The file to write: a review header, the sources it was drafted from, then the YAML."""
    day = (when or _date.today()).isoformat()
    q = " ".join(question.split())
    header = [
        f"# DRAFT written by {model_name} on {day} from {q!r} — review before use",
        f"# Drafted from {len(result.passages)} guideline passages ({result.repairs} repair round(s)); "
        "nothing in it has been run.",
        "# Check every tool, threshold and reference against the cited source, then run",
        "# 'dxgraph workflows validate FILE' and 'dxgraph evaluate --workflow FILE --data DIR'.",
    ]
    header += [f"#   [{p.ref}] {p.title}" for p in result.passages]
    return "\n".join(header) + "\n" + result.yaml_text
