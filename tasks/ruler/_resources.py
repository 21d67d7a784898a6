"""RULER's benchmark definitions, kept byte-exact as data files beside this module (see SOURCE.md).

* ``templates.json``: per family the task template, answer prefix and tokens_to_generate
  (``scripts/data/synthetic/constants.py``), plus the niah needle sentence, the noise haystack line and
  the singular-form replacements (``scripts/data/synthetic/niah.py``).
* ``synthetic.yaml``: the 13 task configurations (``scripts/synthetic.yaml``), unmodified.
* ``model_templates.json``: RULER's hand-written model templates (``scripts/data/template.py``), for
  ``-T template=<name>``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

HERE = Path(__file__).resolve().parent
TEMPLATES_FILE = HERE / "templates.json"
CONFIG_FILE = HERE / "synthetic.yaml"
MODEL_TEMPLATES_FILE = HERE / "model_templates.json"
BASE_TEMPLATE = "{task_template}"
"""RULER's ``base`` model template: the task template alone."""


@dataclass(frozen=True)
class Resources:
    templates: Mapping[str, Any]
    tasks: Mapping[str, Any]
    """synthetic.yaml: task name -> {"task": family, "args": {...}}."""
    templates_sha256: str
    config_sha256: str


@lru_cache(maxsize=1)
def resources() -> Resources:
    import yaml

    tbytes = TEMPLATES_FILE.read_bytes()
    cbytes = CONFIG_FILE.read_bytes()
    return Resources(templates=json.loads(tbytes.decode("utf-8")), tasks=yaml.safe_load(cbytes.decode("utf-8")),
                     templates_sha256=hashlib.sha256(tbytes).hexdigest(),
                     config_sha256=hashlib.sha256(cbytes).hexdigest())


@lru_cache(maxsize=1)
def model_templates() -> tuple[Mapping[str, str], str]:
    """RULER's ``Templates`` (name -> template with ``{task_template}``) and the file's sha256."""
    raw = MODEL_TEMPLATES_FILE.read_bytes()
    return json.loads(raw.decode("utf-8")), hashlib.sha256(raw).hexdigest()


def full_template(family: str, model_template: str = BASE_TEMPLATE) -> str:
    """``prepare.py``'s template for a family: ``model_template.format(task_template=...) + answer_prefix``."""
    fam = resources().templates["families"][family]
    return model_template.format(task_template=fam["template"]) + fam["answer_prefix"]
