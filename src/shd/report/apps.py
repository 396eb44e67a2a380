"""Application panels (hybrid, interpolation, completion) from the folders the `shd` apps commands write.

Each command writes a folder with a `summary.json` that lists its files (meshes, PNG, GIF) and its
figures (CD, ...). The reader is deliberately loose, so the page follows the commands as they grow:
every string in the summary that names an existing image or mesh file (relative to the folder) is
shown, every finite number is listed. Meshes keep their own colours (the commands colour parts with
shd.eval.palette); a mesh or image over the budget is named instead of embedded.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trimesh

from shd.report import page
from shd.report.viewer import placeholder_div, viewer_div
from shd.tracking.runs import numeric_metrics

IMAGE_TYPES = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
MESH_TYPES = (".glb", ".ply", ".obj")
SUMMARY = "summary.json"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def listed_files(folder: Path, summary: dict[str, Any]) -> list[Path]:
    """Existing image and mesh files the summary names (relative to its folder or absolute), in order."""
    found = []
    for text in dict.fromkeys(_strings(summary)):
        if Path(text).suffix.lower() not in (*IMAGE_TYPES, *MESH_TYPES):
            continue
        path = Path(text) if Path(text).is_absolute() else folder / text
        if path.is_file():
            found.append(path)
    return found


def mesh_glb(path: Path) -> tuple[bytes, int]:
    """A mesh file as GLB bytes (colours kept) and its face count."""
    scene = trimesh.load(path, force="scene")
    n_faces = sum(len(g.faces) for g in scene.geometry.values() if hasattr(g, "faces"))
    return scene.export(file_type="glb"), n_faces


def app_sections(apps_dir: Path, store, max_faces: int, max_image_bytes: int) -> list[str]:
    """One page section per `<apps_dir>/*/summary.json` (none when the folder does not exist)."""
    sections = []
    for summary_path in sorted(apps_dir.glob(f"*/{SUMMARY}")) if apps_dir.is_dir() else []:
        folder = summary_path.parent
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError as exc:
            sections.append(
                page.section(
                    folder.name,
                    f"{html.escape(str(summary_path))} is not valid JSON ({html.escape(str(exc))}): skipped.",
                    "",
                    f"app-{folder.name}",
                )
            )
            continue
        cells, notes = [], []
        for path in listed_files(folder, summary if isinstance(summary, dict) else {"files": summary}):
            rel = html.escape(str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path))
            size = path.stat().st_size
            if path.suffix.lower() in IMAGE_TYPES:
                if size > max_image_bytes:
                    notes.append(f"{rel} ({size / 1e6:.1f} MB, over the image budget)")
                    continue
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                mime = IMAGE_TYPES[path.suffix.lower()]
                cells.append(
                    f'<figure class="panel"><img alt="{rel}" src="data:{mime};base64,{data}">'
                    f"<figcaption>{rel}</figcaption></figure>"
                )
                continue
            try:
                glb, n_faces = mesh_glb(path)
            except Exception as exc:  # noqa: BLE001 - any unreadable mesh becomes a note, not a failed report
                cells.append(placeholder_div(f"cannot read: {exc}", rel))
                continue
            if n_faces > max_faces:
                notes.append(f"{rel} ({n_faces} faces, over the {max_faces}-face budget)")
                continue
            store.n_viewers += 1
            cells.append(viewer_div(store.add_glb(f"app:{folder.name}:{path.name}", glb, n_faces), rel))
        numbers = numeric_metrics(summary) if isinstance(summary, dict) else {}
        title = str(summary.get("command") or folder.name) if isinstance(summary, dict) else folder.name
        intro = f"From {html.escape(f'{apps_dir.name}/{folder.name}/{SUMMARY}')}." + (
            f" Not embedded: {'; '.join(notes)}." if notes else ""
        )
        body = f'<div class="grid">{"".join(cells)}</div>' + page.key_value_table("figures", numbers)
        sections.append(page.section(f"Application: {title}", intro, body, f"app-{html.escape(folder.name)}"))
    return sections
