"""Optimistic concurrency over HTTP: `ETag: "<version>"` out, `If-Match` in.

Services check the precondition *after* taking the row lock, so among concurrent
writers holding the same tag exactly one wins and the rest get 412.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header, Response

from crm.errors import PreconditionFailed

_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*')


def etag(version: int) -> str:
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


@dataclass(frozen=True, slots=True)
class Precondition:
    """A parsed If-Match: `*` (any current version) or a set of strong version tags."""

    any_version: bool
    versions: frozenset[int]

    def check(self, current: int) -> None:
        if self.any_version or current in self.versions:
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
    versions: set[int] = set()
    for part in value.split(","):
        match = _TAG.fullmatch(part)
        # RFC 9110 13.1.1: If-Match uses strong comparison, so weak tags never match;
        # neither does anything that is not one of our tags. Both end as 412.
        if match and not match.group(1) and match.group(2).isdigit() and len(match.group(2)) < 12:
            versions.add(int(match.group(2)))
    return Precondition(False, frozenset(versions))


IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=1024,
        description='Optional `"<version>"` from an earlier ETag; a stale one gets 412 and changes nothing',
    ),
]
