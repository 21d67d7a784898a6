"""The hf backend with a vision-language model: a tiny random-weight LLaVA (a real transformers
architecture: CLIP vision tower + Llama text model) built here with the embedded model's SmolLM2
tokenizer, runs a PunchBench fixture end to end through its processor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsuite.registry import default_registry
from evalsuite.runner import RunConfig, run
from evalsuite.store import ResultsStore
from punchbench_fixture import build

# the model's own chat template (ChatML, as SmolLM2's) with an <image> placeholder for image parts
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="module")
def tiny_llava_dir(smollm2_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import (AutoTokenizer, CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    tok = AutoTokenizer.from_pretrained(str(smollm2_tokenizer_dir))
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    tok.chat_template = CHAT_TEMPLATE  # one template for text and image turns
    image_id = tok.convert_tokens_to_ids("<image>")
    torch.manual_seed(0)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                       initializer_range=0.5, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.eos_token_id)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=16, projection_dim=32)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_id,
                      vision_feature_select_strategy="default", vision_feature_layer=-1)
    model = LlavaForConditionalGeneration(cfg).eval()
    out = tmp_path_factory.mktemp("tiny-llava")
    model.save_pretrained(str(out))
    proc = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                             crop_size={"height": 32, "width": 32}),
                          tokenizer=tok, patch_size=16, vision_feature_select_strategy="default",
                          image_token="<image>", num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    proc.save_pretrained(str(out))  # writes the tokenizer too
    return out


def test_tiny_vlm_runs_punchbench_through_the_processor(tmp_path, tiny_llava_dir):
    from evalsuite.backends.hf import HFBackend

    data = build(tmp_path / "pb", n_pairs=2)
    be = HFBackend(str(tiny_llava_dir), threads="1")
    assert be.describe()["processor"] == "LlavaProcessor"
    task = "punchbench/perception_matching/original"
    out = run(RunConfig(tasks=[task], backend="hf", run_id="r", output=str(tmp_path / "res"), progress=False,
                        task_options={"data_dir": str(data), "prompting": "sc_coq_intra", "max_tokens": "3"}),
              registry=default_registry(), backend=be)
    s = out.scores[task]
    errs = [r["generation"]["error"] for r in ResultsStore(tmp_path / "res", "r").rows(task)]
    assert s["n"] == 2 and s["n_errors"] == 0, errs
    rows = list(ResultsStore(tmp_path / "res", "r").rows(task))
    assert len(rows) == 4 and all(r["generation"]["finish_reason"] in ("stop", "length") for r in rows)
    # the processor expanded the one image into its patch tokens: turn 2 is longer than turn 1's text
    assert all(r["generation"]["prompt_tokens"] > 0 for r in rows)
    # greedy decoding through the processor is deterministic: a second backend gives the same texts
    be2 = HFBackend(str(tiny_llava_dir), threads="1")
    out2 = run(RunConfig(tasks=[task], backend="hf", run_id="r2", output=str(tmp_path / "res"), progress=False,
                         task_options={"data_dir": str(data), "prompting": "sc_coq_intra", "max_tokens": "3"}),
               registry=default_registry(), backend=be2)
    rows2 = list(ResultsStore(tmp_path / "res", "r2").rows(task))
    assert [r["generation"]["text"] for r in rows] == [r["generation"]["text"] for r in rows2]
    assert out2.scores[task]["n_errors"] == 0
    json.dumps(be.describe())


def test_processor_expands_the_image_into_patch_tokens(tmp_path, tiny_llava_dir):
    from evalsuite.backends.hf import HFBackend
    from evalsuite.types import ContentPart, GenParams, Message, Request

    build(tmp_path / "pb", n_pairs=1)
    img = str(tmp_path / "pb" / "images" / "pair0.png")
    be = HFBackend(str(tiny_llava_dir), threads="1")
    p = GenParams(max_tokens=2)
    with_img = Request("t", "a", 0, (Message("user", (ContentPart("image", image=img),
                                                      ContentPart("text", text="Is it funny?"))),), p)
    text_only = Request("t", "b", 1, (Message("user", (ContentPart("text", text="Is it funny?"),)),), p)
    remote = Request("t", "c", 2, (Message("user", (ContentPart("image", image="https://example.org/x.png"),
                                                    ContentPart("text", text="Is it funny?"))),), p)
    g_img, g_txt, g_remote = be.generate([with_img, text_only, remote])
    assert g_img.ok and g_txt.ok
    # (32 / 16)^2 = 4 patch features replace the one <image> placeholder
    assert g_img.prompt_tokens == g_txt.prompt_tokens + 4
    assert not g_remote.ok and "remote URL" in g_remote.error


def test_request_key_covers_the_image_bytes(tmp_path):
    """Replacing an image file in place changes the request key, so a resumed run asks again."""
    from evalsuite.types import ContentPart, GenParams, Message, Request

    img = tmp_path / "a.png"
    img.write_bytes(b"\x89PNG first")

    def req():
        return Request(task="t", sample_id="0", index=0, params=GenParams(max_tokens=4),
                       prompt=(Message("user", (ContentPart("image", image=str(img)), ContentPart("text", text="Hi"))),))

    k1 = req().key("b")
    assert req().key("b") == k1
    img.write_bytes(b"\x89PNG second, longer")
    assert req().key("b") != k1
