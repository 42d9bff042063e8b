"""Which parts of a folder readers read once compacted parts replace others (``logfolder.resolve``)."""

from __future__ import annotations

from seaway.monitoring.logfolder import Manifest, manifest_name, resolve


def part(n: int) -> str:
    return f"part-20250310T09{n:02d}00000000Z-{n:032x}.parquet"


def summary(name: str) -> str:
    return "_summary-" + name.removesuffix(".parquet") + ".json"


def folder(*names: str, manifests: dict[str, set[str]]) -> tuple[list[str], dict[str, Manifest]]:
    listed = [*names, *(manifest_name(p) for p in manifests)]
    read = {
        manifest_name(p): Manifest(p, frozenset(r), rows=1, created=None)
        for p, r in manifests.items()
    }
    return listed, read


def test_a_present_compacted_part_replaces_its_parts_and_their_summaries() -> None:
    a, b, c, merged = part(1), part(2), part(3), part(59)
    names, read = folder(a, b, c, merged, summary(a), summary(merged), manifests={merged: {a, b}})
    seen = resolve(names, read.get)
    assert seen.parts == {c, merged}
    assert seen.replaced == {a, b}
    assert not seen.reads_summary(summary(a)) and seen.reads_summary(summary(merged))
    assert seen.reads_summary(summary(c))


def test_a_manifest_whose_part_is_absent_replaces_nothing_and_hides_its_summary() -> None:
    a, b, merged = part(1), part(2), part(59)
    names, read = folder(a, b, summary(merged), manifests={merged: {a, b}})
    seen = resolve(names, read.get)
    assert seen.parts == {a, b}
    assert not seen.reads_summary(summary(merged))
    assert seen.reads_summary(summary(a))


def test_nested_merges_the_larger_wins_and_equal_ones_by_name() -> None:
    a, b, c, small, large, twin = part(1), part(2), part(3), part(57), part(58), part(59)
    names, read = folder(
        a, b, c, small, large, twin, manifests={small: {a, b}, large: {a, b, c}, twin: {a, b, c}}
    )
    seen = resolve(names, read.get)
    assert seen.parts == {large}
    assert seen.replaced == {a, b, c, small, twin}
    assert seen.conflicts == 0


def test_a_merge_of_a_merge_replaces_what_the_first_replaced() -> None:
    a, b, c, first, second = part(1), part(2), part(3), part(58), part(59)
    names, read = folder(a, first, second, manifests={first: {a, b}, second: {a, b, first, c}})
    seen = resolve(names, read.get)
    assert seen.parts == {second}


def test_overlapping_merges_that_do_not_nest_are_a_conflict_and_rows_are_read_once() -> None:
    a, b, c, one, other = part(1), part(2), part(3), part(58), part(59)
    names, read = folder(a, b, c, one, other, manifests={one: {a, b}, other: {b, c}})
    seen = resolve(names, read.get)
    assert seen.conflicts == 1
    assert seen.parts == {one, c}  # b is in one; c, which only the other holds, is read itself
    assert seen.hidden == {other}


def test_an_unreadable_manifest_leaves_its_part_a_plain_part() -> None:
    a, merged = part(1), part(59)
    names, _ = folder(a, merged, manifests={merged: {a}})
    assert resolve(names, lambda _: None).parts == {a, merged}
