"""Photos as users have them: EXIF orientation, 16-bit and float pixels, transparency, decompression
bombs, fixed sizes that keep the aspect ratio, and non-image files in a photo folder."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from filtviz_core.errors import FiltvizError
from filtviz_core.images import load_image, open_rgb, probe_image
from filtviz_core.photos import default_photos, folder_photos, load_photo
from torch_filtviz.cli import main

RED, BLUE = (255, 0, 0), (0, 0, 255)


def phone_jpeg(path, orientation=6):
    """80 px wide, 40 px high as stored, red top-left corner; EXIF says 'rotate 90 degrees clockwise'."""
    pixels = np.full((40, 80, 3), 255, np.uint8)
    pixels[:10, :10] = RED
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(path, format="JPEG", quality=95, exif=exif)
    return path


def test_exif_orientation_6_loads_as_a_viewer_shows_it(tmp_path):
    loaded = load_image(phone_jpeg(tmp_path / "phone.jpg"))
    assert loaded.shape == (80, 40, 3)  # upright: 40 wide, 80 high
    # Orientation 6: the stored top-left corner is shown at the top right.
    assert loaded[:8, -8:].mean(axis=(0, 1)) == pytest.approx(RED, abs=12)
    assert loaded[:8, :8].min() > 240 and loaded[-8:, -8:].min() > 240


def test_16_bit_png_gradient_is_scaled_not_clipped(tmp_path):
    ramp = np.round(np.linspace(0, 65535, 256)).astype(np.uint16)[None, :].repeat(8, 0)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    assert Image.open(tmp_path / "ramp16.png").mode.startswith("I")  # really stored as 16 bits
    loaded = load_image(tmp_path / "ramp16.png")
    assert loaded.shape == (8, 256, 3) and loaded.dtype == np.uint8
    row = loaded[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row) >= 0)
    assert np.abs(row - np.arange(256)).max() <= 1  # the gradient survives
    assert (loaded == 255).mean() < 0.01  # not 99.6% white


def test_float_image_in_0_1_is_scaled_to_0_255(tmp_path):
    values = np.array([[0.0, 0.25, 0.5, 1.0]] * 4, np.float32)
    Image.fromarray(values, mode="F").save(tmp_path / "float.tif")
    loaded = load_image(tmp_path / "float.tif")
    assert loaded[0, :, 0].tolist() == [0, 64, 128, 255]


def test_alpha_is_composited_over_the_background(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)  # transparent black ...
    rgba[:2] = (255, 0, 0, 128)  # ... and half-transparent red
    Image.fromarray(rgba, "RGBA").save(tmp_path / "logo.png")
    on_white = load_image(tmp_path / "logo.png")
    assert on_white[3, 3].tolist() == [255, 255, 255]  # hidden black does not show
    assert on_white[0, 0].tolist() == pytest.approx([255, 127, 127], abs=1)
    on_black = load_image(tmp_path / "logo.png", background=(0, 0, 0))
    assert on_black[3, 3].tolist() == [0, 0, 0] and on_black[0, 0].tolist() == pytest.approx([128, 0, 0], abs=1)


def png_claiming(width, height):
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's shape)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_with_one_line(tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(30_000, 30_000))
    assert bomb.stat().st_size < 200
    for read in (load_image, open_rgb, probe_image):
        with pytest.raises(FiltvizError, match="decompression bomb"):
            read(bomb)
    code = main(["maps", str(bomb), "--weights", "random", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "refusing" in err and "900,000,000 px" in err


def stripes(path):
    """200 px wide, 100 px high: red left quarter, blue right quarter, grey middle."""
    pixels = np.full((100, 200, 3), 128, np.uint8)
    pixels[:, :50], pixels[:, 150:] = RED, BLUE
    Image.fromarray(pixels).save(path)
    return path


def test_fixed_size_keeps_the_aspect_ratio(tmp_path):
    path = stripes(tmp_path / "wide.png")
    cropped = load_image(path, size=50)  # short side to 50 (100x50), centre 50x50: only the grey middle
    assert cropped.shape == (50, 50, 3) and np.abs(cropped[:, 2:-2].astype(int) - 128).max() <= 1
    assert cropped[:, 0, 0].mean() < 200  # no red stripe kept: the sides were cropped, not squashed
    padded = load_image(path, size=50, fit="pad", background=(0, 255, 0))  # long side to 50 (50x25), padded
    assert padded.shape == (50, 50, 3)
    assert padded[:12].reshape(-1, 3).tolist() == [[0, 255, 0]] * (12 * 50)  # the pad above
    assert padded[25, 2].tolist() == pytest.approx(list(RED), abs=2) and padded[25, -3].tolist() == pytest.approx(
        list(BLUE), abs=2
    )
    stretched = load_image(path, size=50, fit="stretch")
    assert stretched[25, 2].tolist() == pytest.approx(list(RED), abs=2)  # the old squash, still available
    with pytest.raises(FiltvizError, match="unknown fit"):
        load_image(path, size=50, fit="zoom")


def test_photo_folder_skips_a_non_image_with_one_warning(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    stripes(folder / "b_wide.png")
    phone_jpeg(folder / "a_phone.jpg")
    (folder / "notes.txt").write_text("not a picture")
    (folder / ".hidden.png").write_bytes(b"")
    lines = []
    photos = folder_photos(folder, warn=lines.append)
    assert [p.name for p in photos] == ["a_phone", "b_wide"]
    assert len(lines) == 1 and "notes.txt" in lines[0] and lines[0].startswith("warning: skipping")
    upright = load_photo(photos[0], short_side=20)
    assert upright.shape == (40, 20, 3)  # EXIF honoured, short side 20, nothing cropped
    (folder / "b_wide.png").unlink()
    (folder / "a_phone.jpg").unlink()
    with pytest.raises(FiltvizError, match="no readable image"):
        folder_photos(folder, warn=lines.append)


def test_default_photos_are_colour_photos_installed_here():
    photos = default_photos()
    names = [p.name for p in photos]
    assert "grace_hopper" in names and len(set(names)) == len(names)
    assert {"astronaut", "coffee", "chelsea", "rocket", "motorcycle", "china", "flower"} <= set(names)
    for photo in photos:
        pixels = load_photo(photo, short_side=64)
        assert min(pixels.shape[:2]) == 64 and photo.credit
        assert pixels.std(axis=2).mean() > 5  # colour, not grey
