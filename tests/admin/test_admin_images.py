"""Images: a picture is checked by its content, re-encoded without its metadata, stored in sizes, served with a
year's cache and an ETag; a bad file is refused in words and nothing is stored."""

from __future__ import annotations

import html as html_lib
import io
import re

import pytest
from PIL import Image
from sqlalchemy import func, select

from core.db import db
from studio import post_services
from studio.models import MediaImage, MediaVariant
from tests.admin.test_admin_posts import save, write_valid
from tests.support.forms import field_error


def png(width: int = 1200, height: int = 800, exif: bool = False, kind: str = "PNG") -> bytes:
    image = Image.new("RGB", (width, height), (30, 120, 110))
    buffer = io.BytesIO()
    extra = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "SecretCam"  # Make
        data[0x9003] = "2026:11:01 10:00:00"  # DateTimeOriginal
        extra["exif"] = data.tobytes()
    image.save(buffer, kind, **extra)
    return buffer.getvalue()


def upload(staff, data: bytes, name: str = "knee.png", alt: str = "A knee brace on a table"):
    staff.get("/admin/images")
    return staff.post(
        "/admin/images",
        {"file": (io.BytesIO(data), name), "alt": alt},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def stored(app) -> tuple[int, int]:
    with app.app_context():
        return db.session.scalar(select(func.count(MediaImage.id))), db.session.scalar(
            select(func.count(MediaVariant.id))
        )


def test_a_picture_is_stored_in_sizes_without_its_metadata_and_served_with_long_cache(app, staff, client):
    page = upload(staff, png(exif=True, kind="JPEG"), name="knee.jpg").get_data(as_text=True)
    key = re.search(r"use media:([0-9a-f]+) as a post", page).group(1)
    assert stored(app) == (1, 3)  # 480, 960 and the picture's own 1200
    response = client.get(f"/media/{key}-480.jpg")
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert "max-age=31536000" in response.headers["Cache-Control"]
    small = Image.open(io.BytesIO(response.data))
    assert small.size == (480, 320)
    assert b"SecretCam" not in response.data
    assert not small.getexif()
    again = client.get(f"/media/{key}-480.jpg", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert client.get(f"/media/{key}-481.jpg").status_code == 404


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        (b"MZ\x90\x00 not a picture at all" * 50, "holiday.png", "is not a PNG, JPEG or WebP picture"),
        (b"GIF89a" + b"\x00" * 100, "cat.jpg", "is not a PNG, JPEG or WebP picture"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 5 * 1024 * 1024, "huge.png", "images may be up to 5 MB"),
    ],
    ids=["renamed-non-image", "gif-named-jpg", "over-5-mb"],
)
def test_a_bad_file_is_refused_in_words_and_nothing_is_stored(app, staff, data, name, words):
    response = upload(staff, data, name=name)
    assert response.status_code == 400
    assert words in response.get_data(as_text=True)
    assert stored(app) == (0, 0)


def test_a_decompression_bomb_is_refused(app, staff):
    # A few kilobytes that claim 20,000 x 20,000 pixels (400 million) once decoded.
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG", optimize=True)
    assert len(bomb.getvalue()) < 200_000
    response = upload(staff, bomb.getvalue(), name="bomb.png")
    assert response.status_code == 400
    assert "pixels" in response.get_data(as_text=True)
    assert stored(app) == (0, 0)


def test_alt_text_is_required(app, staff):
    response = upload(staff, png(), alt="  ")
    assert response.status_code == 400
    assert "alt text is required" in response.get_data(as_text=True)
    assert stored(app) == (0, 0)


def test_a_post_shows_an_uploaded_picture_with_srcset(app, staff, client):
    page = upload(staff, png()).get_data(as_text=True)
    key = re.search(r"use media:([0-9a-f]+) as a post", page).group(1)
    with app.app_context(), db.write_transaction() as session:
        doc = {
            "slug": "knee-brace",
            "title": "Knee braces",
            "description": "When a knee brace helps and when it does not, in plain words.",
            "date": "2026-11-20",
            "author": "NexGenEsis clinical team",
            "image": {"src": f"media:{key}", "alt": "A knee brace on a table"},
            "body": "Text.\n",
        }
        record = post_services.create_post(session, doc, "ann@clinic.example")
        post_services.publish_post(session, record, "ann@clinic.example")
    html = client.get("/blog/knee-brace").get_data(as_text=True)
    img = re.search(r'<img class="post-image"[^>]*>', html).group(0)
    assert f'srcset="/media/{key}-480.png 480w, /media/{key}-960.png 960w, /media/{key}-1200.png 1200w"' in img
    assert 'width="1200" height="800"' in img
    assert client.get(f"/media/{key}-960.png").status_code == 200


def test_an_uploaded_picture_in_a_posts_text_is_served_in_its_sizes(staff, client):
    page = upload(staff, png(), name="knee.png", alt="A knee brace").get_data(as_text=True)
    key = re.search(r"use media:([0-9a-f]+) as a post", page).group(1)
    assert f"![A knee brace](media:{key})" in staff.get("/admin/images").get_data(as_text=True)
    write_valid(staff)
    body = f"## Why\n\nCold stiffens the joint.\n\n![A brace that helps](media:{key})\n"
    saved = save(staff, "knee-pain-in-winter", body=body).get_data(as_text=True)
    assert field_error(saved, "body") is None
    staff.post("/admin/posts/knee-pain-in-winter/publish", {"when": "now"}, follow_redirects=True)
    html = client.get("/blog/knee-pain-in-winter").get_data(as_text=True)
    img = re.search(r'<img src="/media/[^>]*alt="A brace that helps"[^>]*>', html).group(0)
    assert f"/media/{key}-480." in img
    assert "srcset=" in img
    assert 'width="1200" height="800"' in img
    assert client.get(re.search(r'src="([^"]+)"', img).group(1)).status_code == 200


def test_a_posts_text_naming_a_picture_not_uploaded_is_refused_beside_the_text(staff, client):
    write_valid(staff)
    saved = save(staff, "knee-pain-in-winter", body="Text.\n\n![Gone](media:0000dead)\n").get_data(as_text=True)
    assert (
        html_lib.unescape(field_error(saved, "body")) == "no uploaded image 'media:0000dead' (upload it under Images)"
    )
    refused = staff.post("/admin/posts/knee-pain-in-winter/publish", {"when": "now"}, follow_redirects=True)
    assert "Not published" in refused.get_data(as_text=True)
