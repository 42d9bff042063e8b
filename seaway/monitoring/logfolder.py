"""One date folder of the prediction log as readers see it, once compaction has been there.

Compaction (``compact.py``) merges the small parts of an hour into one part. It commits, in this
order, a manifest ``_compacted-<part stem>.json`` that names every part the new part replaces
(and, transitively, what those replaced), the merged window summary, and then the part itself;
only then does it delete what was replaced. Readers resolve each folder's listing here: a part
named by the manifest of a part that is present is not read, and neither is its summary. So each
row is read exactly once at every moment: before the new part is committed its manifest replaces
nothing (and its summary is not read: its part is absent), from then on the originals are skipped
whether they are deleted yet or not. A crash in between leaves duplicates that readers skip and
the next compaction deletes.

Two compactors (two servers logging one model) may merge the same hour at once. Each merges every
part of the hour it lists, and a part present in one listing is gone from a later one only once
a compacted part replaces it, which the later listing then merges instead: what the two new parts
replace is nested. The larger set wins (equal sets: the smaller name) and the other new part is
redundant, replaced like an original. Sets that overlap without being nested would make a row
read twice or never; the smaller is then not read, counted as a conflict, and nothing is deleted
on its account.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MANIFEST_PREFIX = "_compacted-"
_PART_PREFIX = "part-"  # logstore's; not imported (logstore imports this module)
_SUMMARY_PREFIX = "_summary-"
#: manifests read, by path: they are never rewritten (each names a new part with a random id)
_MANIFESTS: dict[str, Manifest | None] = {}
_MANIFESTS_LIMIT = 100_000

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Manifest:
    """What a compacted part replaces: part file names of its folder."""

    part: str
    replaces: frozenset[str]
    rows: int
    created: datetime | None

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "format": 1,
                "part": self.part,
                "replaces": sorted(self.replaces),
                "rows": self.rows,
                "created": self.created.isoformat() if self.created else None,
            },
            separators=(",", ":"),
        ).encode("utf-8")

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != 1:
            raise ValueError("it has no 'format': 1 member")
        created = data.get("created")
        return cls(
            part=str(data["part"]),
            replaces=frozenset(str(name) for name in data["replaces"]),
            rows=int(data["rows"]),
            created=datetime.fromisoformat(created).astimezone(UTC) if created else None,
        )


def manifest_name(part: str) -> str:
    """The manifest's file name beside compacted part ``part``."""
    return f"{MANIFEST_PREFIX}{part.rsplit('/', 1)[-1].removesuffix('.parquet')}.json"


def part_of(name: str) -> str | None:
    """The part file name a summary or manifest belongs to (a part's own name for a part)."""
    base = name.rsplit("/", 1)[-1]
    for prefix in (_SUMMARY_PREFIX, MANIFEST_PREFIX):
        if base.startswith(prefix) and base.endswith(".json"):
            return base[len(prefix) :].removesuffix(".json") + ".parquet"
    return base if base.startswith(_PART_PREFIX) and base.endswith(".parquet") else None


@dataclass(frozen=True)
class FolderView:
    """A folder's files as readers see them (all names are base names)."""

    parts: frozenset[str]  # the parts read
    replaced: frozenset[str] = frozenset()  # parts a compacted part that is read replaces
    compacted: Mapping[str, Manifest] = field(default_factory=dict)  # read ones, by part
    hidden: frozenset[str] = frozenset()  # compacted parts not read: absent or in conflict
    conflicts: int = 0

    def reads_summary(self, summary: str) -> bool:
        """Whether a reader reads this summary: its part is read, or absent and never replaced
        (a part deleted by hand keeps its summary read, as before compaction)."""
        part = part_of(summary)
        return part is not None and part not in self.replaced and part not in self.hidden


def resolve(names: Iterable[str], manifest: Callable[[str], Manifest | None]) -> FolderView:
    """The view of a folder holding ``names``; ``manifest(name)`` reads a manifest (None when
    it cannot be read: its part is then read as a plain part)."""
    listed = set(names)
    present = {n for n in listed if n.startswith(_PART_PREFIX) and n.endswith(".parquet")}
    found: dict[str, Manifest] = {}
    absent: set[str] = set()
    for name in listed:
        if not name.startswith(MANIFEST_PREFIX):
            continue
        part = part_of(name)
        if part is None:
            continue
        if part not in present:
            absent.add(part)  # being written, or a compaction cut short
            continue
        read = manifest(name)
        if read is not None:
            found[part] = read
    replaced: set[str] = set()
    kept: dict[str, Manifest] = {}
    hidden = set(absent)
    conflicts = 0
    for part, read in sorted(found.items(), key=lambda item: (-len(item[1].replaces), item[0])):
        if part in replaced or read.replaces <= replaced:
            replaced.add(part)  # a larger compaction holds all its rows
        elif read.replaces & replaced:
            hidden.add(part)
            conflicts += 1
        else:
            kept[part] = read
            replaced |= read.replaces
    return FolderView(
        parts=frozenset(present - replaced - hidden),
        replaced=frozenset(replaced),
        compacted=kept,
        hidden=frozenset(hidden),
        conflicts=conflicts,
    )


def view(fs: Any, folder: str, names: Iterable[str]) -> FolderView:
    """The view of ``folder`` (on ``fs``) whose listing gave ``names`` (base names)."""
    return resolve(names, lambda name: read_manifest(fs, f"{folder}/{name}"))


def read_manifest(fs: Any, path: str) -> Manifest | None:
    """The manifest at ``path``, remembered; None when it cannot be read (said once)."""
    if path in _MANIFESTS:
        return _MANIFESTS[path]
    try:
        found: Manifest | None = Manifest.from_json(fs.cat_file(path))
    except FileNotFoundError:
        return None  # deleted meanwhile (with its part): not remembered
    except (OSError, ValueError, KeyError, TypeError) as exc:
        from seaway.monitoring.logstore import skipped

        skipped(path, exc, what="compaction manifest")
        found = None
    if len(_MANIFESTS) >= _MANIFESTS_LIMIT:
        _MANIFESTS.clear()
    _MANIFESTS[path] = found
    return found


def has_manifests(names: Iterable[str]) -> bool:
    return any(name.startswith(MANIFEST_PREFIX) for name in names)
