"""The shared data-file loader (evalsuite.datafiles) and path fields inside task data."""

from __future__ import annotations

import json
import os

import pytest

from evalsuite.datafiles import check_fields, inside, read_json, read_records, read_text
from evalsuite.errors import UserError


def test_formats_and_checks(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"a": "x", "n": 1}, {"a": "y", "n": 2}]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n\n")
    (tmp_path / "r.json").write_text(json.dumps(rows))
    (tmp_path / "r.csv").write_text("a,n\nx,1\ny,2\n")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "r.parquet")
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(rows[0]).encode() + b"\n")
    assert read_records(tmp_path / "r.jsonl") == rows == read_records(tmp_path / "r.json")
    assert read_records(tmp_path / "r.parquet") == rows
    assert read_records(tmp_path / "r.parquet", columns=["n"]) == [{"n": 1}, {"n": 2}]  # the rest stays on disk
    with pytest.raises(UserError, match="r.parquet: cannot read parquet"):  # a column the file lacks
        read_records(tmp_path / "r.parquet", "t", columns=["question"])
    assert read_records(tmp_path / "r.csv") == [{"a": "x", "n": "1"}, {"a": "y", "n": "2"}]
    assert read_records(tmp_path / "bom.jsonl") == rows[:1]
    check_fields(rows, {"a": str, "n": int}, "f")
    with pytest.raises(UserError, match="row 1: field 'n' must be a string or null, got a number"):
        check_fields(rows, {"n": (str, None)}, "f")
    with pytest.raises(UserError, match=r"row 1: missing field\(s\) \['z'\]"):
        check_fields(rows, {"z": str}, "f")
    with pytest.raises(UserError, match="must be an integer, got a boolean"):
        check_fields([{"n": True}], {"n": int}, "f")


@pytest.mark.parametrize("raw, message", [
    ("x".encode("utf-16"), "UTF-16"),
    (b'{"a": "caf\xe9"}\n', r":1: not valid UTF-8 \(byte 0xe9"),
    (b'{"a": 1}\n{"a": 2\n', r":2: not valid JSON"),
    (b'[\n{"a": 1}\n]\n', "is a JSON array, but JSON lines"),
    (b'[{"a": 1}]\n', "is a JSON array, but JSON lines"),
    (b'{"a": 1}\n[1, 2]\n', ":2: expected a JSON object .* got an array"),
    (b"null\n", ":1: expected a JSON object .* got null"),
    (b"[" * 5000 + b"]" * 5000, "nested more than 200 levels"),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested more than 200 levels"),
    (b"", "no samples in"),
    (b"\n  \n", "no samples in"),
    (b"\x00\x01binary", "NUL bytes"),
])
def test_bad_jsonl_is_one_user_error(tmp_path, raw, message):
    p = tmp_path / "d.jsonl"
    p.write_bytes(raw)
    with pytest.raises(UserError, match=message) as e:
        read_records(p, "t")
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_json_deeper_than_the_interpreter_can_parse_is_refused_without_recursion(tmp_path):
    p = tmp_path / "d.json"
    p.write_bytes(b"[" * 1_000_000 + b"]" * 1_000_000)
    with pytest.raises(UserError, match="nested more than"):
        read_json(p, "t")
    p.write_bytes(json.dumps({"a": [[{"b": "[[[[[["}]]}).encode())  # brackets inside strings do not count
    assert read_json(p, "t") == {"a": [[{"b": "[[[[[["}]]}


def test_json_records_must_be_objects_and_a_folder_is_not_a_file(tmp_path):
    p = tmp_path / "d.json"
    p.write_text('{"rows": 1}')
    with pytest.raises(UserError, match="expected a JSON array of records"):
        read_records(p, "t")
    p.write_text("[1, 2]")
    with pytest.raises(UserError, match="record 1: expected a JSON object"):
        read_records(p, "t")
    with pytest.raises(UserError, match="is a folder"):
        read_records(tmp_path, "t", "jsonl")
    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(UserError, match="not a parquet file"):
        read_records(bad, "t")


def test_read_text_universal_newlines(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes(b"a\r\nb\rc\n")
    assert read_text(p) == "a\nb\nc\n"


def test_paths_in_task_data_stay_inside_the_data_folder(tmp_path):
    root = tmp_path / "data"
    (root / "webpage").mkdir(parents=True)
    (root / "webpage" / "p.html").write_text("ok")
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    assert inside(root, "webpage/p.html", "w").read_text() == "ok"
    for bad in ("../secret.txt", str(secret), "webpage/../../secret.txt", "~/.bashrc", "", None, 3, "a\x00b"):
        with pytest.raises(UserError):
            inside(root, bad, "w", "html_path")
    os.symlink(secret, root / "webpage" / "link.html")
    with pytest.raises(UserError, match="leaves the data folder"):
        inside(root, "webpage/link.html", "w", "html_path")


def test_longproc_html_path_outside_the_data_folder_is_never_read(tmp_path, cli):
    """A LongProc html_to_tsv item whose html_path points at a local file outside the data folder: exit 2 and
    the file's content appears nowhere (before: the file was read into the prompt)."""
    secret = tmp_path / "canary.txt"
    secret.write_text("CANARY-7f3a")
    folder = tmp_path / "data" / "html_to_tsv"
    folder.mkdir(parents=True)
    item = {"task_id": "x", "website_id": "W1", "task_topic": "t", "task_description": "d", "gt": "a\tb",
            "tsv_header": "a\tb", "filtering_instruction": "", "output_length_group": "0.5k"}
    for html_path in (str(secret), "../../canary.txt"):
        (folder / "html_to_tsv_0.5k.json").write_text(json.dumps([{**item, "html_path": html_path}]))
        r = cli("run", "--tasks", "longproc/html_to_tsv_0.5k", "--backend", "echo", "-B", "tail=40",
                "-T", f"data_dir={tmp_path / 'data'}", "--log-prompts", "--run-id", "h", "--no-progress")
        assert r.returncode == 2 and "html_path" in r.stderr and "CANARY" not in r.stderr + r.stdout, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    hits = [p for p in tmp_path.rglob("*") if p.is_file() and p != secret and "CANARY-7f3a" in p.read_text(errors="ignore")]
    assert hits == []


def test_punchbench_image_path_outside_the_data_folder_is_refused(tmp_path):
    from evalsuite.multimodal import resolve_image

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "ok.png").write_bytes(b"png")
    (tmp_path / "x.png").write_bytes(b"png")
    assert resolve_image("ok.png", tmp_path / "d").endswith("ok.png")
    for bad in (str(tmp_path / "x.png"), "../x.png", "file:///etc/passwd"):
        with pytest.raises(UserError):
            resolve_image(bad, tmp_path / "d")
    assert resolve_image("data:image/png;base64,AAAA", tmp_path / "d").startswith("data:")
