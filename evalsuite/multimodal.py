"""Image helpers for multimodal tasks: resolving image references and hashing image bytes.

An image travels in a request as a ``ContentPart("image", image=<ref>)`` whose reference is a local
path, an ``http(s)://`` URL or a ``data:`` URI. Results logs keep the reference (a path or URL), never
the bytes; tasks record the sha256 of every local image they use (``image_sha256`` in a sample's
metadata) so a changed image shows in the results even where the path stays the same.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from .errors import UserError
from .types import ContentPart, Message, Request

__all__ = ["has_images", "image_parts", "image_sha256", "load_image", "processor_messages", "resolve_image",
           "strip_images"]


def resolve_image(ref: str, root: Path | None = None) -> str:
    """A record's image reference as a request reference: URLs and ``data:`` URIs unchanged, a
    relative path made absolute against ``root`` (the data folder, which it may not leave: see
    :func:`evalsuite.datafiles.inside`). A missing local file is a UserError."""
    if ref.startswith(("http://", "https://", "data:")):
        return ref
    if root is not None:
        # a path inside task data: only below the data folder (absolute paths, "..", symlinks out are refused)
        from .datafiles import inside

        p = inside(root, ref, f"data folder {root}", "image path")
    else:
        p = Path(ref[len("file://"):] if ref.startswith("file://") else ref).expanduser()
    if not p.is_file():
        raise UserError(f"image {ref!r} not found (looked for {p})")
    return str(p.resolve())


def image_sha256(ref: str) -> str | None:
    """sha256 of the image bytes: a local file's content or a base64 ``data:`` URI's payload.
    None for a remote URL (its bytes are not read at load time)."""
    if ref.startswith(("http://", "https://")):
        return None
    if ref.startswith("data:"):
        head, _, payload = ref.partition(",")
        raw = base64.b64decode(payload) if head.endswith(";base64") else payload.encode("utf-8")
        return hashlib.sha256(raw).hexdigest()
    h = hashlib.sha256()
    with open(ref[len("file://"):] if ref.startswith("file://") else ref, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def image_parts(messages: tuple[Message, ...]) -> list[ContentPart]:
    return [p for m in messages if not isinstance(m.content, str) for p in m.content if p.type == "image"]


def has_images(req: Request) -> bool:
    return bool(image_parts(req.messages()))


def strip_images(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """The messages with image parts removed (a text-only view)."""
    out = []
    for m in messages:
        if isinstance(m.content, str):
            out.append(m)
        else:
            out.append(Message(m.role, tuple(p for p in m.content if p.type != "image")))
    return tuple(out)


def load_image(ref: str):
    """A PIL image (RGB) from a local path or a ``data:`` URI. Remote URLs are refused: runs are offline."""
    import io

    from PIL import Image

    if ref.startswith(("http://", "https://")):
        raise UserError(f"image {ref!r} is a remote URL; local backends read local files or data: URIs only")
    if ref.startswith("data:"):
        head, _, payload = ref.partition(",")
        raw = base64.b64decode(payload) if head.endswith(";base64") else payload.encode("utf-8")
        return Image.open(io.BytesIO(raw)).convert("RGB")
    with Image.open(ref[len("file://"):] if ref.startswith("file://") else ref) as im:
        return im.convert("RGB")


def processor_messages(messages: tuple[Message, ...]) -> tuple[list[dict], list[str]]:
    """Messages in the form transformers processors' chat templates take (``{"type": "image"}``
    placeholders in content lists) and the image references in the order they appear."""
    out: list[dict] = []
    refs: list[str] = []
    for m in messages:
        if isinstance(m.content, str):
            out.append({"role": m.role, "content": [{"type": "text", "text": m.content}]})
            continue
        parts = []
        for p in m.content:
            if p.type == "image":
                parts.append({"type": "image"})
                refs.append(p.image or "")
            else:
                parts.append({"type": "text", "text": p.text or ""})
        out.append({"role": m.role, "content": parts})
    return out, refs
