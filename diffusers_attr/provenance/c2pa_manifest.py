"""Optional C2PA Content Credentials: a signed manifest with the attribution as a custom assertion.

Needs the ``c2pa`` extra (``pip install "diffusers-attr[c2pa]"``, which brings ``c2pa-python``) and a
signing certificate chain with its private key (PEM) from your certificate authority; the project
never ships a key. The manifest records the creation action with the IPTC digital source type
``trainedAlgorithmicMedia`` and the assertion ``org.diffusers_attr.attribution`` holding the same JSON
as the PNG chunk, as text (C2PA's CBOR turns lists of small integers into byte strings, so structured
data would not round-trip exactly).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .png import DIGITAL_SOURCE_TYPE

ASSERTION_LABEL = "org.diffusers_attr.attribution"


def _c2pa():
    try:
        import c2pa
    except ImportError as error:
        raise ImportError(
            'C2PA signing needs the c2pa extra: pip install "diffusers-attr[c2pa]" (c2pa-python)'
        ) from error
    return c2pa


@dataclass(frozen=True)
class C2PASigner:
    """The credentials a C2PA manifest is signed with.

    Attributes:
        certificate_chain: PEM of the signing (end-entity) certificate followed by its issuers.
        private_key: PEM of the signing certificate's private key.
        algorithm: the signature algorithm of the key (``es256``, ``es384``, ``ps256``, ``ed25519``, ...).
        timestamp_url: optional RFC 3161 time-stamping authority.
    """

    certificate_chain: bytes
    private_key: bytes
    algorithm: str = "es256"
    timestamp_url: str | None = None

    @classmethod
    def from_files(cls, certificate_chain: str | os.PathLike, private_key: str | os.PathLike, **options: Any) -> "C2PASigner":
        """Read the PEM files of a certificate chain and its private key."""
        return cls(Path(certificate_chain).read_bytes(), Path(private_key).read_bytes(), **options)


def sign_png(path: str | os.PathLike, metadata: dict[str, Any], signer: C2PASigner, *, version: str) -> Path:
    """Embed a signed C2PA manifest carrying ``metadata`` into the PNG at ``path`` (in place, atomically)."""
    c2pa = _c2pa()
    path = Path(path)
    manifest = {
        "claim_generator_info": [{"name": "diffusers-attr", "version": version}],
        "title": path.name,
        "format": "image/png",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE}]}},
            {"label": ASSERTION_LABEL, "data": {"media_type": "application/json", "json": json.dumps(metadata)}},
        ],
    }
    info = c2pa.C2paSignerInfo(
        alg=signer.algorithm.encode(), sign_cert=signer.certificate_chain, private_key=signer.private_key,
        ta_url=signer.timestamp_url.encode() if signer.timestamp_url else None,
    )
    partial = path.with_name(path.name + ".partial")
    try:
        with c2pa.Signer.from_info(info) as credentials, c2pa.Builder(json.dumps(manifest)) as builder:
            with open(path, "rb") as source, open(partial, "wb") as target:
                builder.sign(credentials, "image/png", source, target)
    except c2pa.C2paError as error:
        partial.unlink(missing_ok=True)
        raise ValueError(f"C2PA signing of {path} failed: {error}; check the certificate chain and key") from error
    os.replace(partial, path)
    return path


def read_c2pa(path: str | os.PathLike) -> dict[str, Any]:
    """The attribution assertion of a signed PNG and the manifest's validation status.

    Returns:
        ``{"attribution": dict, "validation_status": list, "signature": dict}``.
    """
    c2pa = _c2pa()
    path = Path(path)
    try:
        with open(path, "rb") as stream, c2pa.Reader("image/png", stream) as reader:
            store = json.loads(reader.json())
    except c2pa.C2paError as error:
        raise ValueError(f"{path} carries no readable C2PA manifest: {error}") from error
    manifest = store["manifests"][store["active_manifest"]]
    assertions = {a["label"]: a["data"] for a in manifest.get("assertions", [])}
    if ASSERTION_LABEL not in assertions:
        raise ValueError(f"{path} has a C2PA manifest without the {ASSERTION_LABEL} assertion")
    return {
        "attribution": json.loads(assertions[ASSERTION_LABEL]["json"]),
        "validation_status": store.get("validation_status", []),
        "signature": manifest.get("signature_info", {}),
    }
