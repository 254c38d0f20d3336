"""The signature on localcloud's AutoML model artifacts, without a server: what batch transform accepts to load."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from localcloud.services.sagemaker import signing


def packed(folder: Path, files: dict[str, bytes]) -> Path:
    """A model.tar.gz as the AutoML runner packs one: plain files at the root."""
    target = folder / "model.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return target


def test_the_key_is_made_once_per_data_dir_private_and_kept(tmp_path):
    key = signing.load_key(tmp_path)
    path = tmp_path / signing.KEY_FILE
    assert len(key) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert signing.load_key(tmp_path) == key
    other = tmp_path / "other-data-dir"
    other.mkdir()
    assert signing.load_key(other) != key
    path.write_bytes(b"short")
    with pytest.raises(RuntimeError, match="not a 32-byte key"):
        signing.load_key(tmp_path)


def test_a_signed_artifact_extracts_and_anything_else_is_refused(tmp_path):
    key = signing.load_key(tmp_path)
    artifact = packed(tmp_path, {"metadata.json": b"{}", "model.joblib": b"pickled"})
    signing.sign_artifact(artifact, artifact, key)
    signing.sign_artifact(artifact, artifact, key)  # signing again replaces the signature, never nests it
    digests = signing.extract_verified(artifact, tmp_path / "model", key)
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["metadata.json", "model.joblib"]
    signing.check_digests(tmp_path / "model", digests)
    (tmp_path / "model" / "model.joblib").write_bytes(b"swapped")
    with pytest.raises(signing.ArtifactRejected, match="changed after it was verified"):
        signing.check_digests(tmp_path / "model", digests)

    with pytest.raises(signing.ArtifactRejected, match="does not match its bytes under this localcloud's key"):
        signing.extract_verified(artifact, tmp_path / "other", os.urandom(32))
    assert not (tmp_path / "other").exists()  # nothing is left behind to load

    with tarfile.open(artifact) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar}
    (tmp_path / "extra").mkdir()
    extra = packed(tmp_path / "extra", {**files, "more.pkl": b"x"})
    with pytest.raises(signing.ArtifactRejected, match="are not the ones it signs"):
        signing.extract_verified(extra, tmp_path / "x", key)

    link = tmp_path / "link.tar.gz"
    with tarfile.open(link, "w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(signing.ArtifactRejected, match="which localcloud's AutoML never writes"):
        signing.extract_verified(link, tmp_path / "x", key)

    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(signing.ArtifactRejected, match="not a valid model.tar.gz"):
        signing.extract_verified(tmp_path / "junk.tar.gz", tmp_path / "x", key)
