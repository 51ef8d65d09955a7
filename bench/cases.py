"""What `make bench` asks of the service: every GET endpoint of the API with parameters staff
would send, and POST customer.

Names and words come from the demo data's own lists (crm.demo.names, crm.demo.generate), so
they stay what the loaded data holds; ids are drawn from the database at run time. A case
whose template has `{id}` takes a random id per request from its id list, `{q}` a random
line of its values (bench/lua/get.lua).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from crm.demo import generate as g
from crm.demo import names as n

# What the case is held to (bench/report.py): "get" p99 < 100 ms and no errors or timeouts;
# "fast" p99 < 50 ms as well; "by_id" also >= 75% of the baseline; "post" >= 1,000/s, each
# stored exactly once; "baseline" is the yardstick, held to nothing.
Target = Literal["get", "fast", "by_id", "baseline", "post"]
IdList = Literal["customers", "contacts", "interactions"]


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    path: str
    target: Target = "get"
    ids: IdList | None = None
    values: list[str] = field(default_factory=list)  # query-string pieces, already encoded
    script: str = "get.lua"
    baseline: bool = False  # served by bench/baseline.py instead of the service


def encoded(texts: list[str]) -> list[str]:
    # Percent-encoded: raw UTF-8 in a request line is refused (400) before it reaches the app.
    return [urllib.parse.quote(t, safe="") for t in texts]


# Four letters each, as staff type them: starts of surnames in both scripts, first names,
# company words, email and phone pieces, a very common ending ("енко": half the Ukrainian
# surnames), and misses ("tech", "lviv").
SEARCH_FRAGMENTS = [
    *("kova", "петр", "smit", "енко", "olen", "bond", "tech", "lviv"),
    *("шевч", "кова", "агро", "nova", "ivan", "0671", "4419", "ткач"),
]


def first_name_starts() -> list[str]:
    """The first four letters of every first name the demo data uses (contacts carry the same names)."""
    return sorted({name[:4] for name in (*n.UA_MALE, *n.UA_FEMALE, *n.EN_FIRST) if len(name) >= 4})


def swapped_surnames() -> list[str]:
    """Each surname of five letters or more with the two letters in its middle swapped ("Петрнеко")."""
    typos = []
    for name in (*n.UA_LAST, *n.EN_LAST):
        i = len(name) // 2
        typo = name[: i - 1] + name[i] + name[i - 1] + name[i + 1 :]
        if len(name) >= 5 and typo != name:
            typos.append(typo)
    return typos


def interaction_words() -> dict[str, float]:
    """Each word of the interactions' subjects and descriptions, with the share of interactions
    that hold it (from the generator's own weights: a subject is one of its type's four, a
    description one of five)."""
    kinds = dict(g.INTERACTION_TYPES)
    total = sum(kinds.values())
    share: dict[str, float] = {}
    for kind, subjects in n.SUBJECTS.items():
        for subject in subjects:
            for word in set(_words(subject)):
                share[word] = share.get(word, 0) + kinds[kind] / total / len(subjects)
    for description in n.DESCRIPTIONS:
        for word in set(_words(description or "")):
            share[word] = share.get(word, 0) + 1 / len(n.DESCRIPTIONS)
    return share


def _words(text: str) -> list[str]:
    # Lower-cased: the search ignores case, so "Contract" and "contract" are one word to it.
    return ["".join(c for c in w if c.isalpha()).lower() for w in text.split() if any(c.isalpha() for c in w)]


def common_six_letter_words(k: int = 4) -> list[str]:
    words = interaction_words()
    six = sorted((w for w in words if len(w) == 6), key=lambda w: (-words[w], w))
    return six[:k]


def least_common_words(k: int = 4) -> list[str]:
    """The rarest words of six letters or more (in this data still a few percent of rows)."""
    words = interaction_words()
    return sorted((w for w in words if len(w) >= 6), key=lambda w: (words[w], w))[:k]


# Words staff might type that no demo interaction holds: the index must answer "none" fast.
ABSENT_WORDS = ["warranty", "рекламація", "refund", "скарга"]


def weeks(year: int = 2025) -> list[str]:
    start = date(year, 1, 6)
    return [
        f"startDate={start + timedelta(weeks=w)}&endDate={start + timedelta(weeks=w, days=6)}" for w in range(0, 50, 3)
    ]


def list_filters(owners: list[str]) -> list[str]:
    """Each filter and sort order of the customer list, in turn."""
    sorts = ("created_at", "updated_at", "first_name", "last_name", "email", "company_name", "status", "type")
    statuses = [s for s, _ in g.STATUSES]
    types = [t for t, _ in g.TYPES if t]
    pieces = []
    for i, sort in enumerate(sorts):
        order = ("asc", "desc")[i % 2]
        pieces.append(f"sortBy={sort}&sortOrder={order}")
        pieces.append(f"status={statuses[i % len(statuses)]}&sortBy={sort}&sortOrder={order}")
        pieces.append(f"type={types[i % len(types)]}&sortBy={sort}&sortOrder={order}")
    pieces += [f"ownerId={owner}" for owner in owners[:8]]
    pieces += [f"ownerId={owner}&status=active&sortBy=last_name&sortOrder=asc" for owner in owners[8:12]]
    return pieces


def status_type_pairs() -> list[str]:
    """The issue's `status=active&type=business` and the other common pairs, sorted by surname."""
    pairs = [("active", "business"), ("customer", "individual"), ("lead", "business"), ("active", "individual")]
    return [f"status={s}&type={t}&sortBy=last_name&sortOrder=asc" for s, t in pairs]


def all_cases(cursors: list[str], owners: list[str], users: list[str], history: tuple[str, list[str]]) -> list[Case]:
    big_customer, user_weeks = history
    fragments = encoded(SEARCH_FRAGMENTS)
    return [
        Case("baseline: GET customer by id", "/customers/{id}", "baseline", "customers", baseline=True),
        Case("GET customer by id", "/api/customers/{id}", "by_id", "customers"),
        Case("list, first page", "/api/customers", "fast"),
        Case("list, page by cursor", "/api/customers?cursor={q}", "fast", values=cursors),
        Case("list, page 5000 by offset", "/api/customers?page=5000"),
        Case("list, page=500&status=inactive", "/api/customers?page=500&status=inactive"),
        Case("list, search (4 letters) + status=active", "/api/customers?search={q}&status=active", values=fragments),
        Case("list, status+type sortBy=last_name asc", "/api/customers?{q}", values=status_type_pairs()),
        Case("list, every filter and sortBy", "/api/customers?{q}", values=list_filters(owners)),
        Case("customer search, 4 letters", "/api/customers/search?query={q}", values=fragments),
        Case(
            "customer search, surname with 2 letters swapped",
            "/api/customers/search?query={q}",
            values=encoded(swapped_surnames()),
        ),
        Case("segments", "/api/customers/segments", "fast"),
        Case("a customer's orders (stub Order Service)", "/api/customers/{id}/orders", ids="customers"),
        Case("a customer's statistics (stub Order Service)", "/api/customers/{id}/statistics", ids="customers"),
        Case("a customer's contacts", "/api/contacts/customer/{id}", ids="customers"),
        Case(
            "contacts search, 4 letters of a first name",
            "/api/contacts/search?query={q}",
            values=encoded(first_name_starts()),
        ),
        Case("contact by id", "/api/contacts/{id}", ids="contacts"),
        Case("a customer's interactions", "/api/interactions/customer/{id}", ids="customers"),
        Case("interaction by id", "/api/interactions/{id}", ids="interactions"),
        Case(
            "date-range 2025-01-01..2025-12-31",
            "/api/interactions/date-range?startDate=2025-01-01&endDate=2025-12-31",
        ),
        Case("date-range, one week", "/api/interactions/date-range?{q}", values=weeks()),
        Case("date-range, all time", "/api/interactions/date-range"),
        Case(
            "date-range 2025, by type or user",
            "/api/interactions/date-range?startDate=2025-01-01&endDate=2025-12-31&{q}",
            values=[f"type={t}" for t, _ in g.INTERACTION_TYPES] + [f"userId={u}" for u in users[:10]],
        ),
        Case("statistics, all time", "/api/interactions/statistics", "fast"),
        Case("statistics, 2025", "/api/interactions/statistics?startDate=2025-01-01&endDate=2025-12-31"),
        Case(
            "interactions search, a common 6-letter word",
            "/api/interactions/search?query={q}",
            values=encoded(common_six_letter_words()),
        ),
        Case(
            "interactions search, the least common words",
            "/api/interactions/search?query={q}",
            values=encoded(least_common_words()),
        ),
        Case(
            "interactions search, a word no interaction holds",
            "/api/interactions/search?query={q}",
            values=encoded(ABSENT_WORDS),
        ),
        Case("history of a customer with 10,000 entries", f"/api/customers/{big_customer}/history?limit=50", "fast"),
        Case("history of one user's week (10M entries)", "/api/history?limit=50&{q}", values=user_weeks),
        Case("POST customer", "/api/customers", "post", script="post_customer.lua"),
    ]
