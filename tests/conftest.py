"""Shared fixtures. Tests run offline: the hub is switched off for every test and subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
PLUGIN_DIR = Path(__file__).resolve().parent.parent / "docs" / "template"

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


def cli_env(extra: dict[str, str] | None = None, plugin: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVALSUITE_")}
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    if plugin:
        env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra or {})
    return env


def run_cli(args: list[str], cwd: Path | str | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalsuite.cli", *args], cwd=cwd, env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli(tmp_path):
    """Run the CLI in a subprocess with the toy plugin importable; cwd is a fresh temp folder."""

    def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 300):
        return run_cli(list(args), cwd=tmp_path, env=cli_env(env), timeout=timeout)

    return _run


@pytest.fixture(scope="session")
def word_tokenizer_dir(tmp_path_factory) -> Path:
    """A tiny word-level tokenizer folder with a ChatML chat template (no transformers needed)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders

    words = ["<|im_start|>", "<|im_end|>", "<unk>"] + [f"w{i}" for i in range(200)] + \
        ["user", "assistant", "system", "\n", "The", "answer", "is", "Hello", "world"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    d = tmp_path_factory.mktemp("wordtok")
    tok.save(str(d / "tokenizer.json"))
    template = ("{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> "
                "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}")
    (d / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": template, "bos_token": None, "eos_token": "<|im_end|>", "model_max_length": 4096}))
    return d


# hf / embedded backend fixtures (real SmolLM2 tokenizer, tiny local Llamas); defined in hf_fixtures.py.
from hf_fixtures import chain_llama_dir, smollm2_tokenizer_dir, tiny_llama_dir  # noqa: E402,F401

# openai backend: a fake OpenAI-compatible server on 127.0.0.1; defined in openai_fake.py.
from openai_fake import fake_openai  # noqa: E402,F401


@pytest.fixture(scope="session")
def helmet_data(tmp_path_factory) -> Path:
    """HELMET's synthetic fixture data in the official layout (tests/helmet_fixture.py)."""
    import helmet_fixture

    return helmet_fixture.build(tmp_path_factory.mktemp("helmet") / "data")


@pytest.fixture(scope="session")
def helmet_word_tokenizer(tmp_path_factory) -> Path:
    import helmet_fixture

    return helmet_fixture.build_word_tokenizer(tmp_path_factory.mktemp("helmet-wordtok"))
