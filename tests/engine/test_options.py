"""One option mechanism (evalsuite/options.py): the shared validators, ``Option`` tables for tasks (``-T``),
backends (``-B``) and the judge (``-J``), each bad value one line and exit 2 through the CLI."""

from __future__ import annotations

import pytest

from evalsuite import options as O
from evalsuite.errors import UserError
from evalsuite.options import Option, parse_options
from evalsuite.registry import Registry


@pytest.mark.parametrize("fn,good,bad", [
    (O.positive_int, [("1", 1), (" 7 ", 7), (3, 3)], ["0", "-2", "x", "1.5"]),
    (O.non_negative_int, [("0", 0), ("12", 12)], ["-1", "a"]),
    (O.positive_float, [("0.5", 0.5), ("3", 3.0)], ["0", "-1", "nan", "x"]),
    (O.non_negative_float, [("0", 0.0), ("2.5", 2.5)], ["-0.1", "nan"]),
    (O.probability, [("0", 0.0), ("1", 1.0), ("0.25", 0.25)], ["1.01", "-0.1", "nan"]),
    (O.parse_bool, [("YES", True), ("off", False), (True, True)], ["maybe", ""]),
    (O.choice("a", "b"), [("a", "a"), ("b", "b")], ["c", "A", ""]),
])
def test_shared_validators(fn, good, bad):
    for raw, want in good:
        assert fn(raw) == want
    for raw in bad:
        with pytest.raises(ValueError):
            fn(raw)


def test_choice_message_and_parse_options_messages():
    with pytest.raises(ValueError, match="one of x, y"):
        O.choice("x", "y")("z")
    with pytest.raises(ValueError, match="^pick x$"):
        O.choice("x", message="pick x")("z")
    spec = {"n": Option(O.positive_int, 3, "count"), "flag": (O.parse_bool, False)}  # a (type, default) pair too
    assert parse_options(spec, {}, "who") == {"n": 3, "flag": False}
    assert parse_options(spec, {"n": "4", "flag": "yes"}, "who") == {"n": 4, "flag": True}
    assert parse_options(spec, {"n": "4"}, "who", defaults=False) == {"n": 4}
    with pytest.raises(UserError, match=r"^who: bad value for option 'n': '0' \(must be positive\)$"):
        parse_options(spec, {"n": "0"}, "who")
    with pytest.raises(UserError, match=r"^who: unknown option\(s\) \['m'\]; accepted: \['flag', 'n'\]$"):
        parse_options(spec, {"m": "1"}, "who")


def test_every_task_and_backend_declares_option_records():
    reg = Registry()
    reg.load_all()
    for name, entry in reg.tasks.items():
        for key, opt in (getattr(entry.factory, "options", {}) or {}).items():
            assert isinstance(opt, Option), (name, key)
            assert getattr(opt.type, "__module__", "") != entry.factory.__module__ or not \
                opt.type.__name__.lstrip("_").startswith(("positive", "nonneg", "non_negative", "count")), \
                f"{name}: option {key} has its own copy of a shared validator ({opt.type.__name__})"
    for name in ("hf", "embedded", "lmeval", "gold", "echo", "replay"):
        factory = reg.backend(name)
        table = getattr(factory, "options", None) or {**getattr(factory, "extra_options", {})}
        assert all(isinstance(o, Option) for o in table.values()), name
    from evalsuite.backends.openai import _option_spec
    from evalsuite.judge import GEN_KEYS

    assert all(isinstance(o, Option) for o in [*_option_spec().values(), *GEN_KEYS.values()])


@pytest.mark.parametrize("args,message", [
    (["--tasks", "deltabench", "-T", "max_tokens=0"],
     "deltabench: bad value for option 'max_tokens': '0' (must be positive)"),
    (["--tasks", "toy/addition", "-T", "n=many"], "toy/addition: bad value for option 'n': 'many'"),
    (["--tasks", "toy/addition", "-B", "delay=soon"], "backend gold: bad value for delay='soon'"),
    (["--tasks", "toy/addition", "-B", "dela=1"], "backend gold: unknown option(s) ['dela'] (did you mean 'delay'?)"),
    (["--tasks", "toy/addition", "--judge-backend", "echo", "-J", "temperature=warm"],
     "judge option temperature='warm'"),
])
def test_bad_options_are_one_line_and_exit_2(cli, args, message):
    r = cli("run", "--backend", "gold", "--no-progress", *args)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr, r.stderr
