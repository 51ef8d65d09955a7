"""Relevance-tiered search whose cost is bounded by `limit`, not by how many rows match.

Used by contacts and interactions (each describes its table in a `SearchSpec` in its
`queries.py`). The answer is what one statement over every row would give: the rows where
some searched field contains the query, by tier (0: some field equals it, 1: some field
starts with it, 2: substring only; `crm.common.search.Matcher.rank`), then by the feature's
`order` (a total order: the last column is the id). Tiers are disjoint, so the answer is
tier 0's first rows, then tier 1's, then tier 2's, and each tier is found on its own:

- Tiers 0 and 1 (`_by_keys`): every searched field has a btree over its lowered value in
  bytewise (`COLLATE "C"`) order, where the values equal to the query, or starting with it,
  are an index range. The ranges are read up to `cap + 1` entries each (index only): if no
  range is fuller than `cap`, the candidates are few, so they are all ranked and sorted. A
  fuller range means a common value: the tier's rows are then found by walking `order`'s
  index and testing each row (`_walk`), which stops at `need` rows; at the density a full
  range implies that takes a few thousand rows at most. If the walk's window runs out first
  (the range's rows are mostly of a better tier), the candidates are collected in full.
- Tier 2 (`_substring`): the same walk, first over a short window (common fragments end
  there), then a longer one only if the first found some but not enough; a fragment that is
  rare among the first rows in `order` is rare, so the trigram index's candidates are few:
  collected in full, ranked and sorted. Only in between (a fragment matching a few hundredths
  of a percent of the rows) do both the walk and the bitmap read thousands of rows.
- Typos (`typo_tolerant`), only when the tiers found nothing: the rows the trigram index
  finds similar to the query, at most `Bounds.typo_candidates` of them, most similar first.

Every LIMIT is in the statement's text, not a parameter: a prepared statement may be planned
generically, and a generic plan prices `LIMIT $n` as a tenth of its input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    UnaryExpression,
    case,
    func,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import aggregate_order_by, distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.selectable import CompoundSelect
from sqlalchemy.sql.util import ClauseAdapter

from crm.common.search import Column, Matcher, phone_digits

BYTEWISE = "C"
# Above every string that starts with a given text (U+10FFFF, a noncharacter no text carries).
_TOP = chr(0x10FFFF)


def bytewise(expression: Any) -> ColumnElement[str]:
    """`expression COLLATE "C"`: ordered byte by byte, so the values starting with a text are a range."""
    collated: ColumnElement[str] = expression.collate(BYTEWISE)
    return collated


def spaced(*parts: Any) -> ColumnElement[str]:
    """`a || ' ' || b`, the space in the statement's text: an index on an expression serves a
    generic plan only if the query spells the expression the same way, constants included."""
    joined: ColumnElement[str] = parts[0]
    for part in parts[1:]:
        joined = joined.op("||")(literal_column("' '")).op("||")(part)
    return joined


def digits_key(column: Any) -> ColumnElement[str]:
    """The phone's digits as its search index holds them (constants in the text, as `spaced`)."""
    return bytewise(func.regexp_replace(column, literal_column(r"'\D'"), literal_column("''"), literal_column("'g'")))


@dataclass(frozen=True, slots=True)
class Key:
    """A searched field as its btree index holds it.

    `expression` must be spelt as the index is (lowered, COLLATE "C"); `where` is the index's
    predicate if it is partial. `digits`: compared with the query's phone digits, not its text.
    `joined`: the field is two names joined by a space ("first last"); its values starting with
    "<query> " are the rows whose first name equals the query, so it serves that name too.
    """

    expression: ColumnElement[str]
    where: ColumnElement[bool] | None = None
    digits: bool = False
    joined: bool = False


@dataclass(frozen=True, slots=True)
class ValueWalk:
    """One bounded index range scan of a value-ordered search: the rows `matches` accepts, in
    the index's `order`, which must be the order of (value, second, id)."""

    matches: tuple[ColumnElement[bool], ...]
    is_exact: ColumnElement[bool]
    value: ColumnElement[str]
    order: tuple[Any, ...]
    second: ColumnElement[str] | None = None


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """A table's search. Tiers 0 and 1 come in `order` (found through `keys`) or, when
    `value_walks` is given, by the matched value (`_by_values`); tier 2 always in `order`."""

    entity: Any
    text_columns: tuple[Column, ...]
    phone_columns: tuple[Column, ...]
    keys: tuple[Key, ...]
    order: tuple[UnaryExpression[Any], ...]  # a total order; its index serves the walks
    document: ColumnElement[str]  # the trigram-indexed text of every searched field, lowered
    value_walks: Callable[[str], list[ValueWalk]] | None = None


@dataclass(frozen=True, slots=True)
class Bounds:
    """How far each step reads before it changes strategy (smaller in tests)."""

    cap: int = 500  # index entries per key range before a value counts as common
    walk: int = 8_000  # rows a tier-0/1 walk reads before collecting its candidates in full
    first_window: int = 50  # x need: the substring tier's first walk
    second_window: int = 400  # x need: its second walk
    typo_window: int = 300  # rows the typo pass walks before asking the trigram index
    typo_candidates: int = 300

    def windows(self, need: int) -> tuple[int, int]:
        return self.first_window * need, self.second_window * need


DEFAULT_BOUNDS = Bounds()


def _rows(count: int) -> ColumnClause[Any]:
    return literal_column(str(int(count)))


class _Query:
    """One search's conditions over a spec, bound to the query text."""

    def __init__(self, spec: SearchSpec, query: str, where: Sequence[ColumnElement[bool]]) -> None:
        self.spec = spec
        self.query = query
        self.where = list(where)
        self.matcher = Matcher(query)
        self.rank = self.matcher.rank(spec.text_columns, spec.phone_columns)
        self.matches = self.matcher.where(spec.text_columns, spec.phone_columns)
        self.digits = phone_digits(query)

    def ranges(self, tier: int) -> list[tuple[Key, ColumnElement[bool]]]:
        """The index ranges that hold every row of `tier` (and some of better tiers)."""
        text = func.lower(literal(self.query, String))
        found: list[tuple[Key, ColumnElement[bool]]] = []
        for key in self.spec.keys:
            if key.digits and not self.digits:
                continue
            value: ColumnElement[str] = literal(self.digits, String) if key.digits else text
            bounds: list[ColumnElement[str]] = [value]
            if key.joined:
                bounds.append(value.op("||")(literal_column("' '")))
            for low in bounds:
                exact_only = tier == 0 and low is value
                if exact_only:
                    found.append((key, key.expression == bytewise(low)))
                else:
                    top = low.op("||")(literal(_TOP, String))
                    found.append((key, (key.expression >= bytewise(low)) & (key.expression < bytewise(top))))
        return found

    def candidates(self, tier: int, per_range: int | None) -> CompoundSelect[Any]:
        """The ids in `tier`'s ranges (each read up to `per_range` entries)."""
        entity = self.spec.entity
        parts: list[Select[Any]] = []
        for key, in_range in self.ranges(tier):
            part = select(entity.id.label("id")).where(in_range, *([key.where] if key.where is not None else []))
            # In the index's order, so that the plan reads the index (only) and stops at the
            # limit: a common value would otherwise look cheaper to find by a table scan.
            if per_range is not None:
                part = part.order_by(key.expression, entity.id).limit(_rows(per_range))
            parts.append(part)
        return union_all(*parts)


async def _ids(session: AsyncSession, statement: Select[Any]) -> list[UUID]:
    return list(await session.scalars(statement))


def _ordered(q: _Query, statement: Select[Any], need: int) -> Select[Any]:
    return statement.order_by(*q.spec.order).limit(_rows(need))


def _in_order(q: _Query, chosen: Any, condition: ColumnElement[bool], need: int) -> Select[Any]:
    """The first `need` rows by `order` among the ids `chosen` selects that meet `condition`."""
    table = q.spec.entity.__table__
    picked = select(chosen.c.id).distinct().subquery("picked")
    return _ordered(q, select(table).join(picked, picked.c.id == table.c.id).where(condition, *q.where), need)


async def _collect(
    session: AsyncSession, q: _Query, chosen: Any, condition: ColumnElement[bool], need: int
) -> list[UUID]:
    top = _in_order(q, chosen, condition, need).subquery("top")
    onto = ClauseAdapter(top)
    return await _ids(session, select(top.c.id).order_by(*(onto.traverse(o) for o in q.spec.order)))


async def _walk(
    session: AsyncSession, q: _Query, condition: ColumnElement[bool], skip: int, window: int, need: int
) -> list[UUID]:
    """The first `need` rows meeting `condition` among rows skip+1 .. window in `order`.

    The window is a subquery over `order`'s index; the condition and the order are rewritten
    onto its columns, so each row is read once and the walk stops at `need` matches.
    """
    table = q.spec.entity.__table__
    walked = (
        select(table)
        .where(*q.where)
        .order_by(*q.spec.order)
        .offset(_rows(skip))
        .limit(_rows(window - skip))
        .subquery("walked")
    )
    onto = ClauseAdapter(walked)
    statement = (
        select(walked.c.id)
        .where(onto.traverse(condition))
        .order_by(*(onto.traverse(o) for o in q.spec.order))
        .limit(_rows(need))
    )
    return await _ids(session, statement)


async def _by_keys(session: AsyncSession, q: _Query, limit: int, bounds: Bounds) -> list[UUID]:
    """Tiers 0 and 1, in one statement when their key ranges are small (see the module docstring):
    each tier's candidate count, and its first `limit` rows as an array when that is at most `cap`."""
    columns: list[Any] = []
    for tier in (0, 1):
        capped = q.candidates(tier, bounds.cap + 1).cte(f"capped_{tier}").prefix_with("MATERIALIZED")
        counted = select(func.count()).select_from(capped).scalar_subquery()
        small = _in_order(q, capped, (q.rank == tier) & q.matches & (counted <= bounds.cap), limit).subquery()
        onto = ClauseAdapter(small)
        ids = func.array_agg(aggregate_order_by(small.c.id, *(onto.traverse(o) for o in q.spec.order)))
        columns += [counted, select(ids).scalar_subquery()]
    n0, ids0, n1, ids1 = (await session.execute(select(*columns))).one()
    found: list[UUID] = []
    for tier, n, ids in ((0, n0, ids0), (1, n1, ids1)):
        need = limit - len(found)
        if n <= bounds.cap:
            found += (ids or [])[:need]
        else:
            found += await _common_tier(session, q, tier, need, bounds)
        if len(found) == limit:
            break
    return found


async def _common_tier(session: AsyncSession, q: _Query, tier: int, need: int, bounds: Bounds) -> list[UUID]:
    """A tier whose key ranges hold more than `cap` rows: walked, else collected in full."""
    condition = (q.rank == tier) & q.matches
    found = await _walk(session, q, condition, 0, bounds.walk, need)
    if len(found) == need:
        return found
    return await _collect(session, q, q.candidates(tier, None).subquery("candidates"), condition, need)


def _by_values(entity: Any, walks: list[ValueWalk], limit: int, own: Any = None) -> Select[Any]:
    """Tiers 0 and 1 ordered by (tier, matched value, second value, id), bytewise.

    Each walk reads one field's range of values starting with the query (exact ones first:
    the query is the smallest string it starts) and stops after `limit` rows; the walks are
    merged keeping each row's smallest key. Exact: a row of the true first `limit` takes its
    key from some field, whose walk, had it stopped before the row, would have returned
    `limit` rows with smaller keys. `own` (ids, materialized) restricts every walk to those
    rows, which are then few: no limit per walk is needed.
    """
    parts: list[Select[Any]] = []
    empty = bytewise(literal_column("''"))
    for walk in walks:
        part = select(
            entity.id.label("id"),
            case((walk.is_exact, 0), else_=1).label("tier"),
            walk.value.label("v"),
            (walk.second if walk.second is not None else empty).label("w"),
        ).where(*walk.matches)
        if own is not None:
            part = part.join(own, own.c.id == entity.id)
        else:
            part = part.order_by(*walk.order).limit(_rows(limit))
        parts.append(part)
    hits = union_all(*parts).subquery("hits")
    best = (
        select(hits.c.id, hits.c.tier, hits.c.v, hits.c.w)
        .ext(distinct_on(hits.c.id))
        .order_by(hits.c.id, hits.c.tier, bytewise(hits.c.v), bytewise(hits.c.w))
        .subquery("best")
    )
    return (
        select(best.c.id).order_by(best.c.tier, bytewise(best.c.v), bytewise(best.c.w), best.c.id).limit(_rows(limit))
    )


async def _substring(session: AsyncSession, q: _Query, need: int, bounds: Bounds) -> list[UUID]:
    condition = (q.rank == 2) & q.matches
    found: list[UUID] = []
    read = 0
    for window in bounds.windows(need):
        found += await _walk(session, q, condition, read, window, need - len(found))
        if len(found) == need:
            return found
        if not found:
            break
        read = window
    # Rare among the first rows in order, so rare: the trigram index has few candidates.
    entity = q.spec.entity
    candidates = (
        select(entity.id.label("id"))
        .where(q.matcher.prefilter(q.spec.document), condition, *q.where)
        .cte("candidates")
        .prefix_with("MATERIALIZED")
    )
    statement = select(entity.id).join(candidates, candidates.c.id == entity.id)
    return await _ids(session, _ordered(q, statement, need))


async def search(
    session: AsyncSession,
    spec: SearchSpec,
    query: str,
    limit: int,
    where: Sequence[ColumnElement[bool]] = (),
    bounds: Bounds = DEFAULT_BOUNDS,
) -> list[UUID]:
    """The ids of the `limit` most relevant rows for a normalized query (see the module docstring)."""
    q = _Query(spec, query, where)
    if spec.value_walks is not None:
        found = await _ids(session, _by_values(spec.entity, spec.value_walks(query), limit))
    else:
        found = await _by_keys(session, q, limit, bounds)
    if len(found) == limit:
        return found
    return found + await _substring(session, q, limit - len(found), bounds)


async def search_within(
    session: AsyncSession, spec: SearchSpec, query: str, limit: int, rows: Select[Any]
) -> list[UUID]:
    """The same answer among a few rows (one customer's): `rows` selects their ids by an index,
    materialized first so that no plan reads the whole table instead."""
    q = _Query(spec, query, ())
    entity = spec.entity
    own = rows.cte("own").prefix_with("MATERIALIZED")
    found: list[UUID] = []
    condition: ColumnElement[bool]
    if spec.value_walks is not None:
        found = await _ids(session, _by_values(entity, spec.value_walks(query), limit, own))
        if len(found) == limit:
            return found
        condition = (q.rank == 2) & q.matches
        order: tuple[Any, ...] = spec.order
    else:
        condition, order = q.matches, (q.rank, *spec.order)
    statement = select(entity.id).join(own, own.c.id == entity.id).where(condition).order_by(*order)
    return found + await _ids(session, statement.limit(_rows(limit - len(found))))


# How similar (pg_trgm word_similarity, 0..1) a typo must be to still count as a match:
# "Petrneko" vs "Petrenko" scores about 0.55.
TYPO_THRESHOLD = 0.4
_TYPO_SETTING = sql_text(f"SET LOCAL pg_trgm.word_similarity_threshold = {TYPO_THRESHOLD}")


async def typo_tolerant(
    session: AsyncSession,
    spec: SearchSpec,
    query: str,
    limit: int,
    rows: Select[Any] | None = None,
    bounds: Bounds = DEFAULT_BOUNDS,
) -> list[UUID]:
    """Rows with a word similar to the query ("Petrneko" finds "Petrenko"), most similar first,
    then by `order`.

    Among one customer's rows (`rows`), all of them. Otherwise the similar rows among the first
    `bounds.typo_window` in `order`; only if there are none, those the trigram index finds (at
    most `bounds.typo_candidates`): a word similar to a common one has countless neighbours,
    whose bitmap alone would cost more than the walk, while a rare one's are few.
    """
    await session.execute(_TYPO_SETTING)
    lowered = func.lower(literal(query, String))
    similar = lowered.op("<%")(spec.document)
    if rows is not None:
        own = rows.cte("own").prefix_with("MATERIALIZED")
        return await _ids(session, _by_similarity(spec, lowered, own, limit))
    table = spec.entity.__table__
    walked = select(table).order_by(*spec.order).limit(_rows(bounds.typo_window)).subquery("walked")
    near = select(walked.c.id).where(ClauseAdapter(walked).traverse(similar)).cte("near").prefix_with("MATERIALIZED")
    found = await _ids(session, _by_similarity(spec, lowered, near, limit))
    if found:
        return found
    indexed = select(spec.entity.id.label("id")).where(similar).limit(_rows(bounds.typo_candidates))
    return await _ids(session, _by_similarity(spec, lowered, indexed.cte("indexed").prefix_with("MATERIALIZED"), limit))


def _by_similarity(spec: SearchSpec, lowered: ColumnElement[str], chosen: Any, limit: int) -> Select[Any]:
    entity = spec.entity
    return (
        select(entity.id)
        .join(chosen, chosen.c.id == entity.id)
        .where(lowered.op("<%")(spec.document))
        .order_by(func.word_similarity(lowered, spec.document).desc(), *spec.order)
        .limit(_rows(limit))
    )
