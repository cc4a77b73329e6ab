"""Entity grouping's pair test (`similar_enough`) decides exactly as the full score
(`name_similarity(a, b) >= threshold`) does, on generated names and on arbitrary strings:
it only stops computing earlier."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.datatypes.text import normalize_name
from jobs.forensics.entities import DEFAULT_THRESHOLD, comparable, group_names, name_similarity, similar_enough
from jobs.forensics.similarity import shingles
from jobs.management import sample_data


def agrees(a: str, b: str, threshold: float) -> bool:
    return similar_enough(a, b, shingles(a), shingles(b), threshold) == (name_similarity(a, b) >= threshold)


def test_it_decides_like_the_full_score_on_generated_names():
    records, _ = sample_data.entity_names(600, seed=5)
    forms = sorted({comparable(normalize_name(record["name"])) for record in records})
    pairs = list(itertools.combinations(forms, 2))
    assert len(pairs) > 5_000
    similar = 0
    for a, b in pairs:
        for threshold in (DEFAULT_THRESHOLD, 0.75, 0.95):
            assert agrees(a, b, threshold), (a, b, threshold, name_similarity(a, b))
        similar += name_similarity(a, b) >= DEFAULT_THRESHOLD
    assert similar > 50  # the sample holds typos, abbreviations and word changes that group


words = st.text(alphabet="abcdeno", min_size=1, max_size=9)
names = st.lists(words, min_size=1, max_size=4).map(" ".join)


@settings(max_examples=400, deadline=None)
@given(names, names, st.sampled_from([0.5, 0.8, DEFAULT_THRESHOLD, 0.9, 0.99]))
def test_it_decides_like_the_full_score_on_arbitrary_names(a, b, threshold):
    assert agrees(a, b, threshold)


@settings(max_examples=200, deadline=None)
@given(names)
def test_one_typo_apart_still_groups(name):
    typo = name[:-1] + ("x" if name[-1] != "x" else "y")
    assert agrees(name, typo, DEFAULT_THRESHOLD)


def test_grouping_keeps_the_generated_entities_together():
    records, truth = sample_data.entity_names(2_000, seed=9)
    counts: dict[str, int] = {}
    entity_of: dict[str, int] = {}
    for record in records:
        normalized = normalize_name(record["name"])
        counts[normalized] = counts.get(normalized, 0) + 1
        entity_of[normalized] = truth["entities"][record["id"]]
    grouping = group_names(counts)
    # Every name of one generated entity reaches the same group, and no group mixes entities.
    heads_by_entity: dict[int, set[str]] = {}
    entities_by_head: dict[str, set[int]] = {}
    for name, head in grouping.canonical.items():
        heads_by_entity.setdefault(entity_of[name], set()).add(head)
        entities_by_head.setdefault(head, set()).add(entity_of[name])
    split = sum(len(heads) > 1 for heads in heads_by_entity.values())
    mixed = sum(len(entities) > 1 for entities in entities_by_head.values())
    assert split <= len(heads_by_entity) // 50, split
    assert mixed <= len(entities_by_head) // 50, mixed
