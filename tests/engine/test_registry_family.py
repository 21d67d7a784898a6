"""``Registry.add_family``: one task class per configuration, registered like ``add_task`` (contracts checked),
named ``<prefix>/<suffix>``, with the family as a group; and every built-in benchmark registers through it."""

from __future__ import annotations

import pytest

from evalsuite.contracts import ContractError, MultiPass
from evalsuite.registry import Registry, family_class
from evalsuite.task import BaseTask, Option
from evalsuite.types import GenParams, Request, Sample


class Base(BaseTask):
    """A family base."""

    version = "1"
    dataset = ""
    options = {"n": Option(int, 2, "samples")}

    def samples(self):
        for i in range(self.opts["n"]):
            yield Sample(id=str(i), index=i, input=self.dataset, target=self.dataset)

    def request(self, sample):
        return Request.new(str(sample.input), GenParams(max_tokens=4))

    def metrics(self):
        return []

    def gold(self, sample):
        return str(sample.target)


class Other(Base):
    pass


def test_add_family_registers_each_configuration_and_the_group():
    reg = Registry()
    classes = reg.add_family("fam", Base, {
        "a": {"dataset": "A", "description": "first"},
        "b/x-1": {"dataset": "B", "description": "second", "version": "2", "base": Other},
    })
    assert [c.name for c in classes] == ["fam/a", "fam/b/x-1"]
    assert reg.groups["fam"] == ["fam/a", "fam/b/x-1"]
    a, b = (reg.task(n).factory for n in ("fam/a", "fam/b/x-1"))
    assert (a.dataset, a.version, reg.task("fam/a").description) == ("A", "1", "first")
    assert (b.dataset, b.version, reg.task("fam/b/x-1").description) == ("B", "2", "second")
    assert issubclass(b, Other) and not issubclass(a, Other) and a.__module__ == Base.__module__
    assert b.__name__.isidentifier()
    assert a(n="3").describe() == {"name": "fam/a", "version": "1", "options": {"n": 3}}
    assert "base" not in vars(b)  # the base is the parent class, not an attribute


def test_group_name_and_no_group():
    reg = Registry()
    reg.add_family("p", Base, {"a": {}}, group="grp")
    reg.add_family("q", Base, {"a": {}}, group=None)
    assert reg.groups == {"grp": ["p/a"]}


def test_a_family_that_breaks_a_declared_contract_fails_at_registration():
    class Broken(Base, MultiPass):  # declares MultiPass without next_request
        pass

    with pytest.raises(ContractError, match="MultiPass"):
        Registry().add_family("bad", Broken, {"a": {}})


def test_family_class_is_what_add_family_registers():
    reg = Registry()
    (cls,) = reg.add_family("fam", Base, {"a": {"dataset": "A"}})
    again = family_class("fam", Base, "a", {"dataset": "A"})
    assert (again.name, again.dataset, again.__name__, again.__mro__[1]) == (cls.name, cls.dataset, cls.__name__, Base)


@pytest.mark.parametrize("prefix,count", [("alce", 2), ("lciteeval", 11), ("longbench_cite", 6), ("longgenbench_wu", 2),
                                          ("longbench", 21), ("longbench_e", 13), ("longproc", 16), ("punchbench", 18),
                                          ("helmet", 21), ("ruler", 13), ("longgenbench_liu", 6)])
def test_builtin_families_register_through_add_family(prefix, count):
    reg = Registry()
    reg.load_all()
    names = [n for n in reg.tasks if n.split("/", 1)[0] == prefix]
    assert len(names) == count
    for n in names:
        cls = reg.task(n).factory
        assert cls.name == n and cls.__name__ == f"{cls.__mro__[1].__name__}_{n.split('/', 1)[1]}".replace(
            "/", "_").replace("-", "_").replace(".", "_")
