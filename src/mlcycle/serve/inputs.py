"""Reading ``POST /v1/predict`` bodies: multipart files under ``files`` or JSON with base64.

Everything wrong with a request becomes an :class:`InputError` (a 4xx status, a metrics reason
and a one-line message), never a 5xx.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import ValidationError
from python_multipart.multipart import MultipartParser, parse_options_header

from mlcycle.serve.schemas import PredictJSON

Upload = tuple[str, bytes]  # (name, file bytes)
MULTIPART, JSON = "multipart", "json"
EXTRA_PARTS = 16  # parts besides the images a multipart body may hold (they are ignored)


class InputError(Exception):
    """A request the server refuses: ``status``, ``reason`` (a metrics label), ``message``."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def body_kind(content_type: str | None) -> str:
    """``multipart`` or ``json`` from the Content-Type header; 415 for anything else."""
    media = parse_options_header(content_type or "")[0].decode("latin-1").lower()
    if media == "multipart/form-data":
        return MULTIPART
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return JSON
    raise InputError(
        415,
        "content_type",
        f"Content-Type '{media or 'none'}' is not accepted; send multipart/form-data (files "
        'under \'files\') or application/json ({"images": [{"name", "data"}]}, or a table '
        'model\'s {"rows": [{column: value}]})',
    )


def too_many(count: int, limit: int) -> InputError:
    return InputError(413, "too_many_images", f"{count} images is over the limit of {limit}")


def describe(errors: list[dict[str, Any]], skip: tuple[str, ...] = ()) -> str:
    """pydantic's errors as one line: ``where: what``, the first three."""
    parts = []
    for error in errors[:3]:
        loc = [str(v) for v in error.get("loc", ()) if v not in skip]
        msg = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":  # its loc is a character position
            reason = (error.get("ctx") or {}).get("error", msg)
            parts.append(f"invalid JSON{' at character ' + loc[0] if loc else ''}: {reason}")
        else:
            parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def is_json_syntax(errors: list[dict[str, Any]]) -> bool:
    return any(e.get("type") == "json_invalid" for e in errors)


def from_base64(text: str, where: str) -> bytes:
    if text.startswith("data:") and "," in text[:200]:  # a data: URL from a browser
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(400, "bad_base64", f"{where} is not valid base64: {exc}") from exc


def parse_json(body: bytes, max_images: int) -> list[Upload]:
    try:
        payload = PredictJSON.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        status = 400 if is_json_syntax(errors) else 422
        raise InputError(status, "bad_json", describe(errors)) from exc
    if len(payload.images) > max_images:
        raise too_many(len(payload.images), max_images)
    return [
        (image.name or f"image{i}", from_base64(image.data, f"images.{i}.data"))
        for i, image in enumerate(payload.images)
    ]


class _Parts:
    """python-multipart callbacks collecting the parts named ``files``."""

    def __init__(self, max_images: int) -> None:
        self.max_images, self.files, self.other = max_images, [], 0
        self.header_name, self.header_value, self.disposition = b"", b"", b""
        self.data: bytearray | None = None
        self.name = ""
        self.ended = False

    def on_part_begin(self) -> None:
        self.disposition, self.data = b"", None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.strip().lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        if options.get(b"name") != b"files":
            self.other += 1
            if self.other > EXTRA_PARTS:
                raise InputError(400, "bad_multipart", "too many parts besides 'files'")
            return
        if len(self.files) >= self.max_images:
            raise too_many(len(self.files) + 1, self.max_images)
        filename = options.get(b"filename", b"").decode("utf-8", "replace")[:1000]
        self.name = filename or f"image{len(self.files)}"
        self.data = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.data is not None:
            self.data += data[start:end]

    def on_part_end(self) -> None:
        if self.data is not None:
            self.files.append((self.name, bytes(self.data)))
            self.data = None

    def on_end(self) -> None:
        self.ended = True


def parse_multipart(content_type: str, body: bytes, max_images: int) -> list[Upload]:
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise InputError(400, "bad_multipart", "multipart Content-Type without a boundary")
    parts = _Parts(max_images)
    callbacks = {name: getattr(parts, name) for name in dir(parts) if name.startswith("on_")}
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except InputError:
        raise
    except Exception as exc:  # whatever the parser trips on is the body's fault
        raise InputError(400, "bad_multipart", f"malformed multipart body: {exc}") from exc
    if not parts.ended:
        raise InputError(400, "bad_multipart", "multipart body is truncated (no closing boundary)")
    if not parts.files:
        raise InputError(400, "no_images", "no files under the multipart field 'files'")
    return parts.files


def parse_upload(kind: str, content_type: str, body: bytes, max_images: int) -> list[Upload]:
    """The images of a predict request, as (name, bytes)."""
    if kind == MULTIPART:
        return parse_multipart(content_type, body, max_images)
    return parse_json(body, max_images)
