"""An inspection as text lines: what the file is, its facts, and the table of tools that load it."""

from __future__ import annotations

from oneword.inspect.describe import Inspection
from oneword.inspect.tools import support


def report_lines(found: Inspection) -> list[str]:
    """The inspection of one file, as `oneword inspect` prints it (and the web UI shows it)."""
    lines = [f"{found.path}", f"  what: {found.what}", f"  safety: {found.safety}"]
    if found.problem:
        lines.append(f"  problem: {found.problem}")
    if found.what != "unknown":
        lines.append(f"  architecture: {found.architecture}")
    lines += [f"  {label}: {value}" for label, value in found.facts]
    if found.words:
        lines.append(f"  trigger words: {', '.join(found.words)}")
    lines.append("  loads as it is in:")
    width = max(len(tool) for tool, _, _ in support(found))
    lines += [f"    {tool:<{width}}  {'yes' if ok else 'no '}  {why}" for tool, ok, why in support(found)]
    return lines
