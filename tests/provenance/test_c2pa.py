"""Signed C2PA manifests with a throwaway CA and end-entity certificate made in the test."""

from __future__ import annotations

import datetime

import pytest
import torch

pytest.importorskip("c2pa", reason="the c2pa extra (c2pa-python) is not installed")
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from diffusers_attr import AttributedPipeline, AttributionIndex, read_attribution  # noqa: E402
from diffusers_attr.provenance.c2pa_manifest import ASSERTION_LABEL, C2PASigner, read_c2pa  # noqa: E402
from tiny_pipelines import tiny_ddpm_pipeline  # noqa: E402


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "diffusers-attr tests")])


def _usage(**flags: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{name: flags.get(name, False) for name in names})


def _certificate(subject, issuer, public_key, signing_key, *, ca: bool, extensions=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA256())


@pytest.fixture(scope="module")
def signer() -> C2PASigner:
    """A throwaway CA and an end-entity signing certificate (never shipped, made per test run)."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(_name("Test CA"), _name("Test CA"), ca_key.public_key(), ca_key, ca=True,
                      extensions=[(_usage(key_cert_sign=True, crl_sign=True), True)])
    leaf = _certificate(
        _name("Test signer"), ca.subject, key.public_key(), ca_key, ca=False,
        extensions=[
            (_usage(digital_signature=True), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
        ],
    )
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return C2PASigner(chain, pem)


def test_saved_images_carry_a_signed_manifest_with_the_attribution(signer, tmp_path):
    index = AttributionIndex.from_images(torch.rand(6, 1, 8, 8) * 2 - 1, progress=False)
    output = AttributedPipeline(tiny_ddpm_pipeline(), index, patch_size=3, progress=False)(num_inference_steps=2)
    path = output.save(tmp_path, c2pa=signer)[0]
    credentials = read_c2pa(path)
    assert credentials["attribution"] == output.attributions[0].to_dict()
    assert credentials["signature"]["common_name"] == "Test signer"
    codes = {status["code"] for status in credentials["validation_status"]}
    assert codes <= {"signingCredential.untrusted"}  # valid signature; only the test CA is unknown
    assert read_attribution(path) == output.attributions[0].to_dict()  # the PNG chunk survives signing
    assert not list(tmp_path.glob("*.partial"))


def test_tampered_image_fails_validation_and_bad_key_is_a_clear_error(signer, tmp_path):
    index = AttributionIndex.from_images(torch.rand(6, 1, 8, 8) * 2 - 1, progress=False)
    output = AttributedPipeline(tiny_ddpm_pipeline(), index, patch_size=3, progress=False)(num_inference_steps=2)
    path = output.save(tmp_path, c2pa=signer)[0]
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # inside the image data, after the manifest
    path.write_bytes(bytes(data))
    codes = {status["code"] for status in read_c2pa(path)["validation_status"]}
    assert codes - {"signingCredential.untrusted"}, codes

    wrong = C2PASigner(signer.certificate_chain, b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match="C2PA signing of .* failed"):
        output.attributions[0].save(tmp_path / "again.png", c2pa=wrong)
    assert ASSERTION_LABEL == "org.diffusers_attr.attribution"


def test_cli_generate_signs_when_given_credentials(signer, tmp_path, capsys):
    from diffusers_attr.cli import main

    pipeline, index = tmp_path / "pipeline", tmp_path / "index"
    tiny_ddpm_pipeline().save_pretrained(pipeline)
    AttributionIndex.from_images(torch.rand(6, 1, 8, 8) * 2 - 1, progress=False).save(index)
    (tmp_path / "chain.pem").write_bytes(signer.certificate_chain)
    (tmp_path / "key.pem").write_bytes(signer.private_key)
    common = ["generate", str(pipeline), "--index", str(index), "--steps", "2", "--patch-size", "3"]
    assert main(common + ["--out", str(tmp_path / "run"), "--c2pa-cert", str(tmp_path / "chain.pem"),
                          "--c2pa-key", str(tmp_path / "key.pem")]) == 0
    assert read_c2pa(tmp_path / "run" / "image-000.png")["signature"]["common_name"] == "Test signer"
    assert main(common + ["--out", str(tmp_path / "run2"), "--c2pa-cert", str(tmp_path / "chain.pem")]) == 2
    assert "needs both --c2pa-cert and --c2pa-key" in capsys.readouterr().err
