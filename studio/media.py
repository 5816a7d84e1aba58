"""Uploaded images: checked by their content (never their name), re-encoded without metadata, stored in the
database in a few widths for `srcset`, so every web server can serve them.

A post names one as `media:<key>`; the site serves each width at /media/<key>-<width>.<ext>.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import now
from studio.models import MediaImage, MediaVariant
from studio.services import StudioError, record_audit

MAX_BYTES = 5 * 1024 * 1024
# Far more pixels than any photo a post needs; a small file claiming more is a decompression bomb.
MAX_PIXELS = 40_000_000
WIDTHS = (480, 960, 1600)
KINDS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg"), "WEBP": ("webp", "image/webp")}
EXTENSIONS = {ext: mime for ext, mime in KINDS.values()}


class ImageRefused(StudioError):
    """The file is not an image we take, in words for the person uploading it."""


@dataclass(frozen=True)
class StoredImage:
    """What a page needs of an uploaded image: its largest URL, its sizes for srcset, its shape."""

    key: str
    alt: str
    width: int
    height: int
    url: str
    srcset: str


def _decode(data: bytes) -> tuple[Image.Image, str]:
    if not data:
        raise ImageRefused("the file is empty")
    if len(data) > MAX_BYTES:
        raise ImageRefused(f"the file is {len(data) / 1024 / 1024:.1f} MB: images may be up to 5 MB")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; any bomb is refused here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(KINDS))
            if image.width * image.height > MAX_PIXELS:
                raise ImageRefused(
                    f"the picture is {image.width} x {image.height} pixels: at most {MAX_PIXELS // 1_000_000} "
                    "million pixels (resize it first)"
                )
            kind = str(image.format)
            image.load()
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("the picture has far too many pixels for its size (resize it first)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageRefused("the file is not a PNG, JPEG or WebP picture (whatever its name says)") from None
    return image, kind


def _clean(image: Image.Image) -> Image.Image:
    """The pixels only, upright: EXIF (camera, place), ICC and text chunks are dropped."""
    upright = ImageOps.exif_transpose(image) or image
    alpha = upright.mode in ("RGBA", "LA") or (upright.mode == "P" and "transparency" in upright.info)
    clean = upright.convert("RGBA" if alpha else "RGB")
    clean.info = {}
    return clean


def _encode(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=82, optimize=True, progressive=True)
    elif kind == "WEBP":
        image.save(buffer, "WEBP", quality=80, method=4)
    else:
        image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def widths_for(width: int) -> list[int]:
    """The widths stored for srcset: the standard ones below the picture's own, and its own up to the largest."""
    out = [w for w in WIDTHS if w < width]
    out.append(min(width, WIDTHS[-1]))
    return sorted(set(out))


def store_image(session: Session, data: bytes, name: str, alt: str, actor: str | None) -> MediaImage:
    """Check, re-encode and store an upload in its sizes; raises ImageRefused and stores nothing when it is bad."""
    alt = (alt or "").strip()
    if not alt:
        raise ImageRefused("describe the picture for people who cannot see it (alt text is required)")
    if len(alt) > 300:
        raise ImageRefused("keep the description under 300 characters")
    image, kind = _decode(data)
    clean = _clean(image)
    ext, mime = KINDS[kind]
    variants = []
    for width in widths_for(clean.width):
        height = max(1, round(clean.height * width / clean.width))
        sized = clean if width == clean.width else clean.resize((width, height), Image.Resampling.LANCZOS)
        encoded = _encode(sized, kind)
        variants.append((width, height, encoded))
    largest = variants[-1][2]
    key = hashlib.sha256(largest).hexdigest()[:20]
    existing = session.scalar(select(MediaImage).where(MediaImage.key == key))
    if existing is not None:
        return existing
    stored = MediaImage(
        key=key,
        alt=alt,
        name=(name or "upload")[:200],
        kind=ext,
        width=variants[-1][0],
        height=variants[-1][1],
        uploaded_by=actor,
        uploaded_at=now(),
    )
    session.add(stored)
    session.flush()
    for width, height, encoded in variants:
        session.add(
            MediaVariant(
                image_id=stored.id,
                width=width,
                height=height,
                content_type=mime,
                etag=hashlib.sha256(encoded).hexdigest()[:32],
                data=encoded,
            )
        )
    record_audit(session, actor, "upload", f"image:{key}", {"name": stored.name, "widths": [v[0] for v in variants]})
    return stored


def url(key: str, width: int, ext: str) -> str:
    """Where one width of an image is served."""
    return f"/media/{key}-{width}.{ext}"


def images_by_key(session: Session) -> dict[str, StoredImage]:
    """Every uploaded image as a page uses it (no bytes are read)."""
    images = {row.id: row for row in session.scalars(select(MediaImage))}
    sizes: dict[int, list[int]] = {}
    for image_id, width in session.execute(select(MediaVariant.image_id, MediaVariant.width)):
        sizes.setdefault(image_id, []).append(width)
    out = {}
    for image_id, image in images.items():
        widths = sorted(sizes.get(image_id, [image.width]))
        out[image.key] = StoredImage(
            key=image.key,
            alt=image.alt,
            width=image.width,
            height=image.height,
            url=url(image.key, widths[-1], image.kind),
            srcset=", ".join(f"{url(image.key, w, image.kind)} {w}w" for w in widths),
        )
    return out


def all_images(session: Session) -> list[MediaImage]:
    """Uploaded images, newest first."""
    return list(session.scalars(select(MediaImage).order_by(MediaImage.id.desc())))


def variant(session: Session, key: str, width: int, ext: str) -> MediaVariant | None:
    """One stored width of an image (its bytes included)."""
    return session.scalar(
        select(MediaVariant)
        .join(MediaImage, MediaImage.id == MediaVariant.image_id)
        .where(MediaImage.key == key, MediaImage.kind == ext, MediaVariant.width == width)
    )
