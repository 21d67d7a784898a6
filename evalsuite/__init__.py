"""evalsuite: a benchmark and evaluation harness for long-context and long-generation language models.

The package root stays light: importing it (and the CLI) never imports torch, transformers, vllm or comet.
"""

__version__ = "0.1.0"

from .errors import BackendUnavailable, UserError
from .types import (ContentPart, Generation, GenParams, Message, MetricResult, Record, Request,
                    Sample)

__all__ = [
    "BackendUnavailable", "ContentPart", "GenParams", "Generation", "Message", "MetricResult",
    "Record", "Request", "Sample", "UserError", "__version__",
]
