"""Optimistic concurrency over HTTP: `ETag: "<version>"` out, `If-Match` in.

Services check the precondition *after* taking the row lock, so among concurrent
writers holding the same tag exactly one wins and the rest get 412.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crm.errors import PreconditionFailed

_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*')


def etag(version: int) -> str:
    return f'"{version}"'


@dataclass(frozen=True, slots=True)
class Precondition:
    """A parsed If-Match: `*` (any current version) or the opaque parts of its strong tags."""

    any_version: bool
    tags: frozenset[str]

    def check(self, current: int) -> None:
        # Strong comparison is of the opaque strings (RFC 9110 8.8.3.2), so `"01"` is not `"1"`.
        if self.any_version or str(current) in self.tags:
            return
        raise PreconditionFailed(
            f"the resource changed: its current ETag is {etag(current)}; reload it and retry",
            headers={"ETag": etag(current)},
        )


def parse_if_match(value: str | None) -> Precondition | None:
    if value is None:
        return None
    if value.strip() == "*":
        return Precondition(True, frozenset())
    tags: set[str] = set()
    for part in value.split(","):
        match = _TAG.fullmatch(part)
        # RFC 9110 13.1.1: If-Match uses strong comparison, so weak tags never match;
        # neither does anything that is not one of our tags. Both end as 412. The tag is
        # kept as text, never converted: int() of a Latin-1 "digit" such as "\xb2" raises.
        if match and not match.group(1):
            tags.add(match.group(2))
    return Precondition(False, frozenset(tags))
