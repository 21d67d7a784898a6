"""evalsuite: a benchmark and evaluation harness for long-context and long-generation language models.

The package root stays light: importing it (and the CLI) never imports torch, transformers, vllm or comet.
"""

__version__ = "0.1.0"

from .errors import BackendUnavailable, UserError
from .types import (ContentPart, Generation, GenParams, Message, MetricResult, Record, Request,
                    Sample)

__all__ = [
    "BackendUnavailable", "ContentPart", "GenParams", "Generation", "Message", "MetricResult",
    "Record", "Request", "Sample", "UserError", "__version__", "load_run",
]


def load_run(path):  # type: ignore[no-untyped-def]
    """A run folder (``results/<run-id>``, or a run id) for analysis: ``.scores()`` and ``.samples()``
    are pandas DataFrames (see ``evalsuite.analysis``); pandas is imported here, not with the package."""
    from .analysis import load_run as _load_run

    return _load_run(path)
