"""The offline backbone's weights on disk: saved as float16 with a SHA-256 checksum, verified on load (notebook 05).

``helpers.backbone`` makes them; ``helpers.models.create_body(..., weights="offline")`` loads them. Keeping
the file handling here lets both import it without importing each other.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch
from torch import nn

from helpers.outputs import written_whole

ASSETS = Path(__file__).resolve().parent / "assets"
WEIGHTS_FILE = ASSETS / "resnet10_creatures.pth"
CHECKSUM_FILE = ASSETS / "resnet10_creatures.sha256"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (notebook 05)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_backbone(body: nn.Module, path: Path = WEIGHTS_FILE, checksum_path: Path = CHECKSUM_FILE) -> str:
    """Write the body's weights as float16, and their checksum (python -m helpers.backbone; notebook 05).

    Half the size, and plenty for a starting point.
    """
    state = {name: t.half() if t.is_floating_point() else t for name, t in body.state_dict().items()}
    # Saved through a buffer: torch.save names the archive's inner folder after the file, and the same weights
    # must give the same bytes whatever the file is called.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    # Each file whole or not at all; a kill between the two leaves a pair whose checksums disagree, which
    # load_backbone_state refuses, rather than a cut-short file that passes for the weights.
    with written_whole(path) as temporary:
        temporary.write_bytes(buffer.getvalue())
    digest = file_sha256(path)
    with written_whole(checksum_path) as temporary:
        temporary.write_text(f"{digest}  {path.name}\n")
    return digest


def load_backbone_state(path: Path = WEIGHTS_FILE, checksum_path: Path = CHECKSUM_FILE) -> dict[str, torch.Tensor]:
    """The committed body weights as float32, once their SHA-256 matches the committed checksum (notebook 05)."""
    rebuild = "Rebuild them with `python -m helpers.backbone` (a few minutes on a CPU), or restore " \
              "helpers/assets from git (`git checkout -- helpers/assets`)."
    if not path.exists() or not checksum_path.exists():
        raise FileNotFoundError(f"the offline backbone is missing ({path} or {checksum_path} not found). {rebuild}")
    expected = checksum_path.read_text().split()[0]
    actual = file_sha256(path)
    if actual != expected:
        raise RuntimeError(f"the offline backbone {path.name} is damaged or was changed: its SHA-256 is {actual}, "
                           f"but {checksum_path.name} expects {expected}. {rebuild}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {name: t.float() if t.is_floating_point() else t for name, t in state.items()}
