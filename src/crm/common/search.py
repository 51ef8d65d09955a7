"""Search helpers shared by customers, contacts and interactions.

Relevance tiers (exact, then prefix, then substring) are computed in SQL with
ILIKE patterns whose `%`, `_` and `\\` are escaped, so user text is always literal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, case, func, literal, or_
from sqlalchemy.orm import QueryableAttribute

from crm.errors import ValidationFailed

MIN_QUERY = 2
MAX_QUERY = 200
_PHONEISH = re.compile(r"^[\d\s()+\-./]+$")


def normalize_query(raw: str, field: str = "query", minimum: int = MIN_QUERY) -> str:
    query = " ".join(raw.split())
    if len(query) < minimum:
        raise ValidationFailed.field(field, f"must be at least {minimum} characters after trimming")
    if len(query) > MAX_QUERY:
        raise ValidationFailed.field(field, f"must be at most {MAX_QUERY} characters")
    return query


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def phone_digits(query: str) -> str | None:
    """Digits of a query that looks like a phone number ("+380 (67) 123" -> "38067123")."""
    if not _PHONEISH.match(query):
        return None
    digits = re.sub(r"\D", "", query)
    return digits if len(digits) >= MIN_QUERY else None


# A column or an expression over columns (full name = first || ' ' || last).
Column = ColumnElement[Any] | QueryableAttribute[Any]


def digits_of(column: Column) -> ColumnElement[str]:
    return func.regexp_replace(column, r"\D", "", "g")


class Matcher:
    """Builds the WHERE clause and the relevance rank for one query over several columns.

    Both sides are lowered by PostgreSQL's `lower()`, never one by Python and the other by
    the database: the two disagree wherever the database's LC_CTYPE does (under `C`, lower()
    folds ASCII only, so a Python-lowered "шевченко" would never equal lower('Шевченко'),
    not even for a query typed in the stored case).
    """

    def __init__(self, query: str) -> None:
        escaped = escape_like(query)
        self.exact = func.lower(literal(query, String))
        self.prefix = func.lower(literal(escaped + "%", String))
        self.contains = func.lower(literal("%" + escaped + "%", String))
        self.digits = phone_digits(query)

    def where(self, text_columns: Sequence[Column], phone_columns: Sequence[Column] = ()) -> ColumnElement[bool]:
        clauses = [func.lower(c).like(self.contains, escape="\\") for c in text_columns]
        if self.digits:
            clauses += [digits_of(c).like("%" + self.digits + "%") for c in phone_columns]
        return or_(*clauses)

    def prefilter(self, document: ColumnElement[str]) -> ColumnElement[bool]:
        """Candidates by a trigram-indexed document that contains every searched field (lowered).

        Any row the exact conditions accept contains the query (or its phone digits) in the
        document, so adding this changes nothing but the plan: an index scan, not a table scan.
        """
        clauses = [document.like(self.contains, escape="\\")]
        if self.digits:
            clauses.append(document.like("%" + self.digits + "%"))
        return or_(*clauses)

    def rank(self, text_columns: Sequence[Column], phone_columns: Sequence[Column] = ()) -> ColumnElement[int]:
        """0 = some field equals the query, 1 = some field starts with it, 2 = substring only."""
        exact = [func.lower(c) == self.exact for c in text_columns]
        prefix = [func.lower(c).like(self.prefix, escape="\\") for c in text_columns]
        if self.digits:
            exact += [digits_of(c) == self.digits for c in phone_columns]
            prefix += [digits_of(c).like(self.digits + "%") for c in phone_columns]
        return case((or_(*exact), literal(0)), (or_(*prefix), literal(1)), else_=literal(2))
