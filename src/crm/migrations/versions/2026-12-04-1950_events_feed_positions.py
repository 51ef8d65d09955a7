"""events feed positions: the relay numbers events in the order it published them

`events.feed_position` is taken from this sequence when the relay marks an event published
(crm.events.relay); the pull feed reads in that order, by type through the new index.

Revision ID: 3f4b2a9c1e07
Revises: 9d4a7e2c6b18
Create Date: 2026-12-04 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f4b2a9c1e07"
down_revision: str | None = "9d4a7e2c6b18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("events_feed_position_seq")))
    op.create_index(
        "ix_events_type_feed_position",
        "events",
        ["type", "feed_position"],
        postgresql_where=sa.text("feed_position IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_events_type_feed_position", table_name="events")
    op.execute(sa.schema.DropSequence(sa.Sequence("events_feed_position_seq")))
