"""One atlas file as a name and its bytes, so that an atlas can travel inside a feature extractor's config."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: `space-<label>` (BIDS derivatives, fMRIPrep) or `tpl-<label>` (TemplateFlow) in a file name.
_TEMPLATE_ENTITY = re.compile(r"(?:^|_)(?:space|tpl)-([a-zA-Z0-9]+)")

#: The keys of an atlas file embedded in `preprocessor_config.json` (see `AtlasFile.to_json`).
EMBEDDED_KEYS = ("name", "sha256", "gzip_base64")


@dataclass(frozen=True)
class AtlasFile:
    """An atlas file by name and content: read from disk (`read`) or carried inside a saved config (`from_json`).

    Attributes:
        name: the file name (e.g. `"atlas.dlabel.nii"`), for messages and for the form of the content.
        content: the file's bytes, exactly as on disk (a `.nii.gz` stays gzip-compressed).
    """

    name: str
    content: bytes

    @classmethod
    def read(cls, path: str | os.PathLike, form: str) -> AtlasFile:
        """Read the atlas `form` file (`"cifti"`, `"volume"` or `"labels"`) at `path`.

        Raises:
            FileNotFoundError: nothing at `path`; a bare file name (as the configs of mnemodyn_hf 0.1 stored, next
                to preprocessor_config.json) gets the way to embed it.
        """
        path = Path(path)
        if not path.is_file():
            hint = ""
            if not path.is_absolute() and path.parent == Path("."):
                hint = (
                    f" A preprocessor_config.json that names its atlas files instead of embedding them (mnemodyn_hf "
                    f"0.1) loads with MnemoDynFeatureExtractor.from_pretrained(folder, atlas_files={{{form!r}: "
                    f"'<folder>/{path.name}'}}); save it again to embed the atlas."
                )
            raise FileNotFoundError(f"Atlas {form} file {str(path)!r} does not exist.{hint}")
        return cls(path.name, path.read_bytes())

    @property
    def template(self) -> str | None:
        """The template space the file name states (its `space-` or `tpl-` entity), or None."""
        return template_of(self.name)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def to_json(self) -> dict[str, str]:
        """`{"name", "sha256", "gzip_base64"}`: the content gzip-compressed and base64-encoded, with its checksum."""
        packed = base64.b64encode(gzip.compress(self.content, compresslevel=9, mtime=0)).decode("ascii")
        return {"name": self.name, "sha256": self.sha256, "gzip_base64": packed}

    @classmethod
    def from_json(cls, entry: Mapping[str, str], form: str) -> AtlasFile:
        """The file embedded by `to_json`, its checksum verified.

        Raises:
            ValueError: keys missing, content not decodable, or a checksum that does not match (a corrupted or
                hand-edited config).
        """
        missing = [key for key in EMBEDDED_KEYS if key not in entry]
        if missing:
            raise ValueError(
                f"The embedded atlas {form} file lacks {missing}; expected the keys {list(EMBEDDED_KEYS)} written by "
                "MnemoDynFeatureExtractor.save_pretrained (or give the file's path instead)."
            )
        try:
            content = gzip.decompress(base64.b64decode(entry["gzip_base64"], validate=True))
        except (ValueError, OSError, EOFError) as error:
            raise ValueError(f"The embedded atlas {form} file {entry['name']!r} cannot be decoded: {error}.") from error
        file = cls(str(entry["name"]), content)
        if file.sha256 != entry["sha256"]:
            raise ValueError(
                f"The embedded atlas {form} file {file.name!r} does not match its sha256 (the config was corrupted or "
                "edited): save the feature extractor again from its atlas files."
            )
        return file


def template_of(name: str | os.PathLike | None) -> str | None:
    """The template space a file name states (BIDS `space-` or TemplateFlow `tpl-` entity), or None."""
    match = _TEMPLATE_ENTITY.search(Path(name).name) if name else None
    return match[1] if match else None


def decode_atlas_files(atlas_files: Mapping[str, object]) -> dict[str, str | os.PathLike | AtlasFile]:
    """`load_atlas` arguments from a feature extractor's `atlas_files`: paths stay paths, embedded files (dicts)
    are decoded."""
    forms = ("cifti", "volume", "labels")
    unknown = sorted(set(atlas_files) - set(forms))
    if unknown:
        raise ValueError(f"atlas_files keys must be among {forms}, got {unknown}.")
    return {
        form: AtlasFile.from_json(file, form) if isinstance(file, Mapping) else file
        for form, file in atlas_files.items()
    }


__all__ = ["AtlasFile", "decode_atlas_files", "template_of"]
