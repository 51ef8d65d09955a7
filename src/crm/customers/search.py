"""Customer search whose cost is bounded by `limit`, not by how many customers match.

Relevance tiers: exact, then prefix, then substring, then (only when those find nothing)
typo-tolerant. A customer's tier is the best tier of any of its searched fields; within a
tier the order is:

- exact and prefix: by the matched value (lowered, compared bytewise), then the other name
  for first/last name matches, then id. A row that matches in several fields sorts by the
  smallest of them. Exact values all equal the query, so exact matches go by the other
  name (none for the other fields), then id.
- substring: newest first (created_at, then id, descending).

How each tier stays bounded:

1. Exact + prefix (`_prefix_tiers`): every searched field has a btree index on its lowered
   value in bytewise (`COLLATE "C"`) order, so the values starting with q are an index range
   (`_starts_with`) that yields the exact matches first (the query itself is the smallest
   string it starts), then the prefixes, already in the tier's order. Each field's walk stops after `limit` rows; the
   walks are merged keeping each row's smallest key (tier, value, other name, id). Why the
   merge is exact: a row r of the true top `limit` takes its true key from some field f;
   had f's walk stopped before r, it would have returned `limit` rows with smaller keys, so
   `limit` rows would rank above r. So every top row is in the union with its true key,
   while a row's key in the union is never smaller than its true key (a minimum over fewer
   fields): the union's top `limit` is the true one, in order, each row once, in its best
   tier. If the union has fewer than `limit` rows, every walk ran out, so it holds *all*
   exact and prefix matches. Full names: "first last" starts with the query either because
   the first name does (the first-name walk finds the row with a smaller key: a shorter
   value, a tier no worse) or because the first name equals the query up to one of its
   spaces and the last name starts with the rest: one walk per space of the query, over the
   (first, last) index; the same for "last first".
2. Substring (`_substring_tier`, only when 1 did not fill `limit`): walk the newest
   customers by the created_at index, test each against the match conditions, and stop as
   soon as `need` are found, reading at most a window of rows (`windows`). Newest-first
   does not depend on what a customer is called, so a fragment that a fraction d of
   customers contain is found after about need/d rows. A full result is exactly the tier's
   first rows (the walk read a prefix of the tier's order). Otherwise the fragment is rare
   among the newest customers, so rare: the trigram index's candidates are few, collected
   in full, the newest `need` kept. Rows found by 1 are excluded by id: 1 found all of them,
   so this tier is exactly "contains the query, minus those".
3. Typo tolerance (`_typo_tolerant`): only when 1 and 2 found nothing, for queries with a
   word of at least TYPO_MIN_WORD characters. The words similar to the query's longest word
   come from a trigger-kept dictionary of the words customers' names, emails and company
   names have (`customer_words`: a few hundred rows however many customers share them), at
   most TYPO_MAX_WORDS, most similar first; the query with that word replaced by each is
   searched by 1 and 2, until `limit` customers are found. So a typo costs what a few
   literal searches cost, not a similarity computed for every customer sharing a trigram.

How it runs: each statement is a `DriverStatement` for the asyncpg read pool, built once per
shape and fetching plain rows (the list's columns: the customer and its primary contact as
`k_*`), not ORM entities. That pool plans generically (plan_cache_mode=force_generic_plan),
and a generic plan prices `LIMIT $n` as a tenth of its input, so every LIMIT and window is
in the statement's text (`limit`, `need` and the windows: at most 100 values each).
A phone's digits are matched on the raw value (`_digits_pattern`): the walks test it on
every row they read, and stripping the non-digits from each first cost about twice as much.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    String,
    Text,
    all_,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.orm import aliased
from sqlalchemy.types import Uuid

from crm.common.search import Column, escape_like, phone_digits
from crm.contacts.models import Contact
from crm.contacts.schemas import ContactOut
from crm.customers.models import Customer, CustomerWord, search_text_of
from crm.customers.schemas import CustomerOut
from crm.db.reads import DriverStatement

# How similar (pg_trgm word_similarity, 0..1) a customer's word must be to a query's word to be
# searched for instead: two letters swapped inside "Thompson" ("Thopmson") score 0.38, in a
# five-letter name ("Bokio") 0.33; unrelated words of five letters or more rarely reach 0.3,
# and those that do come after the closer ones.
TYPO_THRESHOLD = 0.3

BYTEWISE = "C"


def bytewise(expression: Any) -> ColumnElement[str]:
    """`expression COLLATE "C"`: compared and indexed byte by byte, so the values starting with a
    text are an index range."""
    collated: ColumnElement[str] = expression.collate(BYTEWISE)
    return collated


def lowered(column: Any) -> ColumnElement[str]:
    """A field as its search index holds it: lowered by PostgreSQL, in bytewise order."""
    return bytewise(func.lower(column))


def phone_key(column: Any) -> ColumnElement[str]:
    """crm.common.search.digits_of(column) as the phone's search index spells it: its arguments
    in the text, not bound as digits_of binds them, because a generic plan only uses an index
    on an expression that is the same, constants included."""
    return bytewise(func.regexp_replace(column, literal_column(r"'\D'"), literal_column("''"), literal_column("'g'")))


def search_columns(entity: Any = Customer) -> tuple[list[Column], list[Column]]:
    """The searched text fields (names, full name both ways, email, company, tax id) and the phone."""
    text_columns: list[Column] = [
        entity.first_name,
        entity.last_name,
        entity.first_name + " " + entity.last_name,
        entity.last_name + " " + entity.first_name,
        entity.email,
        entity.company_name,
        entity.tax_id,
    ]
    return text_columns, [entity.phone]


def document() -> ColumnElement[str]:
    """The trigram-indexed text of a customer (every searched field, lowered)."""
    found: ColumnElement[str] = search_text_of(
        Customer.first_name, Customer.last_name, Customer.email, Customer.company_name, Customer.tax_id, Customer.phone
    )
    return found


# Only queries with a word at least this long get the typo-tolerant fallback: at word
# similarity 0.4 a 4-letter fragment "matches" any word sharing its first two letters
# ("tech" finds every Tetiana), and single letters ("a b c ...") match nearly every row.
TYPO_MIN_WORD = 5
_WORD = re.compile(r"\w+")


def typo_tolerant(query: str) -> bool:
    return any(len(word) >= TYPO_MIN_WORD for word in _WORD.findall(query))


# A found customer and its primary contact, as a row of the customer list: the customer's
# fields by name, the contact's as k_<name> (None when it has none); see crm.customers.service.
Found: TypeAlias = asyncpg.Record

_CUSTOMER_FIELDS = tuple(CustomerOut.model_fields)
_CONTACT_FIELDS = tuple(ContactOut.model_fields)


def _with_primary(entity: Any = Customer) -> Select[Any]:
    primary = (Contact.customer_id == entity.id) & Contact.is_primary
    columns = (
        *(getattr(entity, name).label(name) for name in _CUSTOMER_FIELDS),
        *(getattr(Contact, name).label("k_" + name) for name in _CONTACT_FIELDS),
    )
    return select(*columns).select_from(entity).outerjoin(Contact, primary)


def _rows(count: int) -> ColumnElement[Any]:
    """A LIMIT in the statement's text (see the module docstring: a generic plan cannot see a parameter's)."""
    return literal_column(str(int(count)))


async def find(connection: asyncpg.Connection, query: str, limit: int) -> list[Found]:
    """The `limit` most relevant customers for a normalized query (see the module docstring).

    Several statements, each its own snapshot, as under a READ COMMITTED session: a customer
    changed in between can at worst appear in no tier or, having been renamed, in the wrong one.
    """
    found = await _literal(connection, query, limit)
    if not found and typo_tolerant(query):
        found = await _typo_tolerant(connection, query, limit)
    return found


async def _literal(connection: asyncpg.Connection, query: str, limit: int) -> list[Found]:
    """Tiers 1 and 2: the customers that contain the query, best tier first."""
    found = await _prefix_tiers(connection, query, limit)
    if len(found) < limit:
        found += await _substring_tier(connection, query, limit - len(found), [row["id"] for row in found])
    return found


# Statements are built once per shape over bind parameters, so a request only binds values.
def _text(name: str) -> ColumnElement[str]:
    return func.lower(bindparam(name, type_=String))


def _raw(name: str) -> BindParameter[str]:
    return bindparam(name, type_=String)


def _prefix_params(query: str) -> dict[str, Any]:
    params: dict[str, Any] = {"exact": query}
    digits = phone_digits(query)
    if digits:
        params["digits"] = digits
    for n, at in enumerate(i for i, char in enumerate(query) if char == " "):
        params |= {f"left_{n}": query[:at], f"right_{n}": query[at + 1 :]}
    return params


# --- 1. exact and prefix ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Walk:
    """One bounded index range scan: the rows `matches` accepts, in the index's `order`.

    The order must be the order of (key, second, id): the merge relies on each walk
    returning its rows smallest key first.
    """

    matches: tuple[ColumnElement[bool], ...]
    is_exact: ColumnElement[bool]
    key: ColumnElement[str]
    order: tuple[Column, ...]
    second: ColumnElement[str] | None = None

    def select(self, limit: int) -> Select[Any]:
        second = self.second if self.second is not None else bytewise(literal_column("''", Text))
        return (
            select(
                Customer.id.label("id"),
                case((self.is_exact, 0), else_=1).label("tier"),
                self.key.label("v"),
                second.label("w"),
            )
            .where(*self.matches)
            .order_by(*self.order)
            .limit(_rows(limit))
        )


# Above every string that starts with a given text, save those whose next character is this
# one (U+10FFFF, a noncharacter no name or email carries).
_TOP = chr(0x10FFFF)


def _starts_with(value: ColumnElement[str], exact: Any) -> tuple[ColumnElement[bool], ...]:
    """`value` starts with the query, as the range of such strings in bytewise order: from the
    query up to the query followed by U+10FFFF. A string in that range starts with the query
    (one that differs from it earlier sorts below or above the range), so no LIKE is needed,
    and none is wanted: a generic plan cannot read a range from a LIKE parameter, and taking
    the LIKE for a further 0.5% filter it expects a few dozen rows, so for a limit above that
    it collected and sorted every row of the range (seconds for "38" and limit=100)."""
    return (value >= bytewise(exact), value < bytewise(exact.concat(_TOP)))


# The fields a 1-character list `search` matches the start of (crm.customers.queries):
# each has a lowered bytewise index, so each condition is one of its ranges.
INITIAL_FIELDS = ("first_name", "last_name", "email", "company_name", "tax_id")


def starts_with_initial(entity: Any) -> ColumnElement[bool]:
    """Some searched field starts with the parameter `exact` (lowered by PostgreSQL): a
    BitmapOr of index ranges when matches are few, a cheap test per row on a walk otherwise.
    A substring of one character would be in nearly every customer and only a scan finds it."""
    exact = _text("exact")
    return or_(
        *(
            and_(*_starts_with(lowered(getattr(entity, name)), exact), getattr(entity, name).is_not(None))
            for name in INITIAL_FIELDS
        )
    )


def _field(value: ColumnElement[str], exact: Any, *where: ColumnElement[bool], second: Any = None) -> _Walk:
    order = (value, *([second] if second is not None else []), Customer.id)
    return _Walk((*_starts_with(value, exact), *where), value == exact, value, order, second)


def _walks(phone: bool, spaces: int) -> list[_Walk]:
    first, last = lowered(Customer.first_name), lowered(Customer.last_name)
    exact = _text("exact")
    walks = [
        _field(first, exact, second=last),
        _field(last, exact, second=first),
        _field(lowered(Customer.email), exact),
        _field(lowered(Customer.company_name), exact, Customer.company_name.is_not(None)),
        _field(lowered(Customer.tax_id), exact, Customer.tax_id.is_not(None)),
    ]
    if phone:
        walks.append(_field(phone_key(Customer.phone), _raw("digits"), Customer.phone.is_not(None)))
    # The query spans both names of "first last" or "last first": split it at each space into
    # the whole of one name and the start of the other (see the module docstring).
    full_names = (
        (first, last, lowered(Customer.first_name + " " + Customer.last_name)),
        (last, first, lowered(Customer.last_name + " " + Customer.first_name)),
    )
    for n in range(spaces):
        whole, start = _text(f"left_{n}"), _text(f"right_{n}")
        for one, other, full_name in full_names:
            matches = (one == whole, *_starts_with(other, start))
            order = (one, other, Customer.id)
            walks.append(_Walk(matches, other == start, full_name, order))
    return walks


@functools.lru_cache(maxsize=256)
def _prefix_statement(phone: bool, spaces: int, limit: int) -> DriverStatement:
    hits = union_all(*(walk.select(limit) for walk in _walks(phone, spaces))).subquery("hits")
    # Each row once, with its smallest key over the walks that found it.
    best = (
        select(hits.c.id, hits.c.tier, hits.c.v, hits.c.w)
        .ext(distinct_on(hits.c.id))
        .order_by(hits.c.id, hits.c.tier, bytewise(hits.c.v), bytewise(hits.c.w))
        .subquery("best")
    )
    return DriverStatement.of(
        _with_primary()
        .join(best, best.c.id == Customer.id)
        .order_by(best.c.tier, bytewise(best.c.v), bytewise(best.c.w), Customer.id)
        .limit(_rows(limit))
    )


async def _prefix_tiers(connection: asyncpg.Connection, query: str, limit: int) -> list[Found]:
    """Exact then prefix matches in any field, at most `limit`, each walk bounded by `limit`."""
    params = _prefix_params(query)
    return await _prefix_statement("digits" in params, query.count(" "), limit).fetch(connection, params)


# --- 2. substring -------------------------------------------------------------------------


def windows(need: int) -> tuple[int, ...]:
    """How many of the newest customers the substring walks read before calling a fragment rare.

    Reading a row costs about 5 us, a trigram candidate about 8 us. The first, short walk
    settles common fragments (density over 2%) and, finding nothing at all, sends absent or
    rare ones to the trigram index. Only in between does the second walk read further (on from
    the first one's last row, keeping what it found); its length balances its own cost against
    the bitmap's worst case (about need/window of the table as candidates): sqrt(need * table *
    8/5) for a million customers.
    """
    first, second = 50 * need, 1250 * math.isqrt(need)
    return (first, second) if second > first else (first,)


def _digits_pattern(digits: str) -> str:
    """A regular expression for the raw phones whose digits (`digits_of`) contain `digits`.

    The digits stand next to each other once the non-digits are gone exactly when only
    non-digits stand between them: "0671" is `0\\D*6\\D*7\\D*1`. A query's digits are
    Python's; one beyond ASCII must also be a digit to PostgreSQL's `\\D` (or `digits_of`
    would have dropped it), which the lookahead asks. No digit is special in a regex.
    """
    return r"\D*".join(d if "0" <= d <= "9" else rf"(?=\d){d}" for d in digits)


def _contains() -> ColumnElement[str]:
    """The lowered `contains` pattern as a scalar subquery, which PostgreSQL computes once per
    statement: a generic plan would otherwise lower it again for every row it tests. No ESCAPE
    clause: LIKE's default escape character is the backslash that escape_like uses (and an
    ESCAPE clause is evaluated per row as well)."""
    lowered_pattern: ColumnElement[str] = select(_text("contains")).scalar_subquery()
    return lowered_pattern


def matches(entity: Any, phone: bool, spaced: bool, caseless: bool) -> ColumnElement[bool]:
    """Matcher.where's conditions (some field contains the query), over bind parameters.

    A query without a space (`spaced` False: most of what staff type) cannot reach across a
    space, so it lies inside one field exactly when it lies inside the fields joined by
    spaces: one lower() and one LIKE per row instead of seven (the full names add nothing
    then), which is what the substring walks spend their time on. The phone's condition,
    `digits_of(phone) LIKE '%digits%'` there, is `_digits_pattern` behind a LIKE that only
    asks for the digits in order (cheaper than any regular expression).

    A `caseless` query (ASCII digits and punctuation only: phone and tax-id pieces) is found
    in a text exactly where it is found in the lowered text, since lowering never makes nor
    changes such characters; so the lower(), half of a row's cost, is skipped.
    """
    text_columns, phones = search_columns(entity)
    pattern = _contains()

    def folded(value: Any) -> Any:
        return value if caseless else func.lower(value)

    clauses: list[ColumnElement[bool]]
    if spaced:
        clauses = [folded(c).like(pattern) for c in text_columns]
    else:
        fields = (entity.first_name, entity.last_name, entity.email, entity.company_name, entity.tax_id)
        clauses = [folded(func.concat_ws(literal_column("' '"), *fields)).like(pattern)]
    if phone:
        clauses += [
            c.like(_raw("digits_in_order")) & c.op("~", is_comparison=True)(_raw("digits_pattern")) for c in phones
        ]
    return or_(*clauses)


def _not_in(entity: Any) -> ColumnElement[bool]:
    others: ColumnElement[bool] = entity.id != all_(bindparam("exclude", type_=ARRAY(Uuid())))
    return others


@functools.lru_cache(maxsize=256)
def _walk_statement(phone: bool, spaced: bool, caseless: bool, skip: int, window: int, need: int) -> DriverStatement:
    """The first `need` matches among the newest `window` customers after the newest `skip`."""
    newest = (
        select(Customer)
        .order_by(Customer.created_at.desc(), Customer.id.desc())
        .offset(literal_column(str(int(skip))))
        .limit(_rows(window - skip))
        .subquery("recent")
    )
    recent = aliased(Customer, newest)
    return DriverStatement.of(
        _with_primary(recent)
        .where(matches(recent, phone, spaced, caseless), _not_in(recent))
        .order_by(recent.created_at.desc(), recent.id.desc())
        .limit(_rows(need))
    )


def prefilter(phone: bool) -> ColumnElement[bool]:
    """The trigram index's condition for `matches`' rows (parameters as substring_params'):
    every row `matches` accepts contains the pattern (or the phone's digits) in its document,
    so adding it changes nothing but the plan."""
    doc = document()
    condition: ColumnElement[bool] = doc.like(_contains())
    if phone:
        condition = or_(condition, doc.like(_raw("digits_contains")))
    return condition


@functools.lru_cache(maxsize=256)
def _rare_statement(phone: bool, spaced: bool, caseless: bool, need: int) -> DriverStatement:
    # Every candidate of the trigram index, collected first (MATERIALIZED keeps the planner
    # from walking the created_at index instead), then the newest of them.
    candidates = (
        select(Customer.id, Customer.created_at)
        .where(prefilter(phone), matches(Customer, phone, spaced, caseless), _not_in(Customer))
        .cte("candidates")
        .prefix_with("MATERIALIZED")
    )
    return DriverStatement.of(
        _with_primary()
        .join(candidates, candidates.c.id == Customer.id)
        .order_by(candidates.c.created_at.desc(), candidates.c.id.desc())
        .limit(_rows(need))
    )


def substring_params(query: str, exclude: list[UUID]) -> dict[str, Any]:
    params: dict[str, Any] = {"contains": "%" + escape_like(query) + "%", "exclude": exclude}
    digits = phone_digits(query)
    if digits:
        params |= {
            "digits_contains": "%" + digits + "%",
            "digits_in_order": "%" + "%".join(digits) + "%",
            "digits_pattern": _digits_pattern(digits),
        }
    return params


def substring_shape(query: str) -> tuple[bool, bool, bool]:
    """What decides the text of `matches` for a query: (phone, spaced, caseless)."""
    return phone_digits(query) is not None, " " in query, query.isascii() and query.lower() == query.upper()


async def _substring_tier(connection: asyncpg.Connection, query: str, need: int, exclude: list[UUID]) -> list[Found]:
    params = substring_params(query, exclude)
    shape = substring_shape(query)
    found: list[Found] = []
    read = 0
    for window in windows(need):
        # The second walk goes on where the first stopped (its matches are all in `found`).
        found += await _walk_statement(*shape, read, window, need - len(found)).fetch(connection, params)
        if len(found) == need:
            return found
        if not found:
            break
        read = window
    # Rare among the newest customers, so rare: the trigram index has few candidates.
    return await _rare_statement(*shape, need).fetch(connection, params)


# --- 3. typos -----------------------------------------------------------------------------


_TYPO_SETTING = f"SET LOCAL pg_trgm.word_similarity_threshold = {TYPO_THRESHOLD}"

# At most this many similar words are searched for, most similar first.
TYPO_MAX_WORDS = 3

# The dictionary's words most similar to one word of the query: a few hundred rows to look at
# (names, email and company words repeat across customers), not a million documents.
_SIMILAR_WORDS = DriverStatement.of(
    select(CustomerWord.word)
    .where(_text("word").op("<%")(CustomerWord.word))
    .order_by(func.word_similarity(_text("word"), CustomerWord.word).desc(), CustomerWord.word)
    .limit(_rows(TYPO_MAX_WORDS))
)


def _anchor(query: str) -> str:
    """The query's word a typo is looked for in: its longest (the first of those)."""
    words: list[str] = _WORD.findall(query)
    return max(words, key=len)


async def similar_words(connection: asyncpg.Connection, word: str) -> list[str]:
    """Customers' words similar to `word` (pg_trgm word similarity at least TYPO_THRESHOLD),
    most similar first.

    `<%` (which the trigram index serves) reads its threshold from a setting. The read pool
    resets nothing between requests, so the setting lives in a transaction of its own and
    ends with it, committed or rolled back; a connection that fails mid-way is discarded
    (crm.db.reads.read_connection).
    """
    async with connection.transaction():
        await connection.execute(_TYPO_SETTING)
        rows = await _SIMILAR_WORDS.fetch(connection, {"word": word})
    return [row["word"] for row in rows]


async def _typo_tolerant(connection: asyncpg.Connection, query: str, limit: int) -> list[Found]:
    """The query with its longest word replaced by each similar word of the dictionary, most
    similar first, searched literally (exact, prefix, substring): "Petrneko" finds what
    "petrenko" finds, "ivan petrneko" what "ivan petrenko" finds.

    Each corrected query asks for `limit` rows, so after dropping the ones an earlier (more
    similar) correction found there are still enough to fill the page if it has them.
    """
    anchor = _anchor(query)
    found: list[Found] = []
    seen: set[UUID] = set()
    for word in await similar_words(connection, anchor):
        if word == anchor.lower():
            continue  # the query itself, which found nothing
        for row in await _literal(connection, query.replace(anchor, word, 1), limit):
            if row["id"] not in seen:
                seen.add(row["id"])
                found.append(row)
        if len(found) >= limit:
            break
    return found[:limit]
