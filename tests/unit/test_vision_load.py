"""load_image and media_type: JPEG, PNG and DICOM/DICOS in; what is not an image, corrupt, or too large, refused."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from inspection.vision import load as load_module
from inspection.vision.load import ImageUnreadable, load_image, media_type


def _gradient(h: int = 48, w: int = 64) -> np.ndarray:
    return np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))


def _encode(ext: str, image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_declaring(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose header declares width x height (a decompression bomb when large)."""
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


def _dicom(pixels: np.ndarray, photometric: str = "MONOCHROME2", frames: int = 1, **extra: object) -> bytes:
    """A DICOM file of pixels (frames x rows x cols or rows x cols, uint8 or uint16, or rows x cols x 3 RGB)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta, ds.SOPClassUID = meta, SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    colour = pixels.ndim == 3 and frames == 1
    ds.Rows, ds.Columns = pixels.shape[:2] if colour else pixels.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = (3, "RGB") if colour else (1, photometric)
    if colour:
        ds.PlanarConfiguration = 0
    bits = 16 if pixels.dtype == np.uint16 else 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    if frames > 1:
        ds.NumberOfFrames = frames
    for key, value in extra.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _halves(dtype: type = np.uint16, low: int = 100, high: int = 3900) -> np.ndarray:
    """Left half low, right half high: which side comes out dark tells the photometric handling."""
    pixels = np.full((40, 60), low, dtype)
    pixels[:, 30:] = high
    return pixels


def test_jpeg_and_png_load_as_grey_uint8_of_their_size() -> None:
    image = _gradient()
    for data in (_encode(".jpg", image), _encode(".png", image), _encode(".png", cv2.merge([image] * 3))):
        grey = load_image(data)
        assert grey.shape == (48, 64) and grey.dtype == np.uint8
        assert abs(int(grey[0, 0]) - 0) < 8 and abs(int(grey[0, -1]) - 255) < 8


def test_sixteen_bit_png_comes_out_eight_bit() -> None:
    grey = load_image(_encode(".png", (_gradient().astype(np.uint16) * 257)))
    assert grey.dtype == np.uint8 and grey[0, -1] > 240


def test_media_type_from_the_signature() -> None:
    assert media_type(_encode(".jpg", _gradient())) == "image/jpeg"
    assert media_type(_encode(".png", _gradient())) == "image/png"
    assert media_type(_dicom(_halves())) == "application/dicom"
    assert media_type(b"GIF89a" + b"\0" * 200) == ""
    assert media_type(b"") == ""


def test_dicom_monochrome2_twelve_bits_is_stretched_to_the_full_range() -> None:
    grey = load_image(_dicom(_halves()))
    assert grey.shape == (40, 60) and grey.dtype == np.uint8
    assert grey[0, 0] < 10 and grey[0, -1] > 245


def test_dicom_monochrome1_is_turned_over() -> None:
    grey = load_image(_dicom(_halves(), photometric="MONOCHROME1"))
    assert grey[0, 0] > 245 and grey[0, -1] < 10  # low values are white in MONOCHROME1


def test_dicom_window_is_applied() -> None:
    # A window from 1000 to 3000: both halves lie outside it, so they clip to black and white.
    grey = load_image(_dicom(_halves(low=500, high=3500), WindowCenter=2000, WindowWidth=2000))
    assert grey[0, 0] == 0 and grey[0, -1] == 255
    inside = load_image(_dicom(_halves(low=1500, high=2500), WindowCenter=2000, WindowWidth=4000))
    assert 60 < int(inside[0, 0]) < 128 < int(inside[0, -1]) < 200  # inside a wide window: greys, not extremes


def test_dicom_multi_frame_reads_the_first_frame() -> None:
    first, second = _halves(), _halves()[:, ::-1].copy()
    grey = load_image(_dicom(np.stack([first, second]), frames=2))
    assert grey.shape == (40, 60) and grey[0, 0] < 10 and grey[0, -1] > 245


def test_dicom_eight_bit_grey_is_kept_as_written_and_colour_becomes_grey() -> None:
    pixels = _halves(np.uint8, 40, 200)
    assert np.array_equal(load_image(_dicom(pixels)), pixels)
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, 30:] = (200, 200, 200)
    grey = load_image(_dicom(rgb))
    assert grey.shape == (40, 60) and grey[0, 0] == 0 and grey[0, -1] == 200


@pytest.mark.parametrize("data", [_png_declaring(100_000, 100_000), _png_declaring(8000, 6000)],
                         ids=["10 gigapixels", "48 megapixels"])
def test_a_png_declaring_too_many_pixels_is_refused_before_decoding(data: bytes,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_module.cv2, "imdecode", lambda *a: pytest.fail("decoded a bomb"))
    with pytest.raises(ImageUnreadable, match="image too large"):
        load_image(data)


def test_a_jpeg_declaring_too_many_pixels_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytearray(_encode(".jpg", _gradient()))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)  # height, width
    monkeypatch.setattr(load_module.cv2, "imdecode", lambda *a: pytest.fail("decoded a bomb"))
    with pytest.raises(ImageUnreadable, match="image too large"):
        load_image(bytes(data))


def test_a_dicom_declaring_too_many_pixels_is_refused_before_its_pixels_are_read() -> None:
    small = _dicom(_halves())
    with pytest.raises(ImageUnreadable, match="image too large"):
        load_image(small, max_pixels=40 * 60 - 1)
    with pytest.raises(ImageUnreadable, match="image too large"):
        load_image(_dicom(_halves(), Rows=20000, Columns=20000))  # 400 MP declared, 4.8 kB of pixels


def test_the_pixel_and_byte_limits_are_parameters_with_the_issue_defaults() -> None:
    data = _encode(".png", _gradient())
    assert load_module.MAX_PIXELS == 40_000_000 and load_module.MAX_BYTES == 16 * 1024 * 1024
    with pytest.raises(ImageUnreadable, match="too large"):
        load_image(data, max_pixels=48 * 64 - 1)
    with pytest.raises(ImageUnreadable, match="file too large"):
        load_image(data, max_bytes=len(data) - 1)
    assert load_image(data, max_pixels=48 * 64, max_bytes=len(data)).shape == (48, 64)


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_files_are_refused(cut: float) -> None:
    for data in (_encode(".jpg", _gradient(96, 128)), _encode(".png", _gradient(96, 128)), _dicom(_halves())):
        with pytest.raises(ImageUnreadable, match="truncated|corrupt"):
            load_image(data[: int(len(data) * cut)])


def test_corrupt_headers_are_refused() -> None:
    png = bytearray(_encode(".png", _gradient()))
    png[20] ^= 0xFF  # a byte of the declared height: the IHDR checksum no longer matches
    with pytest.raises(ImageUnreadable, match="corrupt PNG"):
        load_image(bytes(png))
    jpeg = bytearray(_encode(".jpg", _gradient()))
    jpeg[4 + int.from_bytes(jpeg[4:6], "big")] = 0x00  # no marker where the segment after APP0 must start
    with pytest.raises(ImageUnreadable, match="corrupt JPEG: no marker"):
        load_image(bytes(jpeg))
    with pytest.raises(ImageUnreadable, match="corrupt JPEG"):
        load_image(b"\xff\xd8\xff\xda\x00\x04\x00\x00\xff\xd9")  # image data with no frame header
    png_body = bytearray(_encode(".png", _gradient(96, 128)))
    idat = png_body.index(b"IDAT")
    png_body[idat + 8: idat + 40] = b"\x07" * 32  # the compressed pixels scrambled, checksum left stale
    with pytest.raises(ImageUnreadable, match="corrupt PNG"):
        load_image(bytes(png_body))


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7 not an image", b"GIF89a" + b"\0" * 64, b"text" * 100,
                                  b"\0" * 200], ids=["empty", "pdf", "gif", "text", "zeros"])
def test_what_is_not_an_image_is_refused_in_plain_words_without_the_bytes(data: bytes) -> None:
    with pytest.raises(ImageUnreadable) as caught:
        load_image(data)
    reason = caught.value.reason
    assert reason and reason == str(caught.value) and "\n" not in reason
    assert "PDF-1.7" not in reason and "GIF89a" not in reason and "\\x" not in reason


def test_a_dicom_without_pixels_is_refused() -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta, ds.PatientName = meta, "nobody"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    with pytest.raises(ImageUnreadable, match="no image"):
        load_image(out.getvalue())


def test_what_is_not_bytes_is_refused() -> None:
    with pytest.raises(ImageUnreadable, match="expected bytes"):
        load_image("a path, not the file")  # type: ignore[arg-type]


def test_dicom_with_jpeg_pixel_data_is_decoded() -> None:
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    jpeg = _encode(".jpg", _halves(np.uint8, 30, 220))
    data = _dicom(_halves(np.uint8, 30, 220))
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([jpeg])
    ds["PixelData"].VR = "OB"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    grey = load_image(out.getvalue())
    assert grey.shape == (40, 60) and grey[0, 0] < 45 and grey[0, -1] > 205


_ONE_DICOM = _dicom(_halves())  # built once: the mangling below must not depend on a fresh UID's length


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_dicom_mangled_anywhere_is_refused_in_plain_words_or_read(data: st.DataObject) -> None:
    # pydicom reads element values lazily, so a header byte gone wrong surfaces only when Rows is read.
    original = bytearray(_ONE_DICOM)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(128, len(original) - 1))
        original[at] = data.draw(st.integers(0, 255))
    try:
        grey = load_image(bytes(original))
    except ImageUnreadable as refused:
        assert refused.reason and "Traceback" not in refused.reason
    else:
        assert grey.dtype == np.uint8 and grey.ndim == 2


def test_a_dicom_whose_rows_element_has_a_length_its_type_cannot_hold_is_refused() -> None:
    data = bytearray(_ONE_DICOM)
    at = data.index(b"\x28\x00\x10\x00US")  # (0028,0010) Rows, explicit VR little endian: tag, VR, length
    data[at + 6:at + 8] = (3).to_bytes(2, "little")  # an unsigned short cannot be three bytes long
    with pytest.raises(ImageUnreadable, match="DICOM"):
        load_image(bytes(data))
