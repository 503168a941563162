"""The inspection of a file the Generate tab lists (embeddings, hypernetworks, LoRAs), as `oneword inspect` shows it."""

from __future__ import annotations

from oneword.errors import OnewordError
from oneword.ui.paths import Workspace
from oneword.ui.widgets import message

SUFFIXES = (".pt", ".safetensors", ".bin", ".ckpt", ".png", ".webp")


def listed_files(workspace: Workspace, *folders: str) -> list[str]:
    """The files under the folders (relative to the workspace), whose links stay inside it, in sorted order."""
    from oneword.folder_walk import unreadable, walk_files

    found = set()
    for folder in folders:
        try:
            path = workspace.resolve("folder", folder)
        except OnewordError:
            continue
        if path.is_dir():
            found |= {workspace.relative(p) for p in walk_files(path, workspace.root)
                      if p.suffix.lower() in SUFFIXES and unreadable(p, workspace.root) is None}
    return sorted(found)


def inspection(workspace: Workspace, file: str | None) -> str:
    """The file's inspection as a code block, or why it cannot be shown."""
    from oneword.inspect.describe import inspect_file
    from oneword.inspect.report import report_lines

    if not file:
        return ""
    try:
        found = inspect_file(workspace.resolve("file", file))
    except OnewordError as error:
        return message(str(error), error=True)
    return "```\n" + "\n".join(report_lines(found)) + "\n```"
