"""HELMET (princeton-nlp/HELMET@4526dfb): seven categories of long-context tasks at 8K-128K.

``register(registry)`` adds one task per HELMET dataset (``helmet/<dataset>``), the group ``helmet`` and one
group per category (``helmet/recall``, ``helmet/rag``, ``helmet/rerank``, ``helmet/cite``, ``helmet/longqa``,
``helmet/summ``, ``helmet/icl``), and a summary with HELMET's table: per input length, each category's
average and their average. Importing this package is cheap (the YAML configs are read on registration).
See tasks/helmet/README.md.
"""

from __future__ import annotations

from typing import Any, Mapping

from ._config import LENGTHS, specs

CATEGORY_ORDER = ("recall", "rag", "icl", "cite", "rerank", "longqa", "summ")
"""HELMET's table columns, in its order."""
CATEGORY_TITLES = {"recall": "Recall", "rag": "RAG", "icl": "ICL", "cite": "Cite", "rerank": "Re-rank",
                   "longqa": "LongQA", "summ": "Summ"}

# HELMET dataset -> (module, class, task name, display name). Task names drop the per-length suffix.
_TASKS: dict[str, tuple[str, str, str, str]] = {
    "json_kv": ("recall", "JsonKvTask", "json_kv", "JSON KV"),
    "ruler_niah_mk_2": ("recall", "RulerRecallTask", "ruler_niah_mk_2", "RULER MK Needle"),
    "ruler_niah_mk_3": ("recall", "RulerRecallTask", "ruler_niah_mk_3", "RULER MK UUID"),
    "ruler_niah_mv": ("recall", "RulerRecallTask", "ruler_niah_mv", "RULER MV"),
    "kilt_nq": ("rag", "KiltTask", "kilt_nq", "Natural Questions"),
    "kilt_triviaqa": ("rag", "KiltTask", "kilt_triviaqa", "TriviaQA"),
    "kilt_hotpotqa": ("rag", "KiltTask", "kilt_hotpotqa", "HotpotQA"),
    "kilt_popqa_3": ("rag", "PopQaTask", "kilt_popqa", "PopQA"),
    "msmarco_rerank_psg": ("rerank", "MsMarcoTask", "msmarco_rerank_psg", "MS MARCO"),
    "alce_asqa": ("cite", "HelmetAlceTask", "alce_asqa", "ALCE ASQA"),
    "alce_qampari": ("cite", "HelmetAlceTask", "alce_qampari", "ALCE QAMPARI"),
    "narrativeqa": ("longqa", "NarrativeQaTask", "narrativeqa", "NarrativeQA"),
    "infbench_qa_eng": ("longqa", "InfBenchQaTask", "infbench_qa_eng", "InfiniteBench QA"),
    "infbench_choice_eng": ("longqa", "InfBenchChoiceTask", "infbench_choice_eng", "InfiniteBench MC"),
    "infbench_sum_eng": ("summ", "InfBenchSumTask", "infbench_sum_eng", "InfiniteBench Sum"),
    "multi_lexsum": ("summ", "MultiLexSumTask", "multi_lexsum", "Multi-LexSum"),
    "icl_trec_coarse": ("icl", "IclTask", "icl_trec_coarse", "TREC Coarse"),
    "icl_trec_fine": ("icl", "IclTask", "icl_trec_fine", "TREC Fine"),
    "icl_banking77": ("icl", "IclTask", "icl_banking77", "BANKING77"),
    "icl_clinic150": ("icl", "IclTask", "icl_clinic150", "CLINC150"),
    "icl_nlu": ("icl", "IclTask", "icl_nlu", "NLU"),
}

TABLE: dict[str, tuple[tuple[str, str], ...]] = {
    # HELMET's scripts/collect_results.py ``custom_avgs``: (task, metric) per category.
    "recall": (("json_kv", "substring_exact_match"), ("ruler_niah_mk_2", "ruler_recall"),
               ("ruler_niah_mk_3", "ruler_recall"), ("ruler_niah_mv", "ruler_recall")),
    "rag": (("kilt_nq", "substring_exact_match"), ("kilt_hotpotqa", "substring_exact_match"),
            ("kilt_popqa", "substring_exact_match"), ("kilt_triviaqa", "substring_exact_match")),
    "icl": (("icl_trec_coarse", "exact_match"), ("icl_trec_fine", "exact_match"), ("icl_banking77", "exact_match"),
            ("icl_clinic150", "exact_match"), ("icl_nlu", "exact_match")),
    "cite": (("alce_asqa", "str_em"), ("alce_asqa", "citation_rec"), ("alce_asqa", "citation_prec"),
             ("alce_qampari", "qampari_rec_top5"), ("alce_qampari", "citation_rec"),
             ("alce_qampari", "citation_prec")),
    "rerank": (("msmarco_rerank_psg", "NDCG@10"),),
    "longqa": (("narrativeqa", "judge_score"), ("infbench_qa_eng", "rougeL_f1"), ("infbench_choice_eng", "exact_match")),
    "summ": (("infbench_sum_eng", "judge_f1"), ("multi_lexsum", "judge_f1")),
}


def task_class(dataset: str) -> type:
    from evalsuite.registry import family_class

    from ._base import HelmetTask

    return family_class("helmet", HelmetTask, _TASKS[dataset][2], _config(dataset))


def _config(dataset: str) -> dict[str, Any]:
    """The class attributes of one HELMET dataset's task, its base class (``base``) among them."""
    import importlib

    module, cls_name, short, display = _TASKS[dataset]
    base = getattr(importlib.import_module(f"{__name__}.{module}"), cls_name)
    spec = specs()[dataset]
    attrs: dict[str, Any] = {"base": base, "dataset": dataset, "category": spec.category,
                             "display_name": f"HELMET {display}", "description": _describe(dataset, display)}
    if not getattr(base, "template", ""):
        attrs["template"] = _template(dataset)
    if cls_name == "HelmetAlceTask":
        attrs["alce"] = dataset.split("_", 1)[1]
        attrs["primary_metric"] = "str_em" if dataset == "alce_asqa" else "qampari_rec_top5"
    if cls_name == "RulerRecallTask":
        attrs["primary_metric"] = "ruler_recall"
    if cls_name == "JsonKvTask":
        attrs["primary_metric"] = "substring_exact_match"
    return attrs


def _template(dataset: str) -> str:
    if dataset == "ruler_niah_mv":
        return "ruler_niah_multi"
    if dataset.startswith("ruler_niah"):
        return "ruler_niah"
    return dataset


def _describe(dataset: str, display: str) -> str:
    spec = specs()[dataset]
    metric = next((m for c in TABLE.values() for t, m in c if t == _TASKS[dataset][2]), "")
    return (f"HELMET {spec.category}: {display} at 8K-128K (-T lengths=), "
            f"{'chat template' if spec.use_chat_template else 'completion prompt'}, metric {metric}")


def task_names() -> list[str]:
    return [f"helmet/{_TASKS[d][2]}" for c in CATEGORY_ORDER for d in _TASKS if specs()[d].category == c]


# -- HELMET's table --------------------------------------------------------------------------------
def _by_length(entry: Mapping[str, Any], metric: str) -> dict[int, float]:
    for m in entry.get("metrics") or []:
        if m.get("name") == metric:
            by = (m.get("details") or {}).get("by_length") or {}
            return {int(L): float(v) for L, v in by.items() if v is not None}
    return {}


def table(scores: Mapping[str, Any]) -> dict[int, dict[str, tuple[float, int, int]]]:
    """Per input length, per category: (mean of the category's HELMET numbers that are present, how many
    are present, how many the category has). Missing numbers are skipped, as HELMET's pandas mean does."""
    out: dict[int, dict[str, tuple[float, int, int]]] = {}
    for cat in CATEGORY_ORDER:
        members = TABLE[cat]
        vals: dict[int, list[float]] = {}
        for task, metric in members:
            entry = scores.get(f"helmet/{task}")
            if not entry:
                continue
            for L, v in _by_length(entry, metric).items():
                vals.setdefault(L, []).append(v)
        for L, vs in vals.items():
            out.setdefault(L, {})[cat] = (sum(vs) / len(vs), len(vs), len(members))
    return dict(sorted(out.items()))


def summarize(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows ``helmet <length> <Category>`` in HELMET's column order, then ``helmet <length> Average`` over
    the categories present (HELMET's "Average" needs all seven: ``n_categories`` says how many it has); the
    Average row also carries ``table_row``, the whole row in the column order of HELMET's results sheet
    (Recall, RAG, ICL, Cite, Re-rank, LongQA, Summ, Average)."""
    rows: list[dict[str, Any]] = []
    for L, cats in table(scores).items():
        for cat in CATEGORY_ORDER:
            if cat in cats:
                v, n, total = cats[cat]
                rows.append({"name": f"helmet {L} {CATEGORY_TITLES[cat]}", "value": round(v, 2), "n_tasks": n,
                             "n_expected": total, "length": L, "category": cat})
        avg = [cats[c][0] for c in CATEGORY_ORDER if c in cats]
        value = round(sum(avg) / len(avg), 2)
        table_row = {CATEGORY_TITLES[c]: (round(cats[c][0], 2) if c in cats else None) for c in CATEGORY_ORDER}
        rows.append({"name": f"helmet {L} Average", "value": value, "n_tasks": len(avg),
                     "n_categories": len(avg), "n_expected": len(CATEGORY_ORDER), "length": L,
                     "table_row": {**table_row, "Average": value}})
    return rows


def register(registry: Any) -> None:
    from ._base import HelmetTask

    by_cat: dict[str, list[str]] = {c: [] for c in CATEGORY_ORDER}
    classes = registry.add_family("helmet", HelmetTask, {_TASKS[d][2]: _config(d) for d in _TASKS}, group=None)
    for cls in classes:
        by_cat[cls.category].append(cls.name)
    for cat in CATEGORY_ORDER:
        registry.add_group(f"helmet/{cat}", by_cat[cat])
    registry.add_group("helmet", [n for c in CATEGORY_ORDER for n in by_cat[c]])
    registry.add_summary("helmet", summarize)


__all__ = ["CATEGORY_ORDER", "LENGTHS", "TABLE", "register", "summarize", "table", "task_class", "task_names"]
