"""interaction roll-up by month and user: a long range's byUser without summing every day of it

The statistics of a range took byUser from interaction_daily_counts, one row per (day, type,
user): ~110,000 rows for a year of the bench's data (p99 0.4-0.8 s). crm_users_between now
takes the whole calendar months from this table and only the days at the range's ends from
the daily counts (interactions/sql/rollups.sql); the trigger keeps it with the others, and
crm_rebuild_aggregates (common/sql/rebuild_aggregates.sql) recounts it.

Revision ID: 8f4b1d6e2a90
Revises: 8e0a5c3b7d21
Create Date: 2026-12-04 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm.migrate import apply_sql

revision: str = "8f4b1d6e2a90"
down_revision: str | None = "8e0a5c3b7d21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "interaction_month_user_counts",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("month", "user_id", name=op.f("pk_interaction_month_user_counts")),
    )
    # The trigger's new text (which writes this table) and the months of the existing rows, in
    # one transaction that keeps writers out meanwhile, so no interaction is counted twice or lost.
    op.execute("LOCK TABLE interactions IN SHARE MODE")
    apply_sql("crm.interactions", "rollups.sql", sha256="3ae3b56a94e5")
    apply_sql("crm.common", "rebuild_aggregates.sql", sha256="22f3e90d5cd5")
    op.execute(
        "INSERT INTO interaction_month_user_counts (month, user_id, n) "
        "SELECT date_trunc('month', day::timestamp)::date, user_id, sum(n) FROM interaction_daily_counts GROUP BY 1, 2"
    )


def downgrade() -> None:
    # The trigger's body before this migration is not kept anywhere but in git: a downgrade
    # past here is a restore from backup, as for the squashed initial schema.
    raise NotImplementedError("downgrade past 8f4b1d6e2a90: restore a backup taken before the upgrade")
