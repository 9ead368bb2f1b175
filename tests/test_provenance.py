"""AI disclosure: IPTC DigitalSourceType in XMP for JPEG/PNG/WebP, our re-save path, optional C2PA."""

from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
import pytest
from PIL import Image

from headshot_lab import __version__
from headshot_lab.io import load_photo
from headshot_lab.provenance import (
    C2PA_CERT_ENV,
    C2PA_KEY_ENV,
    DIGITAL_SOURCE_TYPES,
    C2PACredentials,
    ProvenanceError,
    build_xmp,
    parse_xmp,
    read_c2pa,
    read_provenance,
    save_with_provenance,
)

FORMATS = ("jpg", "png", "webp")
GENERATED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
RETOUCHED = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"


@pytest.fixture(autouse=True)
def _no_c2pa_env(monkeypatch):
    monkeypatch.delenv(C2PA_CERT_ENV, raising=False)
    monkeypatch.delenv(C2PA_KEY_ENV, raising=False)


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 96 * 64 * 3).reshape(96, 64, 3)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def _make_certs(*, self_signed_leaf: bool = False, eku: bool = True) -> tuple[bytes, bytes, bytes]:
    """(chain PEM: leaf + CA, leaf key PEM, CA PEM) — the recipe c2pa-rs accepts (see DESIGN.md)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hl tests")]
        )

    def usage(*, cert_sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=cert_sign,
            crl_sign=cert_sign,
            encipher_only=False,
            decipher_only=False,
        )

    def builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        builder(name("test CA"), name("test CA"), ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_key, issuer_name = (key, name("signer")) if self_signed_leaf else (ca_key, name("test CA"))
    leaf = (
        builder(name("signer"), issuer_name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(cert_sign=False), critical=True)
    )
    if eku:
        leaf = leaf.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
    leaf = (
        leaf.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    chain = leaf.public_bytes(pem) + (b"" if self_signed_leaf else ca.public_bytes(pem))
    return chain, key_pem, ca.public_bytes(pem)


@pytest.fixture(scope="module")
def certs() -> tuple[bytes, bytes, bytes]:
    return _make_certs()


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("kind", ["generated", "retouched"])
def test_xmp_round_trip_in_every_format(tmp_path, pixels, ext, kind):
    path = save_with_provenance(pixels, tmp_path / f"out.{ext}", kind)
    info = read_provenance(path)
    assert (
        info["digital_source_type"] == DIGITAL_SOURCE_TYPES[kind] == (GENERATED if kind == "generated" else RETOUCHED)
    )
    assert info["kind"] == kind
    assert info["software"] == f"headshot-lab {__version__}"
    assert "AI" in info["disclosure"] and __version__ in info["disclosure"]
    assert info["c2pa"] is None
    # Readable by third-party tooling too (Pillow's own XMP parser), and the pixels survive.
    with Image.open(path) as image:
        assert image.format == {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[ext]
        assert "DigitalSourceType" in json.dumps(image.getxmp())
        decoded = np.asarray(image.convert("RGB"))
    assert decoded.shape == pixels.shape
    if ext == "png":
        assert np.array_equal(decoded, pixels)


@pytest.mark.parametrize("ext", FORMATS)
def test_resave_through_our_path_keeps_disclosure_but_plain_reencode_strips_it(tmp_path, pixels, ext):
    first = save_with_provenance(pixels, tmp_path / f"first.{ext}", "retouched")
    # Our path: load (metadata-free) → save_with_provenance again.
    again = save_with_provenance(load_photo(first, min_side=0).pixels, tmp_path / f"again.{ext}", "retouched")
    assert read_provenance(again)["digital_source_type"] == RETOUCHED
    # A third-party re-encode (plain Pillow save) drops it: documented, and why exports use our writer.
    stripped = tmp_path / f"stripped.{ext}"
    with Image.open(first) as image:
        image.convert("RGB").save(stripped)
    assert read_provenance(stripped)["digital_source_type"] is None


def test_custom_disclosure_with_markup_characters_round_trips(tmp_path, pixels):
    text = 'Made with <AI> & "care" — naïve café'
    path = save_with_provenance(pixels, tmp_path / "x.png", "generated", disclosure=text)
    assert read_provenance(path)["disclosure"] == text


def test_format_override_and_rgba(tmp_path, pixels):
    rgba = np.dstack([pixels, np.full(pixels.shape[:2], 128, np.uint8)])
    png = save_with_provenance(rgba, tmp_path / "a.png", "generated")
    with Image.open(png) as image:
        assert image.mode == "RGBA" and image.getpixel((0, 0))[3] == 128
    jpeg = save_with_provenance(rgba, tmp_path / "b.bin", "generated", format="jpg")
    with Image.open(jpeg) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
    assert read_provenance(jpeg)["kind"] == "generated"


def test_upload_exif_and_gps_never_written(tmp_path, pixels):
    from headshot_lab.io import srgb_icc_profile

    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    upload = Image.fromarray(pixels)
    upload.info["exif"] = exif.tobytes()
    upload.info["icc_profile"] = b"fake-icc"
    for ext in FORMATS:
        path = save_with_provenance(upload, tmp_path / f"o.{ext}", "generated")
        with Image.open(path) as image:
            assert len(image.getexif()) == 0
            assert image.info.get("icc_profile") == srgb_icc_profile()  # ours (sRGB), never the upload's
        data = path.read_bytes()
        assert b"PhoneMaker" not in data and b"Exif\x00\x00" not in data


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path, pixels):
    target = tmp_path / "out.jpg"
    target.write_bytes(b"old")
    save_with_provenance(pixels, target, "generated")
    assert target.read_bytes()[:2] == b"\xff\xd8"
    with pytest.raises(ProvenanceError):
        save_with_provenance(pixels, tmp_path / "bad.jpg", "deepfake")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"]


@pytest.mark.parametrize("name", ["x.gif", "x.tiff", "x"])
def test_unsupported_formats_get_a_clear_error(tmp_path, pixels, name):
    with pytest.raises(ProvenanceError) as info:
        save_with_provenance(pixels, tmp_path / name, "generated")
    assert info.value.code == "unsupported_format" and ".png" in info.value.fix


def test_unknown_kind_names_the_choices(tmp_path, pixels):
    with pytest.raises(ProvenanceError) as info:
        save_with_provenance(pixels, tmp_path / "x.png", "photo")
    assert "generated" in info.value.fix and "retouched" in info.value.fix


def test_parse_xmp_reads_element_form_from_other_tools():
    packet = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
    <rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
      xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
    <Iptc4xmpExt:DigitalSourceType>http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia</Iptc4xmpExt:DigitalSourceType>
    <xmp:CreatorTool>SomeEditor 2.0</xmp:CreatorTool>
    <dc:description><rdf:Alt><rdf:li xml:lang="de">Deutsch</rdf:li><rdf:li xml:lang="x-default">Default</rdf:li></rdf:Alt></dc:description>
    </rdf:Description></rdf:RDF></x:xmpmeta>"""
    assert parse_xmp(packet) == {
        "digital_source_type": GENERATED,
        "software": "SomeEditor 2.0",
        "disclosure": "Default",
    }


def test_parse_xmp_refuses_entity_expansion():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><y>&b;</y></x:xmpmeta>'
    )
    assert parse_xmp(bomb) == {"digital_source_type": None, "disclosure": None, "software": None}
    assert parse_xmp(b"no packet here")["digital_source_type"] is None
    assert parse_xmp(build_xmp("generated"))["digital_source_type"] == GENERATED


def test_read_provenance_missing_file(tmp_path):
    with pytest.raises(ProvenanceError) as info:
        read_provenance(tmp_path / "nope.jpg")
    assert info.value.code == "file_not_found"


@pytest.mark.parametrize("ext", FORMATS)
def test_c2pa_manifest_declares_source_type_and_validates(tmp_path, pixels, certs, ext):
    chain, key, ca = certs
    path = save_with_provenance(pixels, tmp_path / f"s.{ext}", "retouched", c2pa=C2PACredentials(chain, key))
    info = read_provenance(path)
    assert info["digital_source_type"] == RETOUCHED  # the XMP survives signing
    manifest = info["c2pa"]
    assert manifest["validation_state"] == "Valid"
    assert manifest["digital_source_type"] == RETOUCHED
    assert manifest["actions"] == ["c2pa.created"]
    assert manifest["claim_generator"] == [f"headshot-lab {__version__}"]
    assert read_c2pa(path, trust_anchors=ca)["validation_state"] == "Trusted"
    # Any Pillow re-encode removes the manifest.
    reencoded = tmp_path / f"r.{ext}"
    with Image.open(path) as image:
        image.convert("RGB").save(reencoded)
    assert read_c2pa(reencoded) is None


def test_c2pa_detects_tampering(tmp_path, pixels, certs):
    chain, key, _ = certs
    path = save_with_provenance(pixels, tmp_path / "s.png", "generated", c2pa=C2PACredentials(chain, key))
    with Image.open(path) as image:
        original = np.asarray(image)
    data = bytearray(path.read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 20] ^= 0xFF  # flip bits inside the compressed pixel stream
    tampered = tmp_path / "t.png"
    tampered.write_bytes(bytes(data))
    result = read_c2pa(tampered)
    assert result is not None and result["validation_state"] == "Invalid"
    assert original.shape[:2] == pixels.shape[:2]


def test_c2pa_from_environment(tmp_path, pixels, certs, monkeypatch):
    chain, key, _ = certs
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(key)
    monkeypatch.setenv(C2PA_CERT_ENV, str(tmp_path / "chain.pem"))
    monkeypatch.setenv(C2PA_KEY_ENV, str(tmp_path / "key.pem"))
    signed = save_with_provenance(pixels, tmp_path / "env.jpg", "generated")
    assert read_c2pa(signed)["digital_source_type"] == GENERATED
    unsigned = save_with_provenance(pixels, tmp_path / "off.jpg", "generated", c2pa=False)
    assert read_c2pa(unsigned) is None

    monkeypatch.delenv(C2PA_KEY_ENV)
    with pytest.raises(ProvenanceError) as info:
        save_with_provenance(pixels, tmp_path / "half.jpg", "generated")
    assert info.value.code == "c2pa_config" and C2PA_KEY_ENV in info.value.message


def test_c2pa_requested_without_configuration(tmp_path, pixels):
    with pytest.raises(ProvenanceError) as info:
        save_with_provenance(pixels, tmp_path / "x.jpg", "generated", c2pa=True)
    assert info.value.code == "c2pa_config"
    assert not (tmp_path / "x.jpg").exists()


def test_c2pa_certificate_without_eku_refused_clearly(tmp_path, pixels):
    chain, key, _ = _make_certs(eku=False)
    with pytest.raises(ProvenanceError) as info:
        save_with_provenance(pixels, tmp_path / "x.jpg", "generated", c2pa=C2PACredentials(chain, key))
    assert info.value.code == "c2pa_sign_failed" and "EKU" in info.value.fix
    assert not (tmp_path / "x.jpg").exists()


def test_c2pa_self_signed_leaf_signs_but_is_reported_untrusted(tmp_path, pixels, certs):
    chain, key, _ = _make_certs(self_signed_leaf=True)
    path = save_with_provenance(pixels, tmp_path / "x.jpg", "generated", c2pa=C2PACredentials(chain, key))
    result = read_c2pa(path, trust_anchors=certs[2])  # someone else's CA: no chain to it
    assert result["validation_state"] != "Trusted"
    assert any("untrusted" in error for error in result["errors"])


# -- CLI -----------------------------------------------------------------------------------------


@pytest.fixture()
def cli():
    """``headshot-lab`` main entry point."""
    from headshot_lab.cli import main

    return main


def test_cli_provenance_json(tmp_path, pixels, cli, capsys):
    path = save_with_provenance(pixels, tmp_path / "a.webp", "generated")
    assert cli(["provenance", str(path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"digital_source_type", "disclosure", "software", "c2pa"} <= set(payload)
    assert payload["digital_source_type"] == GENERATED and payload["c2pa"] is None


def test_cli_provenance_text_and_stripped_file(tmp_path, pixels, cli, capsys):
    path = save_with_provenance(pixels, tmp_path / "a.jpg", "retouched")
    assert cli(["provenance", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"digital_source_type: {RETOUCHED}" in out and "c2pa: none" in out
    plain = tmp_path / "plain.jpg"
    Image.fromarray(pixels).save(plain)
    assert cli(["provenance", str(plain)]) == 0
    assert "no AI-disclosure metadata" in capsys.readouterr().out


def test_cli_provenance_missing_file(tmp_path, cli, capsys):
    assert cli(["provenance", str(tmp_path / "missing.png")]) == 1
    err = capsys.readouterr().err
    assert "not found" in err and "Traceback" not in err


def test_encoded_bytes_are_a_valid_image(pixels):
    from headshot_lab.provenance import encode_with_provenance

    data = encode_with_provenance(pixels, "webp", "generated")
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (pixels.shape[1], pixels.shape[0])
