"""The workspace rule: every path the UI reads or writes lies inside one folder, checked in one place (folder
scans get `Workspace.root` as their `within`, so that links in a scanned folder do not lead out either)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oneword.errors import OnewordError
from oneword.folder_walk import links_out
from oneword.models.tiny import TINY_NAMES
from oneword.toy.bundle import TOY_NAME
from oneword.train.templates import TEMPLATE_NAMES

BUNDLED_MODELS = (TOY_NAME, *TINY_NAMES)
"""Model names that are not paths: the toy model shipped in the package and the tiny random ones."""


@dataclass(frozen=True)
class Workspace:
    """The folder the UI works in; `resolve` is the only way a path field becomes a Path."""

    root: Path

    @classmethod
    def at(cls, folder: Path | str) -> Workspace:
        """The workspace at `folder`, created if missing, with links resolved."""
        root = Path(folder).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        return cls(root.resolve())

    def resolve(self, field: str, value: str | Path | None, *, optional: bool = False) -> Path | None:
        """The path `value` (relative to the workspace, or absolute inside it) with links followed; refused with a
        message naming `field` when it is empty (unless `optional`) or leads outside the workspace."""
        text = "" if value is None else str(value).strip()
        if not text:
            if optional:
                return None
            raise OnewordError(f"{field}: empty; give a path inside the workspace {self.root}")
        given = Path(text).expanduser()
        try:
            resolved = (given if given.is_absolute() else self.root / given).resolve()
        except RuntimeError:  # a link loop (Python 3.13 and later raise OSError ELOOP)
            raise OnewordError(f"{field}: {text} is a link loop (a link that leads back to itself)") from None
        except OSError as error:
            raise OnewordError(f"{field}: {text}: {error.strerror or error}") from None
        if not resolved.is_relative_to(self.root):
            raise OnewordError(f"{field}: {text} is outside the workspace {self.root} (refused)")
        return resolved

    def pictures(self, field: str, folder: Path) -> None:
        """Refuse a picture folder holding a link (to a file or a folder) that leads outside the workspace:
        preprocess and training would read through it, where the UI must not reach."""
        outside = links_out(folder, self.root)
        if outside:
            shown = ", ".join(self.link_name(path) for path in sorted(outside)[:3])
            more = f" and {len(outside) - 3} more" if len(outside) > 3 else ""
            raise OnewordError(f"{field}: {shown}{more} link outside the workspace {self.root} (refused)")

    def link_name(self, path: Path) -> str:
        """A link's own path relative to the workspace (its last part not followed)."""
        parent = Path(path).parent.resolve()
        name = Path(path).name
        return (parent / name).relative_to(self.root).as_posix() if parent.is_relative_to(self.root) else str(path)

    def model(self, field: str, value: str) -> str:
        """A bundled model name as it is, anything else as a path inside the workspace."""
        text = str(value).strip()
        return text if text in BUNDLED_MODELS else str(self.resolve(field, text))

    def template(self, field: str, value: str) -> str:
        """A shipped template name as it is, anything else as a file inside the workspace."""
        text = str(value).strip()
        return text if text.removesuffix(".txt") in TEMPLATE_NAMES else str(self.resolve(field, text))

    def relative(self, path: Path) -> str:
        """`path` as the UI shows it: relative to the workspace."""
        return Path(path).resolve().relative_to(self.root).as_posix()

    def shown(self, text: str) -> str:
        """A message as the UI shows it: the paths inside the workspace written relative to it, as the page says."""
        return text.replace(f"{self.root.as_posix()}/", "")

