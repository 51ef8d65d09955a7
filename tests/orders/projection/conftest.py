from __future__ import annotations

from tests.orders.projection.amqp import broker

__all__ = ["broker"]
