"""Build a tiny, randomly initialised COMET checkpoint offline (tests, benchmarks, smoke runs).

Run with the COMET environment's interpreter::

    <comet-env>/bin/python evalsuite/metrics/_comet_tiny.py OUT_DIR [--kind regression_metric] [--text FILE]

It writes ``OUT_DIR/tiny-xlmr/`` (a small XLM-R-shaped encoder: config and a Unigram tokenizer trained
on local text) and ``OUT_DIR/model/{hparams.yaml, checkpoints/model.ckpt}``, loadable with
``comet.load_from_checkpoint(ckpt, local_files_only=True)`` and by ``comet-score --model``. No network.
The scores mean nothing: the weights are random (seeded). The construction follows the offline recipe in
the project notes (XLM-R special-token ids 0-3 plus ``<mask>`` last; the checkpoint's ``pretrained_model``
is the absolute path of the encoder folder, so build it where it will be used).

Imports only the standard library at module level; comet, tokenizers, transformers and
pytorch_lightning are imported in :func:`build`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KINDS = ("regression_metric", "referenceless_regression_metric", "unified_metric")


def _training_text(text_files: list[Path]) -> list[str]:
    lines: list[str] = []
    for f in text_files:
        raw = f.read_text(encoding="utf-8")
        if f.suffix == ".jsonl":
            for line in raw.splitlines():
                if line.strip():
                    row = json.loads(line)
                    lines.extend(str(v) for v in row.values() if isinstance(v, str))
        else:
            lines.extend(raw.splitlines())
    # a few generic lines so the vocabulary is never empty
    lines += ["Hello world. Ciao mondo. Hallo Welt. Hola mundo.", "你好，世界。这是一个测试。"]
    return [ln for ln in lines if ln.strip()]


def build(out_dir: str | Path, kind: str = "regression_metric", text_files: list[Path] | None = None,
          vocab_size: int = 8000, seed: int = 0) -> Path:
    """Build the checkpoint; returns the path of ``model/checkpoints/model.ckpt``."""
    import torch
    import yaml
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaConfig, XLMRobertaTokenizerFast

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    torch.manual_seed(seed)
    out = Path(out_dir).resolve()
    enc_dir = out / "tiny-xlmr"
    enc_dir.mkdir(parents=True, exist_ok=True)

    specials = ["<s>", "<pad>", "</s>", "<unk>"]  # XLM-R's ids 0..3
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>")
    tok.train_from_iterator(_training_text(list(text_files or [])), trainer=trainer)
    tok.add_special_tokens(["<mask>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.save(str(enc_dir / "tokenizer.json"))
    fast = XLMRobertaTokenizerFast(tokenizer_file=str(enc_dir / "tokenizer.json"), bos_token="<s>",
                                   eos_token="</s>", sep_token="</s>", cls_token="<s>", unk_token="<unk>",
                                   pad_token="<pad>", mask_token="<mask>", model_max_length=512)
    fast.save_pretrained(str(enc_dir))
    cfg = XLMRobertaConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=514, type_vocab_size=1,
                           pad_token_id=1, bos_token_id=0, eos_token_id=2)
    cfg.save_pretrained(str(enc_dir))

    from comet.models import str2model
    import pytorch_lightning as ptl

    common = dict(encoder_model="XLM-RoBERTa", pretrained_model=str(enc_dir), load_pretrained_weights=False,
                  nr_frozen_epochs=0.3, keep_embeddings_frozen=True, optimizer="AdamW", warmup_steps=0,
                  encoder_learning_rate=1e-6, learning_rate=1.5e-5, layerwise_decay=0.95, dropout=0.1,
                  batch_size=16, train_data=[], validation_data=[], activations="Tanh")
    if kind == "unified_metric":
        hp = dict(common, sent_layer="mix", word_layer=1, layer_norm=True, hidden_sizes=[64],
                  input_segments=["mt", "src", "ref"], word_level_training=False, loss="mse")
    else:
        hp = dict(common, pool="avg", layer="mix", layer_transformation="sparsemax", layer_norm=False,
                  hidden_sizes=[64, 32], final_activation=None, loss="mse")
    model = str2model[kind](**hp)
    ckpt = out / "model" / "checkpoints" / "model.ckpt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    trainer_pl = ptl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False)
    trainer_pl.strategy.connect(model)
    trainer_pl.save_checkpoint(str(ckpt))
    with open(out / "model" / "hparams.yaml", "w") as f:
        yaml.safe_dump({**dict(model.hparams), "class_identifier": kind}, f)
    return ckpt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--kind", default="regression_metric", choices=KINDS)
    p.add_argument("--text", action="append", default=[], help="local text/JSONL file(s) to train the tokenizer on")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    ckpt = build(a.out_dir, a.kind, [Path(t) for t in a.text], seed=a.seed)
    print(ckpt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
