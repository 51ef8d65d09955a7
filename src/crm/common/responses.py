"""JSON responses: documents serialised once by their handler, and amounts rendered exactly.

DecimalJSONResponse renders Decimal amounts as exact JSON numbers (e.g. 71302.50): the
standard encoder only knows floats, which would turn money into binary approximations and
drop the trailing zero; amounts here are quantized decimals and must reach the client digit
for digit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from starlette.responses import JSONResponse, Response

_PLACEHOLDER = re.compile(r'"\\u0000dec(\d+)\\u0000"')


class DecimalJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        decimals: list[Decimal] = []

        def swap(value: Any) -> Any:
            if isinstance(value, Decimal):
                decimals.append(value)
                return f"\x00dec{len(decimals) - 1}\x00"
            if isinstance(value, dict):
                return {k: swap(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [swap(v) for v in value]
            return value

        text = json.dumps(swap(content), ensure_ascii=False, separators=(",", ":"), default=str)
        return _PLACEHOLDER.sub(lambda m: str(decimals[int(m.group(1))]), text).encode()


def json_response(body: str | bytes, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON document serialised by the handler (once, by pydantic), sent as it is."""
    return Response(body, status_code=status, media_type="application/json", headers=headers)
