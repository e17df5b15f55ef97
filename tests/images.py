"""The photo test corpus, generated: sound images of each format, metadata carriers, bombs, impostors, junk."""
from __future__ import annotations

import io
import os
import struct
import zlib

from PIL import ExifTags, Image, PngImagePlugin

MIB = 1024 * 1024
SECRETS = (b"SpyCam", b"Model X-42", b"SecretTown", b"secret comment", b"secret text")  # must never be served
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" photoshop:City="SecretTown"/>'
       b'</rdf:RDF></x:xmpmeta>')


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def picture(size=(64, 48), mode: str = "RGB") -> Image.Image:
    """A picture whose left half is red and right half blue (so orientation can be checked)."""
    image = Image.new(mode, size, "blue")
    image.paste(Image.new(mode, (size[0] // 2, size[1]), "red"), (0, 0))
    return image


def jpeg(size=(64, 48), **options) -> bytes:
    return encoded(picture(size), "JPEG", quality=90, **options)


def png(size=(64, 48), mode: str = "RGBA", **options) -> bytes:
    return encoded(picture(size, mode), "PNG", **options)


def webp(size=(64, 48)) -> bytes:
    return encoded(picture(size), "WEBP")


def gif_animated(size=(40, 30)) -> bytes:
    """Two frames: red then green; only the first may be kept."""
    first, second = Image.new("RGB", size, "red"), Image.new("RGB", size, "green")
    return encoded(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)


def spy_exif(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.Base.Model] = "Model X-42"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (46.0, 57.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (7.0, 26.0, 40.1)
    return exif


def jpeg_with_gps(size=(60, 40), orientation: int = 6) -> bytes:
    """EXIF with GPS, camera make/model and orientation 6 (turn 90 degrees clockwise), XMP and a comment."""
    return jpeg(size, exif=spy_exif(orientation), xmp=XMP, comment=b"secret comment")


def png_with_metadata(size=(30, 20)) -> bytes:
    """eXIf (with GPS), tEXt and iTXt (XMP) chunks."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret text")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    return png(size, pnginfo=info, exif=spy_exif(1))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A real 1-bit PNG of width x height black pixels: a few KB that decode to width*height bytes."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed pixels
    compressed = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", compressed) + _chunk(b"IEND", b""))


def interlaced_png(size=(61, 37), idat_size: int = 64) -> bytes:
    """An Adam7-interlaced RGB PNG of picture(size) (Pillow cannot write one), its data cut into many IDAT chunks.

    Each pass holds the pixels whose column and row fall on its grid, taken one by one from the picture.
    """
    image = picture(size)
    width, height = size
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        for y in range(y0, height, dy):
            row = b"".join(bytes(image.getpixel((x, y))) for x in range(x0, width, dx))
            if row:  # a pass with no column in the image has no rows at all
                raw += b"\x00" + row
    compressed = zlib.compress(raw)
    chunks = b"".join(_chunk(b"IDAT", compressed[i:i + idat_size]) for i in range(0, len(compressed), idat_size))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + chunks + _chunk(b"IEND", b"")


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        chunks.append((kind, data[offset + 8:offset + 8 + length]))
        offset += 12 + length
    return chunks


def palette_png(plte: str = "before", bits: int = 8, transparency: bool = False) -> bytes:
    """A 4x4 palette PNG whose PLTE chunk comes `before` the pixels (sound), `after` them, or `none` at all."""
    image = picture((4, 4)).convert("P")
    chunks = _png_chunks(encoded(image, "PNG", bits=bits, **({"transparency": 0} if transparency else {})))
    palette = [chunk for chunk in chunks if chunk[0] == b"PLTE"]
    others = [chunk for chunk in chunks if chunk[0] != b"PLTE"]
    if plte == "before":
        others[1:1] = palette
    elif plte == "after":
        others[-1:-1] = palette
    return b"\x89PNG\r\n\x1a\n" + b"".join(_chunk(kind, body) for kind, body in others)


def edited_png(data: bytes, edit) -> bytes:
    """`data` with its chunks passed through `edit` (a list of (kind, body) in, one out), CRCs made right."""
    return b"\x89PNG\r\n\x1a\n" + b"".join(_chunk(kind, body) for kind, body in edit(_png_chunks(data)))


def _replaced(chunks, kind: bytes, body: bytes | None):
    return [(k, body if k == kind else b) for k, b in chunks if not (k == kind and body is None)]


def damaged_png(damage: str) -> bytes:
    """A sound PNG whose IDAT chunk has a wrong CRC (`crc`) or declares more bytes than the file holds (`length`)."""
    data = png((20, 10), mode="RGB")
    start = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[start:start + 4])[0]
    if damage == "crc":
        crc = start + 8 + length
        return data[:crc] + bytes(b ^ 0xFF for b in data[crc:crc + 4]) + data[crc + 4:]
    return data[:start] + struct.pack(">I", 0x7FFFFFFF) + data[start + 4:start + 8 + length]


def short_png(width: int, height: int, rows: int) -> bytes:
    """A PNG that declares width x height but whose (complete, valid) zlib stream holds only `rows` rows."""
    compressed = zlib.compress((b"\x00" + b"\x80" * (width * 3)) * rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", compressed) + _chunk(b"IEND", b"")


def declared_png(width: int, height: int) -> bytes:
    """Only a PNG header declaring width x height (no pixel data at all)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")


def jpeg_with_corrupt_exif() -> bytes:
    """A sound JPEG with an EXIF segment whose first directory promises entries it does not hold."""
    exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff" + b"\x00" * 48
    data = jpeg((40, 30))
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + data[2:]


def truncated_jpeg() -> bytes:
    data = jpeg((200, 150))
    return data[: len(data) // 2]


def png_header_then_html() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"<html><body><script>alert(document.cookie)</script></body></html>"


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<script>alert(1)</script><rect width="10" height="10"/></svg>')
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
SCRIPT = b"#!/bin/sh\nrm -rf / --no-preserve-root\n"


def noise(size: int) -> bytes:
    """Incompressible bytes (not an image)."""
    return os.urandom(size)
