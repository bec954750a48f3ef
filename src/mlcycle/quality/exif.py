"""Strip EXIF, GPS, XMP, IPTC and text metadata from image bytes, keeping the pixels exactly.

JPEG: metadata segments are cut out without re-encoding. PNG: metadata chunks are dropped.
TIFF and WebP: the pixels are re-saved losslessly without metadata. Other formats carry no
EXIF and are left as they are. An EXIF orientation other than 1 survives (alone) in JPEG and
PNG, and is applied to the pixels elsewhere, so the image looks the same after stripping.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageOps

from mlcycle.core.errors import UserError
from mlcycle.data.images import convert

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_METADATA = {b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"}
ORIENTATION = 0x0112
GPS_IFD = 0x8825
# Tags that say who, where, when or with what; TIFF's own structure tags are not among them.
PRIVATE_TAGS = {
    GPS_IFD, 0x8769, 0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x8298, 0x02BC, 0x83BB,
}  # fmt: skip


def _orientation(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as img:
        return int(img.getexif().get(ORIENTATION, 1) or 1)


def _orientation_only(orientation: int) -> bytes:
    """A minimal EXIF block (with the ``Exif\\0\\0`` header) holding just the orientation."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif.tobytes()


def strip_jpeg(data: bytes) -> bytes:
    """Drop APP1 (EXIF, XMP), APP13 (IPTC), COM, the MPF index and anything after the image."""
    orientation = _orientation(data)
    out = bytearray(data[:2])
    if orientation != 1:
        payload = _orientation_only(orientation)
        out += b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    i = 2
    while i < len(data):
        if data[i] != 0xFF:
            raise UserError("JPEG segment structure is broken; run validate_data.py first")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD8 or marker == 0x01 or 0xD0 <= marker <= 0xD7:
            out += data[i : i + 2]
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        segment = data[i : i + 2 + length]
        if marker == 0xDA:  # start of scan: entropy-coded data up to the end-of-image marker
            end = data.find(b"\xff\xd9", i + 2 + length)
            out += data[i : len(data) if end < 0 else end + 2]
            break
        mpf = marker == 0xE2 and segment[4:8] == b"MPF\x00"
        if marker not in (0xE1, 0xED, 0xFE) and not mpf:
            out += segment
        i += 2 + length
    return bytes(out)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def strip_png(data: bytes) -> bytes:
    """Drop eXIf, tEXt, zTXt, iTXt and tIME chunks; keep an orientation other than 1."""
    orientation = _orientation(data)
    out, i = bytearray(PNG_SIGNATURE), len(PNG_SIGNATURE)
    while i + 8 <= len(data):
        length = struct.unpack(">I", data[i : i + 4])[0]
        kind = data[i + 4 : i + 8]
        chunk = data[i : i + 12 + length]
        if kind == b"IDAT" and orientation != 1:
            out += _png_chunk(b"eXIf", _orientation_only(orientation)[6:])
            orientation = 1
        if kind not in PNG_METADATA:
            out += chunk
        i += 12 + length
        if kind == b"IEND":
            break
    return bytes(out)


def _resave(data: bytes, fmt: str) -> bytes:
    """Upright pixels in a fresh image (no info, no EXIF), saved losslessly in ``fmt``."""
    with Image.open(io.BytesIO(data)) as img:
        upright = ImageOps.exif_transpose(img)
        clean = Image.frombytes(upright.mode, upright.size, upright.tobytes())
        if upright.mode in ("P", "PA"):
            clean.putpalette(upright.getpalette())
    buf = io.BytesIO()
    options = {"lossless": True, "quality": 100} if fmt == "WEBP" else {}
    clean.save(buf, fmt, **options)
    return buf.getvalue()


def strip_metadata(data: bytes) -> bytes:
    """The same image without metadata (see the module's docstring). Checks the result."""
    with Image.open(io.BytesIO(data)) as img:
        fmt = img.format
    if fmt in ("JPEG", "MPO"):
        clean = strip_jpeg(data)
    elif fmt == "PNG":
        clean = strip_png(data)
    elif fmt in ("TIFF", "WEBP"):
        clean = _resave(data, fmt)
    else:
        return data
    check_stripped(data, clean)
    return clean


def check_stripped(original: bytes, clean: bytes) -> None:
    """The copy shows the same pixels and carries no EXIF beyond an orientation."""
    with Image.open(io.BytesIO(clean)) as img:
        left = sorted(set(img.getexif()) & PRIVATE_TAGS)
        if left or "xmp" in img.info or "XML:com.adobe.xmp" in img.info:
            raise UserError(f"metadata left after stripping: tags {left or 'XMP'}")
        after = convert(img, 3)
    with Image.open(io.BytesIO(original)) as img:
        before = convert(img, 3)
    if before.shape != after.shape or (before != after).any():
        raise UserError("stripping metadata changed the pixels; the file was not copied")
