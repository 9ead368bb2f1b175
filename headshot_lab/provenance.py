"""AI disclosure written into every exported image: IPTC DigitalSourceType in XMP, optional C2PA.

What goes into the file (XMP packet, JPEG APP1 / PNG ``iTXt XML:com.adobe.xmp`` / WebP ``XMP`` chunk):

==================================  ============================================================
property                            value
==================================  ============================================================
``Iptc4xmpExt:DigitalSourceType``   ``…/digitalsourcetype/trainedAlgorithmicMedia`` (generated) or
                                    ``…/compositeWithTrainedAlgorithmicMedia`` (retouched photo)
``dc:description``                  one disclosure sentence (``x-default``)
``xmp:CreatorTool``                 ``headshot-lab <version>`` (the software agent)
``xmp:CreateDate``                  when the file was written (UTC)
==================================  ============================================================

Nothing else is carried over: pixels are copied into a fresh image, so no EXIF (GPS, camera
serial, capture time), ICC, comment or XMP of an upload can reach an output. Every output is tagged
with an sRGB ICC profile (:func:`headshot_lab.io.srgb_icc_profile`): its pixels are sRGB values.

**Labels never weaken.** An upload may already declare a digital source type (another tool's
``trainedAlgorithmicMedia``); :func:`headshot_lab.io.load_photo` reads it, and an output made from it
carries the stronger of that and its own (:func:`strongest_source_type`, ranked by
:data:`SOURCE_TYPE_RANK`): a retouched AI-generated image stays labelled AI-generated.

**Any plain re-save drops it.** Pillow, phones, social networks and most editors re-encode
without XMP (and any re-encode breaks a C2PA manifest). :func:`save_with_provenance` is the one
writer the export path uses, so re-saving *through headshot-lab* keeps the disclosure; a
third-party re-encode strips it, which no file-embedded metadata can prevent.

**C2PA (optional).** With ``HEADSHOT_LAB_C2PA_CERT`` (PEM chain: signing certificate, then its
CA) and ``HEADSHOT_LAB_C2PA_KEY`` (PEM private key, EC P-256 → ES256) set, the file also gets a
signed C2PA manifest whose ``c2pa.created`` action declares the same digital source type. Signing
is offline (no timestamp authority). c2pa-rs refuses a signing certificate without an extended key
usage (documentSigning/emailProtection); a self-signed one signs but reads back as untrusted.
:func:`read_c2pa` reports ``Valid`` (signature and hashes good) or, given the CA as a trust
anchor, ``Trusted``.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from headshot_lab import __version__
from headshot_lab.atomic import write_bytes_atomic
from headshot_lab.config import ENV_PREFIX
from headshot_lab.errors import HeadshotLabError

IPTC_DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"
DIGITAL_SOURCE_TYPES: dict[str, str] = {
    "generated": IPTC_DST + "trainedAlgorithmicMedia",
    "retouched": IPTC_DST + "compositeWithTrainedAlgorithmicMedia",
}
"""``kind`` → IPTC NewsCodes digital source type URI."""
#: How much of the image a machine made, per IPTC digital source type (higher = stronger label); a type
#: not listed (a capture, a human edit, an unknown term) ranks 0. Ties keep the process's own type.
SOURCE_TYPE_RANK: dict[str, int] = {
    "trainedAlgorithmicMedia": 5,  # made by a trained model (generative AI)
    "algorithmicMedia": 4,  # made by an algorithm without training data
    "compositeWithTrainedAlgorithmicMedia": 3,  # a photo with parts made by a trained model
    "compositeSynthetic": 3,  # a composite that includes synthetic elements
    "algorithmicallyEnhanced": 2,  # a photo enhanced by an algorithm
    "dataDrivenMedia": 1,
    "digitalCreation": 1,
    "composite": 1,
}
Kind = Literal["generated", "retouched"]
DISCLOSURES: dict[str, str] = {
    "generated": "AI-generated image: a synthetic portrait made by headshot-lab {version}, not a photograph.",
    "retouched": "AI-edited photo: background, light or framing changed by headshot-lab {version}.",
}
SOFTWARE = f"headshot-lab {__version__}"
FORMATS: dict[str, str] = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_EXTENSIONS: dict[str, str] = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
PNG_XMP_KEY = "XML:com.adobe.xmp"
PNG_COMPRESS_LEVEL = 3
"""zlib level for PNG: 3 is ~3× faster than Pillow's default 6 on a 1080² photo for ~9 % more bytes."""
C2PA_CERT_ENV = ENV_PREFIX + "C2PA_CERT"
C2PA_KEY_ENV = ENV_PREFIX + "C2PA_KEY"

_NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
}
#: headshot-lab's own XMP namespace: extra properties such as the team style guide (``StyleGuide``,
#: ``StyleGuideVersion``) written by ``properties=`` and read back by :func:`read_properties`.
HEADSHOT_LAB_NS = "https://github.com/headshot-lab/ns/1.0/"
_PROPERTY_NAME = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")


class ProvenanceError(HeadshotLabError):
    code = "provenance_error"


@dataclass(frozen=True)
class C2PACredentials:
    """A signing certificate chain (PEM: leaf first, then CA) and its private key (PEM)."""

    cert_chain: bytes
    private_key: bytes
    algorithm: str = "ES256"

    @classmethod
    def from_env(cls) -> C2PACredentials | None:
        """Read ``HEADSHOT_LAB_C2PA_CERT`` / ``HEADSHOT_LAB_C2PA_KEY`` (file paths); ``None`` when unset."""
        cert, key = os.environ.get(C2PA_CERT_ENV), os.environ.get(C2PA_KEY_ENV)
        if not cert and not key:
            return None
        if not cert or not key:
            missing = C2PA_KEY_ENV if cert else C2PA_CERT_ENV
            raise ProvenanceError(
                f"C2PA signing is half configured: {missing} is not set.",
                fix=f"Set both {C2PA_CERT_ENV} (PEM certificate chain) and {C2PA_KEY_ENV} (PEM key), or neither.",
                code="c2pa_config",
            )
        try:
            return cls(Path(cert).expanduser().read_bytes(), Path(key).expanduser().read_bytes())
        except OSError as exc:
            raise ProvenanceError(
                f"Cannot read the C2PA certificate or key: {exc.strerror}.",
                fix=f"Point {C2PA_CERT_ENV} and {C2PA_KEY_ENV} at readable PEM files.",
                code="c2pa_config",
            ) from None


def digital_source_type(kind: str) -> str:
    """The IPTC URI for ``kind`` (``"generated"`` or ``"retouched"``)."""
    try:
        return DIGITAL_SOURCE_TYPES[kind]
    except KeyError:
        raise ProvenanceError(
            f"Unknown image kind {kind!r}.",
            fix=f"Use one of: {', '.join(DIGITAL_SOURCE_TYPES)}.",
            code="unknown_kind",
        ) from None


def source_type_term(uri: str | None) -> str:
    """The NewsCodes term of a digital source type (``…/digitalsourcetype/X`` or bare ``X``) → ``X``."""
    return (uri or "").strip().rstrip("/").rsplit("/", 1)[-1]


def strongest_source_type(own: str, *others: str | None) -> str:
    """The digital source type URI that says the most about machine involvement: ``own`` or one of ``others``.

    Ranked by :data:`SOURCE_TYPE_RANK`; ``own`` (this process's type) wins ties and beats anything
    unranked, so an upload labelled ``digitalCapture`` (or nothing) never changes the label. A bare
    term is returned as its full IPTC URI.
    """
    best = own
    for other in others:
        term = source_type_term(other)
        if SOURCE_TYPE_RANK.get(term, 0) > SOURCE_TYPE_RANK.get(source_type_term(best), 0):
            best = IPTC_DST + term
    return best


def _inherited_disclosure(kind: str, source: str) -> str | None:
    """The disclosure line when an upload's stronger label replaces the process's own, else ``None``."""
    if source == digital_source_type(kind):
        return None
    term = source_type_term(source)
    what = "AI-generated image" if term == "trainedAlgorithmicMedia" else f"Synthetic or AI-made image ({term})"
    return f"{what}: it arrived labelled so, then was edited by headshot-lab {__version__}."


def disclosure_text(kind: str) -> str:
    """The default one-line disclosure for ``kind``."""
    digital_source_type(kind)
    return DISCLOSURES[kind].format(version=__version__)


def build_xmp(
    kind: str,
    *,
    disclosure: str | None = None,
    created: datetime | None = None,
    source_type: str | None = None,
    properties: Mapping[str, str] | None = None,
    history: str | None = None,
) -> bytes:
    """The XMP packet (UTF-8 bytes) declaring ``kind`` with a disclosure line and the software agent.

    ``properties``: extra ``{Name: text}`` written in headshot-lab's namespace (:data:`HEADSHOT_LAB_NS`),
    e.g. ``{"StyleGuide": "company", "StyleGuideVersion": "2026.1"}``; names are ``[A-Z][A-Za-z0-9]*``.

    ``source_type``: an input's digital source type; the packet declares the stronger of it and
    ``kind``'s (:func:`strongest_source_type`), with a disclosure saying so when the input's wins.
    ``history``: what was done to the pixels (e.g. ``upscaled 4× by lanczos from 512×512 px``), written as
    ``photoshop:History`` and appended to the disclosure line (:func:`read_history` reads it back).
    """
    source = strongest_source_type(digital_source_type(kind), source_type)
    text = disclosure if disclosure is not None else _inherited_disclosure(kind, source) or disclosure_text(kind)
    if history:
        text = f"{text} {history[:1].upper()}{history[1:]}."
    history_attr = f"\n    photoshop:History={quoteattr(history)}" if history else ""
    history_ns = f'\n    xmlns:photoshop="{_NS["photoshop"]}"' if history else ""
    when = (created or datetime.now(UTC)).isoformat(timespec="seconds")
    extra = _property_attributes(properties)
    packet = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="{_NS["x"]}" x:xmptk={quoteattr(SOFTWARE)}>
 <rdf:RDF xmlns:rdf="{_NS["rdf"]}">
  <rdf:Description rdf:about=""
    xmlns:dc="{_NS["dc"]}"
    xmlns:xmp="{_NS["xmp"]}"
    xmlns:Iptc4xmpExt="{_NS["Iptc4xmpExt"]}"{history_ns}{extra}
    Iptc4xmpExt:DigitalSourceType={quoteattr(source)}
    xmp:CreatorTool={quoteattr(SOFTWARE)}
    xmp:CreateDate={quoteattr(when)}
    xmp:MetadataDate={quoteattr(when)}{history_attr}>
   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">{escape(text)}</rdf:li>
    </rdf:Alt>
   </dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
    return packet.encode("utf-8")


def _property_attributes(properties: Mapping[str, str] | None) -> str:
    """The namespace declaration and one ``headshotlab:Name="text"`` attribute per property ("" for none)."""
    if not properties:
        return ""
    bad = [name for name in properties if not _PROPERTY_NAME.match(str(name))]
    if bad:
        raise ProvenanceError(f"XMP property name {bad[0]!r} is not allowed.", fix="Use e.g. StyleGuideVersion.")
    attributes = "".join(
        f"\n    headshotlab:{name}={quoteattr(str(value))}" for name, value in sorted(properties.items())
    )
    return f'\n    xmlns:headshotlab="{HEADSHOT_LAB_NS}"' + attributes


def parse_properties(packet: bytes | str) -> dict[str, str]:
    """The headshot-lab properties (``properties=`` of :func:`build_xmp`) in an XMP packet; ``{}`` when none."""
    from defusedxml import ElementTree

    data = packet.encode("utf-8") if isinstance(packet, str) else packet
    block = _find_xmp_packet(data)
    if not block:
        return {}
    try:
        root = ElementTree.fromstring(block)
    except Exception:  # defusedxml raises several types for hostile or broken XML
        return {}
    prefix = f"{{{HEADSHOT_LAB_NS}}}"
    found: dict[str, str] = {}
    for description in root.iter(f"{{{_NS['rdf']}}}Description"):
        for key, value in description.attrib.items():
            if key.startswith(prefix):
                found.setdefault(key[len(prefix) :], value)
    return found


def read_properties(path: str | Path) -> dict[str, str]:
    """The headshot-lab XMP properties stored in an image file (e.g. its team style guide and version)."""
    raw = _raw_xmp(Path(path))
    return parse_properties(raw) if raw else {}


def source_type_xmp(source_type: str) -> bytes:
    """An XMP packet declaring only ``source_type`` (a URI or bare term): how a stored upload keeps its label."""
    uri = IPTC_DST + source_type_term(source_type)
    packet = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="{_NS["x"]}">
 <rdf:RDF xmlns:rdf="{_NS["rdf"]}">
  <rdf:Description rdf:about="" xmlns:Iptc4xmpExt="{_NS["Iptc4xmpExt"]}"
    Iptc4xmpExt:DigitalSourceType={quoteattr(uri)}/>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
    return packet.encode("utf-8")


def parse_xmp(packet: bytes | str) -> dict[str, str | None]:
    """``{"digital_source_type", "disclosure", "software"}`` from an XMP packet (missing → ``None``).

    Accepts the properties written as attributes or as elements, as other tools do.
    """
    from defusedxml import ElementTree

    data = packet.encode("utf-8") if isinstance(packet, str) else packet
    block = _find_xmp_packet(data)
    result: dict[str, str | None] = {"digital_source_type": None, "disclosure": None, "software": None}
    if not block:
        return result
    try:
        root = ElementTree.fromstring(block)
    except Exception:  # defusedxml raises several types for hostile or broken XML
        return result
    wanted = {
        "digital_source_type": f"{{{_NS['Iptc4xmpExt']}}}DigitalSourceType",
        "software": f"{{{_NS['xmp']}}}CreatorTool",
    }
    for description in root.iter(f"{{{_NS['rdf']}}}Description"):
        for key, tag in wanted.items():
            value = description.get(tag)
            if value is None and (child := description.find(tag)) is not None:
                value = child.get(f"{{{_NS['rdf']}}}resource") or (child.text or "").strip() or None
            result[key] = result[key] or value
        if result["disclosure"] is None and (node := description.find(f"{{{_NS['dc']}}}description")) is not None:
            items = node.findall(f".//{{{_NS['rdf']}}}li")
            default = [li for li in items if li.get("{http://www.w3.org/XML/1998/namespace}lang") == "x-default"]
            chosen = (default or items or [node])[0]
            result["disclosure"] = (chosen.text or "").strip() or None
    return result


def history_of(packet: bytes | str | None) -> str | None:
    """The ``photoshop:History`` of an XMP packet (what :func:`build_xmp` was given as ``history``), else ``None``."""
    from defusedxml import ElementTree

    data = packet.encode("utf-8") if isinstance(packet, str) else packet
    block = _find_xmp_packet(data or b"")
    if not block:
        return None
    try:
        root = ElementTree.fromstring(block)
    except Exception:  # defusedxml raises several types for hostile or broken XML
        return None
    tag = f"{{{_NS['photoshop']}}}History"
    for description in root.iter(f"{{{_NS['rdf']}}}Description"):
        value = description.get(tag)
        if value is None and (child := description.find(tag)) is not None:
            value = (child.text or "").strip() or None
        if value:
            return str(value)
    return None


def read_history(path: str | Path) -> str | None:
    """The ``photoshop:History`` headshot-lab wrote into the file at ``path`` (e.g. its upscales), else ``None``."""
    path = Path(path)
    if not path.is_file():
        return None
    return history_of(_raw_xmp(path))


def image_format(path: str | Path, format: str | None = None) -> str:
    """``"JPEG"``, ``"PNG"`` or ``"WEBP"`` from ``format`` or the file extension."""
    fmt = (
        _EXTENSIONS.get(f".{format.lower()}", format.upper())
        if format
        else _EXTENSIONS.get(Path(path).suffix.lower(), "")
    )
    if fmt not in FORMATS:
        raise ProvenanceError(
            f"Cannot write {Path(path).name}: {fmt or 'that extension'} is not supported.",
            fix="Export as .jpg, .png or .webp.",
            code="unsupported_format",
        )
    return fmt


def _clean_pil(image: np.ndarray | Image.Image) -> Image.Image:
    """A fresh RGB/RGBA image holding only the pixels (no info dict: no EXIF, GPS, ICC, XMP)."""
    if isinstance(image, Image.Image):
        mode = "RGBA" if image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info else "RGB"
        pil = image.convert(mode)
        return Image.frombytes(pil.mode, pil.size, pil.tobytes())
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3|4) image, got shape {array.shape}")
    if array.dtype != np.uint8:  # a uint8 array is used as it is: no clipped copy (120 MB at 40 MP)
        array = np.clip(array, 0, 255).astype(np.uint8)
    array = np.ascontiguousarray(array)
    return Image.fromarray(array, mode="RGBA" if array.shape[2] == 4 else "RGB")


def encode_with_provenance(
    image: np.ndarray | Image.Image,
    format: str,
    kind: str,
    *,
    disclosure: str | None = None,
    quality: int = 95,
    source_type: str | None = None,
    properties: Mapping[str, str] | None = None,
    history: str | None = None,
    dpi: tuple[float, float] | None = None,
) -> bytes:
    """Encode ``image`` as ``format`` with the disclosure XMP and an sRGB profile; return the file bytes (no C2PA).

    ``dpi``: the print density to declare (JPEG JFIF density, PNG ``pHYs``); WebP has no density field of its own
    (only EXIF, which no output carries), so a WebP file says nothing about dpi.
    ``history``: see :func:`build_xmp`.
    """
    from headshot_lab.io import srgb_icc_profile

    fmt = image_format("", format)
    pil = _clean_pil(image)
    xmp = build_xmp(kind, disclosure=disclosure, source_type=source_type, properties=properties, history=history)
    icc = srgb_icc_profile()
    buffer = io.BytesIO()
    # WebP has no density field (only EXIF, and outputs carry no EXIF at all): its dpi is not written.
    density: dict[str, object] = {} if dpi is None or fmt == "WEBP" else {"dpi": (float(dpi[0]), float(dpi[1]))}
    if fmt == "JPEG":
        if pil.mode == "RGBA":  # JPEG has no alpha: flatten on white, as a viewer would
            flat = Image.new("RGB", pil.size, (255, 255, 255))
            flat.paste(pil, mask=pil.getchannel("A"))
            pil = flat
        pil.save(buffer, "JPEG", quality=quality, optimize=True, xmp=xmp, icc_profile=icc, **density)
    elif fmt == "WEBP":
        pil.save(buffer, "WEBP", quality=quality, method=4, xmp=xmp, icc_profile=icc, **density)
    else:  # Pillow ignores xmp= for PNG: the packet goes into an iTXt chunk
        info = PngInfo()
        info.add_itxt(PNG_XMP_KEY, xmp.decode("utf-8"), zip=False)
        pil.save(buffer, "PNG", pnginfo=info, compress_level=PNG_COMPRESS_LEVEL, icc_profile=icc, **density)
    return buffer.getvalue()


def save_with_provenance(
    image: np.ndarray | Image.Image,
    path: str | Path,
    kind: str = "generated",
    *,
    format: str | None = None,
    disclosure: str | None = None,
    quality: int = 95,
    c2pa: C2PACredentials | bool | None = None,
    source_type: str | None = None,
    properties: Mapping[str, str] | None = None,
    history: str | None = None,
    dpi: tuple[float, float] | None = None,
) -> Path:
    """The one writer for outputs: pixels + disclosure XMP (+ C2PA), atomically (temp file, rename).

    Args:
        image: ``(H, W, 3|4)`` uint8 array or PIL image; only its pixels are kept.
        path: destination (``.jpg``/``.jpeg``, ``.png``, ``.webp``).
        kind: ``"generated"`` (trainedAlgorithmicMedia) or ``"retouched"``
            (compositeWithTrainedAlgorithmicMedia).
        format: override the format picked from the extension.
        disclosure: override the default disclosure sentence.
        quality: JPEG/WebP quality.
        c2pa: credentials to sign with; ``None`` → from the environment when configured;
            ``False`` → never sign.
        source_type: the input's digital source type (:attr:`headshot_lab.io.Photo.digital_source_type`);
            the file declares the stronger of it and ``kind``'s, in the XMP and the C2PA manifest.
        properties: extra headshot-lab XMP properties (:func:`build_xmp`), e.g. the team style guide's version.
        history: what was done to the pixels (``photoshop:History``, also appended to the disclosure line).
        dpi: print density written into the file (:func:`encode_with_provenance`).

    Returns:
        ``path``.
    """
    path = Path(path)
    fmt = image_format(path, format)
    data = encode_with_provenance(
        image,
        fmt,
        kind,
        disclosure=disclosure,
        quality=quality,
        source_type=source_type,
        properties=properties,
        history=history,
        dpi=dpi,
    )
    credentials = C2PACredentials.from_env() if c2pa is None or c2pa is True else (c2pa or None)
    if c2pa is True and credentials is None:
        raise ProvenanceError(
            "C2PA signing was requested but no certificate is configured.",
            fix=f"Set {C2PA_CERT_ENV} and {C2PA_KEY_ENV}.",
            code="c2pa_config",
        )
    if credentials is not None:
        data = sign_c2pa(data, fmt, kind, credentials, title=path.name, disclosure=disclosure, source_type=source_type)
    write_bytes_atomic(path, data)  # temp file + rename; a full disk raises DiskFullError, no partial file
    return path


def c2pa_manifest(
    kind: str, *, title: str, fmt: str, disclosure: str | None = None, source_type: str | None = None
) -> dict[str, object]:
    """The C2PA manifest definition: one ``c2pa.created`` action declaring the digital source type.

    ``source_type``: an input's type; the stronger of it and ``kind``'s is declared (as in the XMP).
    """
    source = strongest_source_type(digital_source_type(kind), source_type)
    text = disclosure if disclosure is not None else _inherited_disclosure(kind, source) or disclosure_text(kind)
    return {
        "claim_generator_info": [{"name": "headshot-lab", "version": __version__}],
        "title": title,
        "format": FORMATS[fmt],
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": source,
                            "softwareAgent": {"name": "headshot-lab", "version": __version__},
                            "description": text,
                        }
                    ]
                },
            }
        ],
    }


def sign_c2pa(
    data: bytes,
    fmt: str,
    kind: str,
    credentials: C2PACredentials,
    *,
    title: str = "headshot",
    disclosure: str | None = None,
    source_type: str | None = None,
) -> bytes:
    """Embed a signed C2PA manifest into encoded image bytes (the XMP already there is kept)."""
    try:
        import c2pa
    except ImportError:  # pragma: no cover - c2pa-python is in requirements
        raise ProvenanceError(
            "C2PA signing needs the c2pa-python package.", fix="pip install c2pa-python", code="c2pa_missing"
        ) from None
    manifest = c2pa_manifest(kind, title=title, fmt=fmt, disclosure=disclosure, source_type=source_type)
    try:
        algorithm = c2pa.C2paSigningAlg[credentials.algorithm.upper()]
        info = c2pa.C2paSignerInfo(algorithm, credentials.cert_chain, credentials.private_key, None)
        signer = c2pa.Signer.from_info(info)
        out = io.BytesIO()
        with c2pa.Builder(manifest) as builder:
            builder.sign(signer, FORMATS[fmt], io.BytesIO(data), out)
        return out.getvalue()
    except (c2pa.C2paError, KeyError) as exc:
        raise ProvenanceError(
            f"C2PA signing failed: {exc}",
            fix="Use an EC P-256 key and a certificate chain: a leaf with digitalSignature and an "
            "emailProtection or documentSigning EKU (extended key usage), issued by your CA, then the CA.",
            code="c2pa_sign_failed",
        ) from None


def read_c2pa(path: str | Path, *, trust_anchors: bytes | None = None) -> dict[str, object] | None:
    """Summary of the active C2PA manifest, or ``None`` when the file has none.

    Returns:
        ``{"validation_state": "Valid"|"Trusted"|"Invalid", "digital_source_type", "actions",
        "claim_generator", "signer", "errors"}``. ``Trusted`` needs ``trust_anchors`` (PEM).
    """
    import c2pa

    settings: dict[str, object] = {"verify": {"ocsp_fetch": False, "remote_manifest_fetch": False}}
    if trust_anchors:
        settings["trust"] = {"trust_anchors": trust_anchors.decode()}
        settings["verify"] = {**settings["verify"], "verify_trust": True}  # type: ignore[dict-item]
    try:
        with open(path, "rb") as handle, c2pa.Context.from_dict(settings) as context:
            reader = c2pa.Reader.try_create(FORMATS[image_format(path)], handle, context=context)
            if reader is None:
                return None
            with reader:
                state = reader.get_validation_state()
                manifest = reader.get_active_manifest() or {}
                results = reader.get_validation_results() or {}
    except c2pa.C2paError as exc:
        return {"validation_state": "Invalid", "errors": [str(exc)]}
    actions = [
        action
        for assertion in manifest.get("assertions", [])
        if str(assertion.get("label", "")).startswith("c2pa.actions")
        for action in assertion.get("data", {}).get("actions", [])
    ]
    failures = results.get("activeManifest", {}).get("failure", []) if isinstance(results, Mapping) else []
    signature = manifest.get("signature_info", {})
    return {
        "validation_state": state,
        "digital_source_type": next((a["digitalSourceType"] for a in actions if "digitalSourceType" in a), None),
        "actions": [a.get("action") for a in actions],
        "claim_generator": [
            f"{g.get('name')} {g.get('version', '')}".strip() for g in manifest.get("claim_generator_info", [])
        ],
        "signer": {"issuer": signature.get("issuer"), "common_name": signature.get("common_name")},
        "errors": [f"{f.get('code')}: {f.get('explanation')}" for f in failures],
    }


def _raw_xmp(path: Path) -> bytes | None:
    """The XMP packet stored in an image file, read from its container (no pixels, no pixel cap), else by scanning.

    :func:`headshot_lab.containers.inspect_container` finds it in JPEG APP1, PNG ``iTXt`` and WebP
    ``XMP `` within its budgets; Pillow (``Image.open`` raises ``DecompressionBombError`` on huge
    images) is never involved. A file over the budgets, or of another format, is scanned for a packet.
    """
    from headshot_lab.containers import inspect_container

    data = path.read_bytes()
    try:
        raw = inspect_container(data, path.name).xmp
    except HeadshotLabError:  # over a metadata budget: fall back to the bounded scan below
        raw = None
    return raw or _find_xmp_packet(data)


def _find_xmp_packet(data: bytes) -> bytes | None:
    """The first ``<x:xmpmeta …>…</x:xmpmeta>`` in ``data``: two ``find`` calls, linear in its size.

    (A lazy regex restarts at every unclosed opening tag: quadratic in a file built of them.)
    """
    start = data.find(b"<x:xmpmeta")
    while start >= 0 and data[start + 10 : start + 11] not in (b" ", b">", b"\n", b"\t", b"\r"):
        start = data.find(b"<x:xmpmeta", start + 10)
    if start < 0:
        return None
    end = data.find(b"</x:xmpmeta>", start)
    return data[start : end + len(b"</x:xmpmeta>")] if end >= 0 else None


def read_provenance(path: str | Path, *, c2pa: bool = True, trust_anchors: bytes | None = None) -> dict[str, object]:
    """Read the disclosure back: ``{"digital_source_type", "disclosure", "software", "kind", "c2pa"}``.

    Missing fields are ``None`` (a file re-encoded by another program has none). ``c2pa`` is the
    :func:`read_c2pa` summary, or ``None`` when there is no manifest (or ``c2pa=False``).

    Raises:
        ProvenanceError: the file does not exist or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise ProvenanceError(f"{path.name}: file not found.", fix="Check the path.", code="file_not_found")
    raw = _raw_xmp(path)
    fields: dict[str, object] = dict(
        parse_xmp(raw) if raw else {"digital_source_type": None, "disclosure": None, "software": None}
    )
    fields["kind"] = next((k for k, uri in DIGITAL_SOURCE_TYPES.items() if uri == fields["digital_source_type"]), None)
    fields["c2pa"] = None
    if c2pa:
        try:
            image_format(path)
        except ProvenanceError:
            return fields
        fields["c2pa"] = read_c2pa(path, trust_anchors=trust_anchors)
    return fields
