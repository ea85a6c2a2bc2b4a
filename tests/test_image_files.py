"""Image files read as their owner meant: every bit depth scaled by its full range, alpha that
hides nothing dropped and alpha that does refused, palette and CMYK converted, two files with
one id an error, and the pre-flight check reporting all of it at once. Expected pixels are
computed by hand in the comments."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_preflight import STD, study, write_images

from metamers.data import ImageError, load_image_set, read_image_file
from metamers.data.image_set import ImageListError
from metamers.jobs.preflight import check_study


def alpha_refusal(path: Path, transparent: int, total: int) -> str:
    """The exact message that refuses ``path`` for its transparent pixels."""
    return (f"cannot read image file '{path}': {transparent} of {total} pixels are transparent or partly so, and what "
            "shows through them is the owner's choice; flatten it onto the background you mean and save it without "
            f"alpha, e.g. `convert {path.name} -background white -alpha remove -alpha off {path.name}` (ImageMagick) "
            "or in Python `Image.alpha_composite(Image.new('RGBA', im.size, 'white'), im.convert('RGBA'))"
            f".convert('RGB').save('{path.name}')`")


def refused(path: Path) -> str:
    with pytest.raises(ImageError) as info:
        read_image_file(path)
    return str(info.value)


def write_png(path: Path, rows: np.ndarray, bit_depth: int, colour_type: int) -> Path:
    """A PNG written byte by byte (PIL cannot write 16-bit colour PNGs): ``rows`` is the raw
    samples, ``(H, bytes per row)`` uint8, filter type 0."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    samples = {0: 1, 2: 3}[colour_type]
    width = rows.shape[1] * 8 // (bit_depth * samples)
    header = struct.pack(">IIBBBBB", width, rows.shape[0], bit_depth, colour_type, 0, 0, 0)
    raw = b"".join(b"\0" + row.tobytes() for row in rows)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


# --------------------------------------------------------------------------- bit depth

#: 16-bit samples and round(255 v / 65535) = round(v / 257): 32768/257 = 127.502 -> 128,
#: 257/257 = 1, 128/257 = 0.498 -> 0, 129/257 = 0.502 -> 1, 65534/257 = 254.996 -> 255.
SIXTEEN = np.array([[0, 32768, 65535], [257, 128, 129], [65534, 1, 16448]], dtype=np.uint16)
SIXTEEN_AS_8 = [[0, 128, 255], [1, 0, 1], [255, 0, 64]]  # 16448/257 = 64.0


@pytest.mark.parametrize("writer", ["png I;16", "tiff I;16", "tiff I;16B"])
def test_a_16_bit_grey_file_is_scaled_by_its_full_range_not_clipped(tmp_path, writer):
    kind, mode = writer.split()
    path = tmp_path / ("deep.png" if kind == "png" else "deep.tif")
    dtype = ">u2" if mode == "I;16B" else "<u2"
    Image.frombytes(mode, (3, 3), SIXTEEN.astype(dtype).tobytes()).save(path)
    with Image.open(path) as im:
        assert im.mode == mode  # the mode PIL exposes, as the case says
    pixels = read_image_file(path)
    assert pixels.dtype == np.uint8 and pixels.tolist() == SIXTEEN_AS_8


def test_a_16_bit_image_reaches_the_model_as_its_fraction_of_white(tmp_path):
    (tmp_path / "a").mkdir()
    Image.frombytes("I;16", (3, 3), SIXTEEN.astype("<u2").tobytes()).save(tmp_path / "a" / "deep.png")
    images = load_image_set({"type": "folder", "root": str(tmp_path)})
    x = images.tensor(["a/deep"], (1, 3, 3))
    # 65535 -> 1.0 (saturated white, no longer a clipped 32768 -> 1.0); 32768 -> 128/255
    assert x[0, 0, 0].tolist() == [0.0, torch.tensor(128 / 255).item(), 1.0]


def test_16_bit_colour_and_2_bit_grey_pngs_are_not_clipped(tmp_path):
    # 48-bit RGB: PIL keeps the high byte: 65535 -> 255, 32768 -> 128, 256 -> 1, 255 -> 0, 65280 -> 255
    rgb = np.array([[[65535, 32768, 256], [255, 0, 65280]]], dtype=">u2").view(np.uint8).reshape(1, 12)
    assert read_image_file(write_png(tmp_path / "rgb48.png", rgb, 16, 2)).tolist() == [
        [[255, 128, 1], [0, 0, 255]]]
    # 2-bit grey 0, 1, 2, 3 (one byte 00 01 10 11) -> 0, 85, 170, 255 (255 / 3 = 85)
    grey = np.array([[0b00011011]], dtype=np.uint8)
    assert read_image_file(write_png(tmp_path / "g2.png", grey, 2, 0)).tolist() == [[0, 85, 170, 255]]


def test_32_bit_integer_tiffs_are_scaled_by_their_declared_range(tmp_path):
    # signed 32-bit (PIL mode I, SampleFormat 2): white is 2**31 - 1; 2**30 -> 127.50000006 -> 128
    Image.fromarray(np.array([[0, 2**31 - 1, 2**30]], dtype=np.int32)).save(tmp_path / "s32.tif")
    assert read_image_file(tmp_path / "s32.tif").tolist() == [[0, 255, 128]]
    # unsigned 32-bit (SampleFormat 1; PIL keeps the bits in its signed mode I): white is 2**32 - 1;
    # 2**31 -> 127.50000003 -> 128, 2**24 -> 0.996 -> 1. PIL writes only SampleFormat 2: set it to 1.
    Image.frombytes("I", (4, 1), np.array([0, 2**32 - 1, 2**31, 2**24], dtype="<u4").tobytes()).save(
        tmp_path / "u32.tif")
    data = (tmp_path / "u32.tif").read_bytes()
    signed, unsigned = struct.pack("<HHIH", 339, 3, 1, 2), struct.pack("<HHIH", 339, 3, 1, 1)
    assert data.count(signed) == 1
    (tmp_path / "u32.tif").write_bytes(data.replace(signed, unsigned))
    with Image.open(tmp_path / "u32.tif") as im:
        assert im.mode == "I" and np.asarray(im).tolist() == [[0, -1, -(2**31), 2**24]]
    assert read_image_file(tmp_path / "u32.tif").tolist() == [[0, 255, 128, 1]]


def test_samples_far_below_the_declared_range_are_refused_not_read_as_black(tmp_path):
    """A 16-bit-valued image saved as 32-bit (0..65535 of 0..2**31 - 1) would round to all 0 at 8
    bits; it is refused, naming its maximum and range. One sample of white keeps an image readable."""
    Image.fromarray(np.array([[0, 30000, 65535]], dtype=np.int32)).save(tmp_path / "low.tif")
    assert refused(tmp_path / "low.tif") == (
        f"cannot read image file '{tmp_path / 'low.tif'}': its samples reach only 65535 of a range of 0..2147483647, "
        "so at 8 bits the image is all black; its black and white are not those of its declared depth: rescale it "
        "so that white is the largest value (or save it as an 8- or 16-bit image)")
    Image.fromarray(np.array([[0, 65535, 2**31 - 1]], dtype=np.int32)).save(tmp_path / "ok.tif")
    assert read_image_file(tmp_path / "ok.tif").tolist() == [[0, 0, 255]]


def test_negative_integers_and_floats_outside_0_1_are_refused_with_the_remedy(tmp_path):
    Image.fromarray(np.array([[0, -5, 7]], dtype=np.int32)).save(tmp_path / "neg.tif")
    assert refused(tmp_path / "neg.tif") == (
        f"cannot read image file '{tmp_path / 'neg.tif'}': its 32-bit signed samples run from -5 to 7, outside "
        "0..2147483647, so their black and white are not known; save it as an 8- or 16-bit unsigned image with "
        "black 0 and white the largest value")
    Image.fromarray(np.array([[-0.5, 0.0, 2.0]], dtype=np.float32)).save(tmp_path / "wide.tif")
    assert refused(tmp_path / "wide.tif") == (
        f"cannot read image file '{tmp_path / 'wide.tif'}': its floating-point samples run from -0.5 to 2, and "
        "floats are read only in [0, 1] (0 black, 1 white); scale them into [0, 1] or save it as an 8- or 16-bit "
        "integer image with black 0 and white the largest value")
    Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32)).save(tmp_path / "nan.tif")
    assert "its floating-point samples include NaN or infinity, and floats are read only in [0, 1]" in refused(
        tmp_path / "nan.tif")


def test_float_samples_in_0_1_are_read(tmp_path):
    # 0.5 * 255 = 127.5 -> 128 (half to even, as to_uint8 rounds), 0.25 * 255 = 63.75 -> 64
    Image.fromarray(np.array([[0.0, 0.5, 1.0, 0.25]], dtype=np.float32)).save(tmp_path / "f.tif")
    with Image.open(tmp_path / "f.tif") as im:
        assert im.mode == "F"
    assert read_image_file(tmp_path / "f.tif").tolist() == [[0, 128, 255, 64]]


def test_a_1_bit_image_is_black_and_white(tmp_path):
    im = Image.new("1", (4, 1))
    im.putdata([0, 1, 1, 0])
    im.save(tmp_path / "bw.png")
    with Image.open(tmp_path / "bw.png") as reopened:
        assert reopened.mode == "1"
    pixels = read_image_file(tmp_path / "bw.png")
    assert pixels.dtype == np.uint8 and pixels.tolist() == [[0, 255, 255, 0]]


# --------------------------------------------------------------------------- alpha


def test_content_only_in_alpha_is_refused_and_the_remedy_gives_the_content(tmp_path, monkeypatch):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)  # black everywhere; the drawing is in the alpha
    rgba[..., 3] = [[0, 255], [128, 0]]
    path = tmp_path / "glyph.png"
    Image.fromarray(rgba, "RGBA").save(path)
    assert refused(path) == alpha_refusal(path, 3, 4)  # alpha 0, 128, 0 are below 255; not all black
    # the Python remedy in the message, run as written: over white, v = 255 (255 - a) / 255
    remedy = re.search(r"in Python `(.*)`$", alpha_refusal(path, 3, 4)).group(1)
    monkeypatch.chdir(tmp_path)
    with Image.open(path) as im:
        exec(remedy, {"Image": Image, "im": im})  # noqa: S102 - the message's own code
    grey = [[255, 0], [127, 255]]  # a = 0 -> 255, 255 -> 0, 128 -> 255 * 127 / 255 = 127
    assert read_image_file(path).tolist() == [[[v] * 3 for v in row] for row in grey]


def test_opaque_alpha_gives_exactly_the_pixels_without_it(tmp_path):
    rgb = np.array([[[10, 20, 30], [200, 100, 0]], [[0, 0, 0], [255, 254, 253]]], dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([rgb, np.full((2, 2), 255, np.uint8)]), "RGBA").save(tmp_path / "rgba.png")
    assert read_image_file(tmp_path / "rgba.png").tolist() == read_image_file(tmp_path / "rgb.png").tolist() == \
        rgb.tolist()
    # LA, opaque: the grey band, (H, W) as an L file gives
    Image.fromarray(np.array([[[7, 255], [250, 255]]], dtype=np.uint8), "LA").save(tmp_path / "la.png")
    pixels = read_image_file(tmp_path / "la.png")
    assert pixels.shape == (1, 2) and pixels.tolist() == [[7, 250]]


def test_la_and_colour_key_transparency_are_refused(tmp_path):
    Image.fromarray(np.array([[[7, 255], [250, 0]]], dtype=np.uint8), "LA").save(tmp_path / "la.png")
    assert refused(tmp_path / "la.png") == alpha_refusal(tmp_path / "la.png", 1, 2)
    Image.fromarray(np.array([[0, 100, 200, 100]], dtype=np.uint8)).save(tmp_path / "key.png", transparency=100)
    assert refused(tmp_path / "key.png") == alpha_refusal(tmp_path / "key.png", 2, 4)
    Image.frombytes("I;16", (3, 1), np.array([0, 1000, 65535], "<u2").tobytes()).save(
        tmp_path / "key16.png", transparency=1000)
    assert refused(tmp_path / "key16.png") == alpha_refusal(tmp_path / "key16.png", 1, 3)


# --------------------------------------------------------------------------- palette, CMYK

PALETTE = [255, 0, 0, 0, 255, 0, 0, 0, 255, 128, 128, 128]  # red, green, blue, grey


def palette_image(indices: list[int]) -> Image.Image:
    im = Image.new("P", (len(indices), 1))
    im.putpalette(PALETTE + [0] * (768 - len(PALETTE)))
    im.putdata(indices)
    return im


def test_a_palette_image_is_read_as_its_colours(tmp_path):
    palette_image([0, 1, 2, 3]).save(tmp_path / "p.png")
    assert read_image_file(tmp_path / "p.png").tolist() == [[[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]]]


def test_a_palette_with_transparency_is_refused_only_where_a_pixel_uses_it(tmp_path):
    palette_image([0, 1, 2, 1]).save(tmp_path / "used.png", transparency=1)  # index 1 (green) is transparent
    assert refused(tmp_path / "used.png") == alpha_refusal(tmp_path / "used.png", 2, 4)
    palette_image([0, 1, 2, 0]).save(tmp_path / "unused.png", transparency=3)  # no pixel is grey
    with Image.open(tmp_path / "unused.png") as im:
        assert im.mode == "P" and im.info["transparency"] == 3
    assert read_image_file(tmp_path / "unused.png").tolist() == [[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 0, 0]]]


def test_cmyk_is_converted_to_rgb(tmp_path):
    # PIL: R = (255 - C)(255 - K) / 255, and likewise G from M, B from Y, rounded
    cmyk = np.array([[[255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 255, 0], [0, 0, 0, 255], [0, 0, 0, 0],
                      [0, 0, 0, 128], [100, 0, 0, 50]]], dtype=np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "cmyk.tif")
    assert read_image_file(tmp_path / "cmyk.tif").tolist() == [[
        [0, 255, 255], [255, 0, 255], [255, 255, 0], [0, 0, 0], [255, 255, 255],
        [127, 127, 127],  # 255 * 127 / 255
        [125, 205, 205],  # 155 * 205 / 255 = 124.6; 255 * 205 / 255
    ]]
    # a CMYK JPEG (Adobe, stored inverted): PIL's own conversion, pure cyan within the JPEG's rounding
    Image.fromarray(np.tile(np.array([255, 0, 0, 0], np.uint8), (8, 8, 1)), "CMYK").save(
        tmp_path / "cyan.jpg", quality=100)
    pixels = read_image_file(tmp_path / "cyan.jpg")
    with Image.open(tmp_path / "cyan.jpg") as im:
        assert im.mode == "CMYK" and pixels.tolist() == np.asarray(im.convert("RGB")).tolist()
    assert np.abs(pixels.astype(int) - [0, 255, 255]).max() <= 2


# --------------------------------------------------------------------------- two files, one id


def test_two_files_of_one_class_with_one_stem_are_an_error_naming_both(tmp_path):
    for cls in ("0", "1"):
        (tmp_path / cls).mkdir()
        Image.new("L", (2, 2), 9).save(tmp_path / cls / "a.png")
    Image.new("L", (2, 2), 1).save(tmp_path / "1" / "dup.png")
    Image.new("RGB", (2, 2)).save(tmp_path / "1" / "dup.jpg")
    with pytest.raises(ImageListError) as info:
        load_image_set({"type": "folder", "root": str(tmp_path)})
    assert str(info.value) == (
        f"image folder '{tmp_path}': files share an id (ids are <class>/<file stem>): '1/dup' is "
        f"'{tmp_path / '1' / 'dup.jpg'}' and '{tmp_path / '1' / 'dup.png'}'; rename or remove all but one file of "
        "each id")
    assert info.value.partial.ids == ["0/a", "1/a", "1/dup.jpg", "1/dup.png"]  # every file, for the pre-flight
    (tmp_path / "1" / "dup.jpg").unlink()
    assert load_image_set({"type": "folder", "root": str(tmp_path)}).ids == ["0/a", "1/a", "1/dup"]


def test_two_files_with_one_stem_in_a_flat_folder_are_an_error_naming_both(tmp_path):
    for name in ("x_1.png", "x_1.jpg", "y_0.png", "z_1.png", "z_1.bmp", "z_1.tif"):
        Image.new("L", (2, 2)).save(tmp_path / name)
    with pytest.raises(ImageListError) as info:
        load_image_set({"type": "folder", "root": str(tmp_path), "label_pattern": r"_(\d+)\."})
    assert str(info.value) == (
        f"image folder '{tmp_path}': files share an id (ids are file stems): 'x_1' is '{tmp_path / 'x_1.jpg'}' and "
        f"'{tmp_path / 'x_1.png'}'; 'z_1' is '{tmp_path / 'z_1.bmp'}' and '{tmp_path / 'z_1.png'}' and "
        f"'{tmp_path / 'z_1.tif'}'; rename or remove all but one file of each id")


# --------------------------------------------------------------------------- pre-flight


def test_preflight_reports_a_shared_id_and_a_transparent_image_at_once_and_reads_16_bit(tmp_path):
    imgs = write_images(tmp_path / "imgs", {"0": 2, "1": 2})  # 3 readable 8-bit images per class
    Image.frombytes("I;16", (3, 3), SIXTEEN.astype("<u2").tobytes()).save(imgs / "1" / "deep.png")
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 3] = [[0, 255], [128, 0]]
    Image.fromarray(rgba, "RGBA").save(imgs / "1" / "glyph.png")
    Image.new("L", (28, 28), 3).save(imgs / "1" / "dup.png")
    Image.new("RGB", (28, 28)).save(imgs / "1" / "dup.jpg")
    config = study(models={"std": STD}, generators={"std": ["relu1"]}, evaluators=["std"],
                   images={"type": "folder", "root": str(imgs)}, representation={"baseline": False})
    result = check_study(config)
    assert result.problems == [
        f"images: image folder '{imgs}': files share an id (ids are <class>/<file stem>): '1/dup' is "
        f"'{imgs / '1' / 'dup.jpg'}' and '{imgs / '1' / 'dup.png'}'; rename or remove all but one file of each id",
        f"images: image '1/glyph': {alpha_refusal(imgs / '1' / 'glyph.png', 3, 4)}",
    ]
    # 6 + deep + glyph + both dups: every file read, the 16-bit one without a problem
    assert f"  images: {imgs}: 9 of 10 images read, labels 0..1, converted to (1, 28, 28)" in result.checked
