"""Profile photos: decode an upload with Pillow, refuse what is not a sound image, re-encode a clean WebP.

What a photo is, is decided by decoding its bytes, never by its file name or
declared content type. Accepted: JPEG, PNG, WebP and GIF (first frame of an
animation). The result is always WebP (lossy, quality 85, alpha kept): it
holds both photos and transparent images, every current browser shows it, and
it is small. It is built from pixels only: EXIF orientation is applied first,
colours are converted to sRGB from an embedded ICC profile, then every piece of
metadata (EXIF with GPS and camera data, XMP, ICC, comments, text chunks) is
left behind, and the image is fitted within 512x512 keeping its aspect ratio.
"""
from __future__ import annotations

import hashlib
import io
import logging
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from admin_api.core.errors import Invalid, PayloadTooLarge, UnsupportedMediaType

log = logging.getLogger("admin_api.profiles")

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
MAX_SIDE = 512
CONTENT_TYPE = "image/webp"
EXTENSION = "webp"
WEBP_QUALITY = 85
MIB = 1024 * 1024

# Pillow only *warns* between its pixel limit and twice that; for an upload it is a refusal.
# (Our own, lower limit is checked too, right after the header is read and before any pixel is decoded.)
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
# Pillow warns (in plain text on stderr, outside the JSON log) about metadata it cannot read, such as corrupt
# EXIF: nothing of it is kept anyway, so there is nothing to say.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")

_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True)
class ProcessedPhoto:
    data: bytes
    width: int
    height: int
    etag: str  # SHA-256 of data
    content_type: str = CONTENT_TYPE
    extension: str = EXTENSION


def _refused(error_class, message: str):
    return error_class(message, errors={"photo": [message]})


def process(upload: BinaryIO, *, max_bytes: int, max_pixels: int) -> ProcessedPhoto:
    """The clean WebP made from an uploaded file; 413, 415 or 422 (naming `photo`) when it is refused."""
    data = _read_limited(upload, max_bytes)
    image = _open(data, max_pixels)
    if image.format == "PNG" and not _png_sound(data):  # outside the lock: inflated in 1 MiB slices
        raise _corrupt()
    with _DECODING:
        image = _decode(image)
        try:
            return _encode(_fitted(image))
        except Exception as exc:  # noqa: BLE001 - decoded pixels Pillow cannot convert: broken, not a server fault
            log.info("photo refused while converting: %s", type(exc).__name__)
            raise _corrupt()


# A 40-megapixel RGBA image takes about 160 MiB decoded, and a 170 KB PNG can declare one: one decode at a
# time per process (the other threads wait their turn) keeps a worker's memory bounded whatever the traffic.
_DECODING = threading.BoundedSemaphore(1)


def _read_limited(upload: BinaryIO, max_bytes: int) -> bytes:
    data = upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _refused(PayloadTooLarge, f"The photo is larger than {max_bytes / MIB:g} MiB.")
    if not data:
        raise _refused(Invalid, "The file is empty.")
    return data


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Read the header only (no pixels yet) and refuse images with too many pixels."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(max_pixels)
    except UnidentifiedImageError:
        raise _refused(UnsupportedMediaType, "Not a JPEG, PNG, WebP or GIF image (judged by its content).")
    except Exception as exc:  # noqa: BLE001 - hostile bytes make Pillow raise many kinds of errors
        log.info("photo header refused: %s", type(exc).__name__)
        raise _corrupt()
    if image.width * image.height > max_pixels:
        raise _too_many_pixels(max_pixels, image.size)
    return image


def _too_many_pixels(max_pixels: int, size: tuple[int, int] | None = None):
    declared = f"{size[0]}x{size[1]} pixels; " if size else ""
    return _refused(Invalid, f"The image is too large: {declared}at most {max_pixels / 1e6:g} megapixels are accepted.")


def _corrupt():
    return _refused(Invalid, "The image data is corrupt or truncated.")


def _decode(image: Image.Image) -> Image.Image:
    """The first frame's pixels, upright. JPEGs decode at a reduced scale when they are much larger than needed."""
    try:
        image.draft(None, (MAX_SIDE * 2, MAX_SIDE * 2))  # JPEG: libjpeg scales by 1/2..1/8 while decoding
        image.load()
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt data, whatever the decoder raises
        log.info("photo refused while decoding: %s", type(exc).__name__)
        raise _corrupt()
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:  # noqa: BLE001 - an unreadable EXIF block: keep the pixels as stored
        pass
    return image


# Adam7 passes: (first column, first row, column step, row step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _png_sound(data: bytes) -> bool:
    """Whether the chunks up to the last pixel are whole and undamaged (length, CRC), the palette and
    transparency chunks are the ones the colour type allows (PLTE before the pixels for a palette image),
    and the IDAT stream inflates to every row the header declares.

    Pillow reads past all of these as best it can (a zlib stream that ends early gets black rows, a palette
    image without PLTE a made-up palette, CRCs are not checked); such files are broken, whatever a browser
    would make of them. Inflated in slices, so a huge image costs time, not memory. (Pillow has already
    checked the signature.) Pixel values beyond a short palette are not looked for.
    """
    if data[8:16] != b"\x00\x00\x00\x0dIHDR":
        return False
    width, height, depth, colour, _, _, interlaced = struct.unpack(">IIBBBBB", data[16:29])
    bits = depth * _PNG_CHANNELS.get(colour, 4)
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    expected = 0
    for x0, y0, dx, dy in passes:
        columns, rows = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if columns and rows:
            expected += rows * (1 + (columns * bits + 7) // 8)  # each row starts with its filter byte
    inflater, inflated, offset, palette_entries = zlib.decompressobj(), 0, 8, None
    try:
        while offset + 8 <= len(data) and inflated < expected:
            length, kind = struct.unpack(">I4s", data[offset:offset + 8])
            end = offset + 8 + length
            if end + 4 > len(data) or zlib.crc32(data[offset + 4:end]) != struct.unpack(">I", data[end:end + 4])[0]:
                return False  # cut short, or damaged
            if kind == b"PLTE":
                if colour in (0, 4) or length % 3 or not 3 <= length <= 768:
                    return False
                palette_entries = length // 3
            elif kind == b"tRNS" and not _transparency_fits(colour, length, palette_entries):
                return False
            elif kind == b"IDAT":
                if colour == 3 and palette_entries is None:
                    return False
                chunk = data[offset + 8:end]
                while chunk and inflated < expected:
                    inflated += len(inflater.decompress(chunk, 1 << 20))
                    chunk = inflater.unconsumed_tail
            offset = end + 4
    except zlib.error:
        return False
    return inflated >= expected


def _transparency_fits(colour: int, length: int, palette_entries: int | None) -> bool:
    """tRNS: one grey or RGB sample for types 0 and 2, up to one alpha per entry after PLTE for type 3."""
    if colour == 3:
        return palette_entries is not None and length <= palette_entries
    return length == {0: 2, 2: 6}.get(colour)


def _fitted(image: Image.Image) -> Image.Image:
    """RGB or RGBA in sRGB, within MAX_SIDE x MAX_SIDE, and nothing but pixels."""
    mode = "RGBA" if image.has_transparency_data else "RGB"
    icc = image.info.get("icc_profile")
    if image.mode != mode:
        image = image.convert(mode)
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    if icc:
        try:
            image = ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB,
                                              outputMode=mode)
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # an unusable or mismatched profile: keep the colours as they are
    return Image.frombytes(mode, image.size, image.tobytes())  # a new image: no info, EXIF, XMP or ICC


def _encode(image: Image.Image) -> ProcessedPhoto:
    out = io.BytesIO()
    image.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
    data = out.getvalue()
    return ProcessedPhoto(data=data, width=image.width, height=image.height, etag=hashlib.sha256(data).hexdigest())
