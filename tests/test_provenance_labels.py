"""Labels never weaken, no personal data in any output, and provenance on hostile files (issue 19)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from headshot_lab.provenance import (
    DIGITAL_SOURCE_TYPES,
    IPTC_DST,
    build_xmp,
    c2pa_manifest,
    read_provenance,
    save_with_provenance,
    source_type_term,
    strongest_source_type,
)

GENERATED = DIGITAL_SOURCE_TYPES["generated"]
RETOUCHED = DIGITAL_SOURCE_TYPES["retouched"]


def _face(real_photos, side: int = 512) -> Image.Image:
    with Image.open(real_photos["obama"]) as opened:
        face = opened.convert("RGB")
    face.thumbnail((side, side))
    return face


# -- the ranking --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("upload", "expected"),
    [
        (None, RETOUCHED),
        (IPTC_DST + "digitalCapture", RETOUCHED),  # a camera photo: the process's own label
        (IPTC_DST + "algorithmicallyEnhanced", RETOUCHED),  # weaker than a composite with a trained model
        (IPTC_DST + "compositeSynthetic", RETOUCHED),  # a tie keeps the process's own
        (IPTC_DST + "trainedAlgorithmicMedia", GENERATED),
        ("trainedAlgorithmicMedia", GENERATED),  # a bare term, as some tools write it
        (IPTC_DST + "algorithmicMedia", IPTC_DST + "algorithmicMedia"),
        ("http://example.org/made-up", RETOUCHED),
        ("", RETOUCHED),
    ],
)
def test_strongest_source_type_of_a_retouch(upload, expected):
    assert strongest_source_type(RETOUCHED, upload) == expected


def test_generated_is_never_weakened_by_any_upload():
    for term in ("digitalCapture", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia", None):
        assert strongest_source_type(GENERATED, term and IPTC_DST + term) == GENERATED
    assert source_type_term(GENERATED) == "trainedAlgorithmicMedia"


@pytest.mark.parametrize("ext", ["jpg", "png", "webp"])
def test_retouched_output_of_an_ai_labelled_upload_stays_ai_generated(tmp_path, ext):
    pixels = np.full((64, 64, 3), 120, np.uint8)
    path = save_with_provenance(pixels, tmp_path / f"out.{ext}", "retouched", source_type=GENERATED, c2pa=False)
    info = read_provenance(path, c2pa=False)
    assert info["digital_source_type"] == GENERATED and info["kind"] == "generated"
    assert "arrived labelled" in info["disclosure"]
    plain = save_with_provenance(pixels, tmp_path / f"plain.{ext}", "retouched", c2pa=False)
    assert read_provenance(plain, c2pa=False)["digital_source_type"] == RETOUCHED  # the null: no upload label
    manifest = c2pa_manifest("retouched", title="x", fmt="PNG", source_type=GENERATED)
    action = manifest["assertions"][0]["data"]["actions"][0]  # type: ignore[index]
    assert action["digitalSourceType"] == GENERATED


def test_app_path_upload_stored_retouched_and_exported_keeps_the_label(tmp_path, real_photos):
    """Upload (labelled by another AI tool) → stored by save_image → retouch → export crops: all say AI-generated."""
    from headshot_lab import workflow
    from headshot_lab.export import export_headshots
    from headshot_lab.io import load_photo, save_image

    upload, plain = tmp_path / "upload.jpg", tmp_path / "plain.jpg"
    _face(real_photos, 384).save(upload, quality=92, xmp=build_xmp("generated", disclosure="Made by another tool."))
    _face(real_photos, 384).save(plain, quality=92)  # the null: an unlabelled photo through the same path
    stored = save_image(load_photo(upload), tmp_path / "session" / "upload.png")  # what the app keeps
    photos = {"upload.png": stored, "plain.jpg": plain}
    batch = workflow.retouch_photos(photos, "corporate", tmp_path / "out", crops=("square",))
    assert len(batch.outputs) == 2, batch.failures
    labelled, unlabelled = batch.outputs
    assert labelled.facts["digital_source_type"] == "trainedAlgorithmicMedia"
    assert unlabelled.facts["digital_source_type"] == "compositeWithTrainedAlgorithmicMedia"
    for path in labelled.paths:
        assert read_provenance(path, c2pa=False)["digital_source_type"] == GENERATED
    assert read_provenance(unlabelled.paths[0], c2pa=False)["digital_source_type"] == RETOUCHED
    exported = export_headshots(labelled.paths[0], tmp_path / "export", ("square",), kind="retouched", face=None)
    for image in exported.images:
        assert read_provenance(image.path, c2pa=False)["digital_source_type"] == GENERATED


# -- provenance on hostile files -----------------------------------------------------------------------------
def test_provenance_of_an_image_over_every_pixel_cap_reads_its_label(tmp_path):
    """A PNG declaring 40000×40000 (Pillow raises DecompressionBombError on open): the XMP is still read."""
    from headshot_lab.testing.hostile import png_of_zeros, png_with_chunks

    packet = build_xmp("generated").decode("utf-8")
    chunk = b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + packet.encode("utf-8")
    path = tmp_path / "huge.png"
    path.write_bytes(png_with_chunks(png_of_zeros(40000, 40000, rows=2), [(b"iTXt", chunk)]))
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    info = read_provenance(path)
    assert info["digital_source_type"] == GENERATED and info["c2pa"] is None
    bare = tmp_path / "huge-bare.png"
    bare.write_bytes(png_of_zeros(40000, 40000, rows=2))
    assert read_provenance(bare)["digital_source_type"] is None


def test_xmp_search_is_linear_on_unclosed_packets(tmp_path):
    """Thousands of unclosed ``<x:xmpmeta`` tags: found nothing, in one pass (a lazy regex was quadratic)."""
    from headshot_lab.provenance import parse_xmp

    path = tmp_path / "tags.webp"
    path.write_bytes(b"<x:xmpmeta " * 200_000)
    assert read_provenance(path)["digital_source_type"] is None
    assert parse_xmp(b"<x:xmpmeta " * 50_000)["digital_source_type"] is None


# -- planted personal data: never in any output --------------------------------------------------------------
PLANTED = (b"PlantedMaker", b"SN-PLANTED-8841", b"Planted Person", b"planted@example.org", b"Plantedville")
PLANTED += (b"Planted Byline", b"planted comment", b"Planted Author")


def _exif_with_personal_data() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PlantedMaker"
    exif[0x013B] = "Planted Person"
    exif[0x0112] = 1
    exif.get_ifd(0x8769)[0xA431] = "SN-PLANTED-8841"  # BodySerialNumber
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    return exif.tobytes()


PERSONAL_XMP = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/"
 xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"
 photoshop:City="Plantedville" exif:GPSLatitude="52,31.2N" exif:GPSLongitude="13,24.6E">
<dc:creator><rdf:Seq><rdf:li>Planted Person</rdf:li></rdf:Seq></dc:creator>
<Iptc4xmpCore:CreatorContactInfo rdf:parseType="Resource"><Iptc4xmpCore:CiEmailWork>planted@example.org</Iptc4xmpCore:CiEmailWork>
</Iptc4xmpCore:CreatorContactInfo></rdf:Description></rdf:RDF></x:xmpmeta>"""


def _iptc_app13(byline: bytes) -> bytes:
    """An APP13 segment: Photoshop 3.0 image resource 0x0404 holding IPTC-IIM 2:80 (By-line)."""
    iim = b"\x1c\x02\x50" + struct.pack(">H", len(byline)) + byline
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iim)) + iim
    payload = b"Photoshop 3.0\x00" + resource + (b"\x00" if len(resource) % 2 else b"")
    return b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload


def planted_uploads(face: Image.Image, folder: Path) -> list[Path]:
    """A JPEG, PNG and WebP carrying GPS, serial, maker, author, XMP contact fields, IPTC by-line and comments."""
    jpeg = io.BytesIO()
    face.save(jpeg, "JPEG", quality=92, exif=_exif_with_personal_data(), xmp=PERSONAL_XMP, comment=b"planted comment")
    data = jpeg.getvalue()
    jpeg_path = folder / "planted.jpg"
    jpeg_path.write_bytes(data[:2] + _iptc_app13(b"Planted Byline") + data[2:])
    info = PngInfo()
    info.add_text("Author", "Planted Author")
    info.add_itxt("XML:com.adobe.xmp", PERSONAL_XMP.decode())
    info.add_text("Comment", "planted comment", zip=True)
    png_path = folder / "planted.png"
    face.save(png_path, "PNG", pnginfo=info, exif=_exif_with_personal_data())
    webp_path = folder / "planted.webp"
    face.save(webp_path, "WEBP", quality=90, exif=_exif_with_personal_data(), xmp=PERSONAL_XMP)
    return [jpeg_path, png_path, webp_path]


def planted_found(path: Path) -> list[str]:
    """What of the planted data a file holds: byte strings (case-insensitive) and a GPS IFD in its EXIF."""
    data = path.read_bytes().lower()
    found = [marker.decode() for marker in PLANTED if marker.lower() in data]
    with Image.open(path) as image:
        exif = image.getexif()
        if exif.get_ifd(0x8825) or 0x010F in exif or exif.get_ifd(0x8769).get(0xA431):
            found.append("EXIF GPS/maker/serial")
    if b"gpslatitude" in data:
        found.append("XMP GPS")
    return found


def test_no_planted_personal_data_in_any_output(tmp_path, real_photos):
    from headshot_lab import workflow
    from headshot_lab.export import export_headshots
    from headshot_lab.io import load_photo, save_image

    uploads = planted_uploads(_face(real_photos, 384), tmp_path)
    for upload in uploads:  # the null: the scanner sees everything planted in the inputs
        found = planted_found(upload)
        assert "EXIF GPS/maker/serial" in found and "Planted Person" in found and "XMP GPS" in found, found
    assert "Planted Byline" in planted_found(uploads[0]) and "Planted Author" in planted_found(uploads[1])

    outputs: list[Path] = []
    for upload in uploads:
        photo = load_photo(upload)
        for suffix in (".png", ".jpg", ".webp"):
            outputs.append(save_image(photo, tmp_path / "stored" / f"{upload.stem}-{upload.suffix[1:]}{suffix}"))
        with Image.open(upload) as opened:  # a PIL image still holding its info dict
            for suffix in (".png", ".jpg", ".webp"):
                target = tmp_path / "prov" / f"{upload.stem}-{upload.suffix[1:]}{suffix}"
                target.parent.mkdir(exist_ok=True)
                outputs.append(save_with_provenance(opened, target, "generated", c2pa=False))
        exported = export_headshots(upload, tmp_path / "export" / upload.suffix[1:], ("square", "banner"), face=None)
        outputs += [image.path for image in exported.images]
    batch = workflow.retouch_photos(
        {upload.name: upload for upload in uploads}, "corporate", tmp_path / "retouch", crops=("square",)
    )
    outputs += [path for output in batch.outputs for path in output.paths]
    assert len(outputs) >= 3 * (3 + 3 + 2) + 3
    leaks = {str(path.relative_to(tmp_path)): found for path in outputs if (found := planted_found(path))}
    assert not leaks, leaks
