"""Relevance-tiered search whose cost is bounded by `limit`, not by how many rows match.

Used by contacts and interactions (each describes its table in a `SearchSpec` in its
`queries.py`). The answer is what one statement over every row would give: the rows where
some searched field contains the query, by tier (0: some field equals it, 1: some field
starts with it, 2: substring only; as `crm.common.search.Matcher.rank`). Within tiers 0 and 1
rows come in the feature's `order` (interactions: newest first) or, for a spec with
`value_walks` (contacts, as customers), by the matched value; tier 2 always in `order` (a total
order: its last column is the id). Tiers are disjoint, so each is found on its own:

- Tiers 0 and 1 in `order` (`_by_keys`): every searched field has a btree over its lowered
  value in bytewise (`COLLATE "C"`) order, where the values equal to the query, or starting
  with it, are an index range. The ranges are read up to `cap + 1` entries each: if no range
  is fuller than `cap`, the candidates are few, so they are all ranked and sorted. A fuller
  range means a common value: the tier's rows are then found by walking `order`'s index and
  testing each row (`_walk`), which stops at `need` rows; at the density a full range implies
  that takes a few thousand rows at most. If the walk's window runs out first (the range's
  rows are mostly of a better tier), the candidates are collected in full.
- Tiers 0 and 1 by value (`_by_values`): one walk per field over its index range, each
  stopping after `limit` rows, merged (see there).
- Tier 2 (`_substring`): the same walk, first over a short window (common fragments end
  there), then a longer one only if the first found some but not enough; a fragment that is
  rare among the first rows in `order` is rare, so the trigram index's candidates are few:
  collected in full, ranked and sorted. Only in between (a fragment matching a few hundredths
  of a percent of the rows) do both the walk and the bitmap read thousands of rows. `order`
  must not follow the text (names would: "Kovalenko" rows all sort together), or a common
  fragment could be absent from every window; newest first does not.
- Typos (`typo_tolerant`), only when the tiers found nothing: see there.

How it runs: each statement is built once per shape (the query's text is a parameter; the
limits, windows and caps are in the text, since a prepared statement may be planned
generically and a generic plan prices `LIMIT $n` as a tenth of its input), compiled to a
`DriverStatement` and run on the request session's own asyncpg connection, fetching ids only:
building and compiling a statement of this size with SQLAlchemy on every request cost more
than PostgreSQL spent answering it. The caller loads the found rows as entities.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    String,
    Text,
    UnaryExpression,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.selectable import CompoundSelect
from sqlalchemy.sql.util import ClauseAdapter

from crm.common.search import Column, digits_of, escape_like, phone_digits
from crm.db.reads import DriverStatement

BYTEWISE = "C"
# Above every string that starts with a given text (U+10FFFF, a noncharacter no text carries).
_TOP = chr(0x10FFFF)


def bytewise(expression: Any) -> ColumnElement[str]:
    """`expression COLLATE "C"`: ordered byte by byte, so the values starting with a text are a range."""
    collated: ColumnElement[str] = expression.collate(BYTEWISE)
    return collated


def digits_key(column: Any) -> ColumnElement[str]:
    """The phone's digits as its search index holds them: the constants in the statement's text,
    because a generic plan only uses an index on an expression spelt the same, constants included."""
    return bytewise(func.regexp_replace(column, literal_column(r"'\D'"), literal_column("''"), literal_column("'g'")))


def text_param(name: str) -> BindParameter[str]:
    return bindparam(name, type_=String)


def lowered_param(name: str) -> ColumnElement[str]:
    """A parameter lowered by PostgreSQL, as the fields it is compared with (see Matcher)."""
    return func.lower(text_param(name))


def starts_with(value: ColumnElement[str], start: ColumnElement[str]) -> tuple[ColumnElement[bool], ...]:
    """`value` starts with `start`, as the range of such strings in bytewise order: an index range
    even in a generic plan, which `LIKE $1` is not."""
    return (value >= bytewise(start), value < bytewise(start.op("||")(text_param("top"))))


@dataclass(frozen=True, slots=True)
class Key:
    """A searched field as its btree index holds it (order-ordered tiers).

    `expression` must be spelt as the index is (lowered, COLLATE "C"); `where` is the index's
    predicate if it is partial. `digits`: compared with the query's phone digits, not its text.
    """

    expression: ColumnElement[str]
    where: ColumnElement[bool] | None = None
    digits: bool = False


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
class Shape:
    """What a query changes in the statements' text: whether it has phone digits, how many spaces."""

    digits: bool
    spaces: int


@dataclass(frozen=True, slots=True, eq=False)
class SearchSpec:
    """A table's search. Tiers 0 and 1 come in `order` (found through `keys`) or, when
    `value_walks` is given, by the matched value (`_by_values`); tier 2 always in `order`.
    `value_walks` builds its walks over the parameters `q`, `digits`, `left_<n>`/`right_<n>`
    (the query split at its n-th space) and `top`."""

    entity: Any
    text_columns: tuple[Column, ...]
    phone_columns: tuple[Column, ...]
    keys: tuple[Key, ...]
    order: tuple[UnaryExpression[Any], ...]  # a total order; its index serves the walks
    document: ColumnElement[str]  # the trigram-indexed text of every searched field, lowered
    value_walks: Callable[[Shape], list[ValueWalk]] | None = None
    # The ids of one customer's rows, by an index, over the parameter `customer_id` (for searches
    # within a customer: `find(..., customer_id=...)`).
    of_customer: Select[Any] | None = None
    # A table of the lowered words the documents hold (a `word` column, trigram-indexed): the
    # typo pass looks through the documents only when one of them resembles a query word.
    vocabulary: Any = None
    _compiled: dict[tuple[Any, ...], DriverStatement] = field(default_factory=dict, repr=False)


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


def parameters(query: str) -> tuple[Shape, dict[str, Any]]:
    """The statements' shape and parameter values for a normalized query."""
    escaped = escape_like(query)
    values: dict[str, Any] = {
        "q": query,
        "prefix": escaped + "%",
        "contains": "%" + escaped + "%",
        "top": _TOP,
    }
    digits = phone_digits(query)
    if digits:
        values |= {"digits": digits, "digits_prefix": digits + "%", "digits_contains": "%" + digits + "%"}
    spaces = [i for i, char in enumerate(query) if char == " "]
    for n, at in enumerate(spaces):
        values |= {f"left_{n}": query[:at], f"right_{n}": query[at + 1 :]}
    return Shape(bool(digits), len(spaces)), values


class _Conditions:
    """crm.common.search.Matcher's conditions over a spec, on parameters instead of values."""

    def __init__(self, spec: SearchSpec, shape: Shape) -> None:
        self.spec = spec
        self.shape = shape
        exact, prefix, contains = lowered_param("q"), lowered_param("prefix"), lowered_param("contains")
        texts = spec.text_columns
        phones = spec.phone_columns if shape.digits else ()
        matches = [func.lower(c).like(contains, escape="\\") for c in texts]
        matches += [digits_of(c).like(text_param("digits_contains")) for c in phones]
        equal = [func.lower(c) == exact for c in texts] + [digits_of(c) == text_param("digits") for c in phones]
        starts = [func.lower(c).like(prefix, escape="\\") for c in texts]
        starts += [digits_of(c).like(text_param("digits_prefix")) for c in phones]
        self.matches = or_(*matches)
        self.rank = case(
            (or_(*equal), literal_column("0")), (or_(*starts), literal_column("1")), else_=literal_column("2")
        )
        prefilter = [spec.document.like(contains, escape="\\")]
        if shape.digits:
            prefilter.append(spec.document.like(text_param("digits_contains")))
        self.prefilter = or_(*prefilter)

    def ranges(self, tier: int) -> list[tuple[Key, ColumnElement[bool]]]:
        """The index ranges that hold every row of `tier` (and some of better tiers)."""
        found: list[tuple[Key, ColumnElement[bool]]] = []
        for key in self.spec.keys:
            if key.digits and not self.shape.digits:
                continue
            value = text_param("digits") if key.digits else lowered_param("q")
            if tier == 0:
                found.append((key, key.expression == bytewise(value)))
            else:
                low, high = starts_with(key.expression, value)
                found.append((key, low & high))
        return found

    def candidates(self, tier: int, per_range: int | None) -> CompoundSelect[Any]:
        """The ids in `tier`'s ranges (each read up to `per_range` entries)."""
        entity = self.spec.entity
        parts: list[Select[Any]] = []
        for key, in_range in self.ranges(tier):
            part = select(entity.id.label("id")).where(in_range, *([key.where] if key.where is not None else []))
            # In the index's order, so that the plan reads the index and stops at the limit: a
            # common value would otherwise look cheaper to find by a table scan.
            if per_range is not None:
                part = part.order_by(key.expression, entity.id).limit(_rows(per_range))
            parts.append(part)
        return union_all(*parts)


class _Search:
    """One search: the spec, the query's shape and values, and the request's driver connection."""

    def __init__(self, spec: SearchSpec, query: str, connection: asyncpg.Connection, own: Select[Any] | None) -> None:
        self.spec = spec
        self.query = query
        self.shape, self.values = parameters(query)
        self.connection = connection
        self.own = own  # one customer's ids (over parameters given in `values`), or every row

    def conditions(self) -> _Conditions:
        return _Conditions(self.spec, self.shape)

    async def fetch(self, name: str, build: Callable[..., Any], *args: Any) -> list[asyncpg.Record]:
        """Run the statement `build(*args)` makes, compiled once per (name, shape, args)."""
        key = (name, self.shape, id(self.own), *args)
        statement = self.spec._compiled.get(key)
        if statement is None:
            statement = self.spec._compiled[key] = DriverStatement.of(build(*args))
        return await statement.fetch(self.connection, self.values)

    async def ids(self, name: str, build: Callable[..., Any], *args: Any) -> list[UUID]:
        return [row[0] for row in await self.fetch(name, build, *args)]


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the request's session (its transaction, if one began)."""
    raw = await (await session.connection()).get_raw_connection()
    connection: asyncpg.Connection = raw.driver_connection
    return connection


def _ordered(spec: SearchSpec, statement: Select[Any], need: int) -> Select[Any]:
    return statement.order_by(*spec.order).limit(_rows(need))


def _in_order(spec: SearchSpec, chosen: Any, condition: ColumnElement[bool], need: int) -> Select[Any]:
    """The first `need` rows by `order` among the ids `chosen` selects that meet `condition`."""
    table = spec.entity.__table__
    picked = select(chosen.c.id).distinct().subquery("picked")
    return _ordered(spec, select(table).join(picked, picked.c.id == table.c.id).where(condition), need)


def _ids_in_order(spec: SearchSpec, rows: Any) -> Select[Any]:
    onto = ClauseAdapter(rows)
    return select(rows.c.id).order_by(*(onto.traverse(o) for o in spec.order))


def _walk(spec: SearchSpec, condition: ColumnElement[bool], skip: int, window: int, need: int) -> Select[Any]:
    """The first `need` rows meeting `condition` among rows skip+1 .. window in `order`.

    The window is a subquery over `order`'s index; the condition and the order are rewritten
    onto its columns, so each row is read once and the walk stops at `need` matches.
    """
    table = spec.entity.__table__
    walked = select(table).order_by(*spec.order).offset(_rows(skip)).limit(_rows(window - skip)).subquery("walked")
    onto = ClauseAdapter(walked)
    return (
        select(walked.c.id)
        .where(onto.traverse(condition))
        .order_by(*(onto.traverse(o) for o in spec.order))
        .limit(_rows(need))
    )


async def _by_keys(s: _Search, limit: int, bounds: Bounds) -> list[UUID]:
    """Tiers 0 and 1, in one statement when their key ranges are small (see the module docstring):
    each tier's candidate count, and its first `limit` rows as an array when that is at most `cap`."""

    def build(*_: Any) -> Select[Any]:
        c = s.conditions()
        columns: list[Any] = []
        for tier in (0, 1):
            capped = c.candidates(tier, bounds.cap + 1).cte(f"capped_{tier}").prefix_with("MATERIALIZED")
            counted = select(func.count()).select_from(capped).scalar_subquery()
            condition = (c.rank == tier) & c.matches & (counted <= bounds.cap)
            small = _in_order(s.spec, capped, condition, limit).subquery()
            onto = ClauseAdapter(small)
            ids = func.array_agg(aggregate_order_by(small.c.id, *(onto.traverse(o) for o in s.spec.order)))
            columns += [counted, select(ids).scalar_subquery()]
        return select(*columns)

    n0, ids0, n1, ids1 = (await s.fetch("keys", build, limit, bounds.cap))[0]
    found: list[UUID] = []
    for tier, n, ids in ((0, n0, ids0), (1, n1, ids1)):
        need = limit - len(found)
        found += (ids or [])[:need] if n <= bounds.cap else await _common_tier(s, tier, need, bounds)
        if len(found) == limit:
            break
    return found


async def _common_tier(s: _Search, tier: int, need: int, bounds: Bounds) -> list[UUID]:
    """A tier whose key ranges hold more than `cap` rows: walked, else collected in full."""

    def condition() -> ColumnElement[bool]:
        c = s.conditions()
        return (c.rank == tier) & c.matches

    found = await s.ids("common", lambda *_: _walk(s.spec, condition(), 0, bounds.walk, need), tier, need, bounds.walk)
    if len(found) == need:
        return found

    def collect(*_: Any) -> Select[Any]:
        chosen = s.conditions().candidates(tier, None).subquery("candidates")
        return _ids_in_order(s.spec, _in_order(s.spec, chosen, condition(), need).subquery("top"))

    return await s.ids("collect", collect, tier, need)


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


async def _substring(s: _Search, need: int, bounds: Bounds) -> list[UUID]:
    def condition() -> ColumnElement[bool]:
        c = s.conditions()
        return (c.rank == 2) & c.matches

    def walk(skip: int, window: int, rest: int) -> Select[Any]:
        return _walk(s.spec, condition(), skip, window, rest)

    found: list[UUID] = []
    read = 0
    for window in bounds.windows(need):
        found += await s.ids("walk", walk, read, window, need - len(found))
        if len(found) == need:
            return found
        if not found:
            break
        read = window

    # Rare among the first rows in order, so rare: the trigram index has few candidates. They
    # include what the walks found (the first rows in order): the answer is their first `need`.
    def rare(*_: Any) -> Select[Any]:
        entity = s.spec.entity
        candidates = (
            select(entity.id.label("id"))
            .where(s.conditions().prefilter, condition())
            .cte("candidates")
            .prefix_with("MATERIALIZED")
        )
        return _ordered(s.spec, select(entity.id).join(candidates, candidates.c.id == entity.id), need)

    return await s.ids("rare", rare, need)


async def find(
    session: AsyncSession, spec: SearchSpec, query: str, customer_id: UUID | None, limit: int, bounds: Bounds
) -> list[UUID]:
    """What a search answers: the literal tiers; when they find nothing and the query has a word
    of TYPO_MIN_WORD letters, the typo-tolerant pass. Among one customer's rows when
    `customer_id` is given (the spec's `of_customer`)."""
    found = await literal(session, spec, query, customer_id, limit, bounds)
    if found or not typo_worthy(query):
        return found
    if customer_id is None:
        return await typo_tolerant(session, spec, query, limit, bounds=bounds)
    return await typo_tolerant(session, spec, query, limit, _of_customer(spec), {"customer_id": customer_id}, bounds)


async def literal(
    session: AsyncSession, spec: SearchSpec, query: str, customer_id: UUID | None, limit: int, bounds: Bounds
) -> list[UUID]:
    """The ids of the `limit` best literal matches (exact, prefix, substring), all rows or one customer's."""
    if customer_id is None:
        return await search(session, spec, query, limit, bounds)
    return await search_within(session, spec, query, limit, _of_customer(spec), {"customer_id": customer_id})


def _of_customer(spec: SearchSpec) -> Select[Any]:
    if spec.of_customer is None:
        raise TypeError("this search has no of_customer statement")
    return spec.of_customer


async def search(
    session: AsyncSession, spec: SearchSpec, query: str, limit: int, bounds: Bounds = DEFAULT_BOUNDS
) -> list[UUID]:
    """The ids of the `limit` most relevant rows for a normalized query (see the module docstring)."""
    s = _Search(spec, query, await driver_connection(session), None)
    if spec.value_walks is not None:
        walks = spec.value_walks
        found = await s.ids("values", lambda *_: _by_values(spec.entity, walks(s.shape), limit), limit)
    else:
        found = await _by_keys(s, limit, bounds)
    if len(found) == limit:
        return found
    return found + await _substring(s, limit - len(found), bounds)


async def search_within(
    session: AsyncSession, spec: SearchSpec, query: str, limit: int, own: Select[Any], values: Mapping[str, Any]
) -> list[UUID]:
    """The same answer among a few rows (one customer's): `own` selects their ids by an index
    (over parameters in `values`), materialized first so that no plan reads the whole table."""
    s = _Search(spec, query, await driver_connection(session), own)
    s.values |= values
    entity = spec.entity
    found: list[UUID] = []
    if spec.value_walks is not None:
        walks = spec.value_walks
        found = await s.ids("own-values", lambda *_: _by_values(entity, walks(s.shape), limit, _own(own)), limit)
        if len(found) == limit:
            return found

    def rest(*_: Any) -> Select[Any]:
        c = s.conditions()
        condition: ColumnElement[bool] = c.matches
        order: tuple[Any, ...] = (c.rank, *spec.order)
        if spec.value_walks is not None:
            condition, order = (c.rank == 2) & c.matches, spec.order
        mine = _own(own)
        stmt = select(entity.id).join(mine, mine.c.id == entity.id).where(condition).order_by(*order)
        return stmt.limit(_rows(limit - len(found)))

    return found + await s.ids("own-rest", rest, limit - len(found))


def _own(own: Select[Any]) -> Any:
    return own.cte("own").prefix_with("MATERIALIZED")


# How similar (pg_trgm word_similarity, 0..1) a typo must be to still count as a match:
# "Petrneko" vs "Petrenko" scores about 0.55.
TYPO_THRESHOLD = 0.4

# Only queries with a word at least this long get the typo-tolerant pass, as in customer
# search: at 0.4 a 4-letter fragment "matches" any word sharing two of its letters, so its
# neighbours are countless and meaningless.
TYPO_MIN_WORD = 5
_WORD = re.compile(r"\w+")


def typo_worthy(query: str) -> bool:
    return any(len(word) >= TYPO_MIN_WORD for word in _WORD.findall(query))


_TYPO_SETTING = f"SET LOCAL pg_trgm.word_similarity_threshold = {TYPO_THRESHOLD}"
TYPO_BUDGET_MS = 150
_TYPO_BUDGET = f"SET LOCAL statement_timeout = {TYPO_BUDGET_MS}"


async def typo_tolerant(
    session: AsyncSession,
    spec: SearchSpec,
    query: str,
    limit: int,
    own: Select[Any] | None = None,
    values: Mapping[str, Any] | None = None,
    bounds: Bounds = DEFAULT_BOUNDS,
) -> list[UUID]:
    """Rows with a word similar to the query ("Petrneko" finds "Petrenko"), most similar first,
    then by `order`.

    Among one customer's rows (`own`), all of them. Otherwise the similar rows among the first
    `bounds.typo_window` in `order`; only if there are none, those the trigram index finds (at
    most `bounds.typo_candidates`): a word similar to a common one has countless neighbours,
    whose bitmap alone would cost more than the walk, while a rare one's are few.

    `<%` (which the trigram index serves) reads its threshold from a setting, set for the
    request's transaction only (a transaction of its own if none has begun).

    Suggestions are a courtesy, so they get a time budget (TYPO_BUDGET_MS): a word none of
    the table holds whose trigrams are common makes the trigram index hand over a bitmap of
    hundreds of thousands of rows to recheck, seconds of work for no answer. Past the budget
    the search answers without suggestions; the budget runs in a savepoint, so the request's
    transaction goes on.
    """
    s = _Search(spec, query, await driver_connection(session), own)
    s.values |= values or {}
    try:
        # A savepoint within the request's transaction, or a transaction of its own.
        async with s.connection.transaction():
            await s.connection.execute(_TYPO_SETTING)
            await s.connection.execute(_TYPO_BUDGET)
            found = await _similar(s, limit, bounds)
            await s.connection.execute("SET LOCAL statement_timeout TO DEFAULT")
            return found
    except asyncpg.QueryCanceledError:
        return []


async def _similar(s: _Search, limit: int, bounds: Bounds) -> list[UUID]:
    spec = s.spec
    entity = spec.entity
    lowered = lowered_param("q")
    similar = lowered.op("<%")(spec.document)
    if s.own is not None:
        own = s.own
        return await s.ids("typo-own", lambda *_: _by_similarity(spec, lowered, _own(own), limit), limit)
    if spec.vocabulary is not None and not await _resembles_a_word(s):
        return []

    def near(*_: Any) -> Select[Any]:
        table = entity.__table__
        walked = select(table).order_by(*spec.order).limit(_rows(bounds.typo_window)).subquery("walked")
        chosen = select(walked.c.id).where(ClauseAdapter(walked).traverse(similar)).cte("near")
        return _by_similarity(spec, lowered, chosen.prefix_with("MATERIALIZED"), limit)

    found = await s.ids("typo-near", near, limit, bounds.typo_window)
    if found:
        return found

    def indexed(*_: Any) -> Select[Any]:
        chosen = select(entity.id.label("id")).where(similar).limit(_rows(bounds.typo_candidates))
        return _by_similarity(spec, lowered, chosen.cte("indexed").prefix_with("MATERIALIZED"), limit)

    return await s.ids("typo-indexed", indexed, limit, bounds.typo_candidates)


async def _resembles_a_word(s: _Search) -> bool:
    """Whether a word the documents hold is similar to one of the query's typo-worthy words.

    Per word, not the whole query: "olena petrneko" resembles the documents that hold "olena"
    and "petrenko" though no single word resembles both. A document similar to the query
    almost always holds such a word (pg_trgm compares words' trigrams; an extent spanning two
    words is the rare exception), so a query none resembles finds nothing among millions of
    texts either, and is answered without looking.
    """
    vocabulary = s.spec.vocabulary
    words = [w.lower() for w in _WORD.findall(s.query) if len(w) >= TYPO_MIN_WORD]

    def build(*_: Any) -> Select[Any]:
        given = func.unnest(bindparam("words", type_=ARRAY(Text))).column_valued("given")
        return select(vocabulary.word).where(given.op("<%")(vocabulary.word)).limit(1)

    s.values["words"] = words
    return bool(words) and bool(await s.fetch("typo-vocabulary", build))


def _by_similarity(spec: SearchSpec, lowered: ColumnElement[str], chosen: Any, limit: int) -> Select[Any]:
    entity = spec.entity
    return (
        select(entity.id)
        .join(chosen, chosen.c.id == entity.id)
        .where(lowered.op("<%")(spec.document))
        .order_by(func.word_similarity(lowered, spec.document).desc(), *spec.order)
        .limit(_rows(limit))
    )
