"""interaction totals by day and by type, so all-time statistics sum no roll-up rows

`GET /api/interactions/statistics` without a range is the dashboards' poll. Summing the
(day, type) roll-up (~5,500 rows for three years) on every poll cost PostgreSQL ~2 ms;
these two small tables hold the sums themselves, kept exact by the same trigger in the
writing transaction. (A row per type is no new contention: the (day, type) roll-up of
today already takes one row per type.)

Revision ID: c3d4e5f6a7b8
Revises: b2c3d4e5f6a7
Create Date: 2026-11-26 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3d4e5f6a7b8"
down_revision: str | None = "b2c3d4e5f6a7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUMP = """
CREATE OR REPLACE FUNCTION crm_bump_daily(p_date timestamptz, p_type text, p_user uuid, p_delta bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO interaction_daily_counts AS d (day, type, user_id, n)
    VALUES ((p_date AT TIME ZONE 'UTC')::date, p_type, p_user, p_delta)
    ON CONFLICT (day, type, user_id) DO UPDATE SET n = d.n + excluded.n;
    INSERT INTO interaction_day_counts AS d (day, type, n)
    VALUES ((p_date AT TIME ZONE 'UTC')::date, p_type, p_delta)
    ON CONFLICT (day, type) DO UPDATE SET n = d.n + excluded.n;
    INSERT INTO interaction_user_counts AS u (user_id, n)
    VALUES (p_user, p_delta)
    ON CONFLICT (user_id) DO UPDATE SET n = u.n + excluded.n;
    INSERT INTO interaction_day_totals AS t (day, n)
    VALUES ((p_date AT TIME ZONE 'UTC')::date, p_delta)
    ON CONFLICT (day) DO UPDATE SET n = t.n + excluded.n;
    INSERT INTO interaction_type_totals AS t (type, n)
    VALUES (p_type, p_delta)
    ON CONFLICT (type) DO UPDATE SET n = t.n + excluded.n;
$$
"""

REBUILD = """
CREATE OR REPLACE FUNCTION crm_rebuild_aggregates() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE customers, interactions IN SHARE MODE;
    DELETE FROM customer_segment_counts;
    INSERT INTO customer_segment_counts (status, type, slot, n)
        SELECT status, coalesce(type, 'unspecified'), 0, count(*) FROM customers GROUP BY 1, 2;
    DELETE FROM interaction_daily_counts;
    INSERT INTO interaction_daily_counts (day, type, user_id, n)
        SELECT (date AT TIME ZONE 'UTC')::date, type, user_id, count(*) FROM interactions GROUP BY 1, 2, 3;
    DELETE FROM interaction_day_counts;
    INSERT INTO interaction_day_counts (day, type, n)
        SELECT day, type, sum(n) FROM interaction_daily_counts GROUP BY 1, 2;
    DELETE FROM interaction_user_counts;
    INSERT INTO interaction_user_counts (user_id, n)
        SELECT user_id, sum(n) FROM interaction_daily_counts GROUP BY 1;
    DELETE FROM interaction_day_totals;
    INSERT INTO interaction_day_totals (day, n)
        SELECT day, sum(n) FROM interaction_day_counts GROUP BY 1;
    DELETE FROM interaction_type_totals;
    INSERT INTO interaction_type_totals (type, n)
        SELECT type, sum(n) FROM interaction_day_counts GROUP BY 1;
END
$$
"""

# What 2026-11-26-1545 defined, for the downgrade.
OLD_BUMP = BUMP.partition("    INSERT INTO interaction_day_totals")[0].rstrip() + "\n$$\n"
OLD_REBUILD = REBUILD.partition("    DELETE FROM interaction_day_totals;")[0] + "END\n$$\n"  # noqa: S608 - constant DDL


def upgrade() -> None:
    op.create_table(
        "interaction_day_totals",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_interaction_day_totals")),
    )
    op.create_table(
        "interaction_type_totals",
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("type", name=op.f("pk_interaction_type_totals")),
    )
    op.execute(BUMP)
    op.execute(REBUILD)
    # Existing roll-ups (an upgrade of a live database) are summed once, here, under the same
    # lock the rebuild takes, so no write slips between the sums and the new trigger.
    op.execute("LOCK TABLE interactions IN SHARE MODE")
    op.execute("INSERT INTO interaction_day_totals (day, n) SELECT day, sum(n) FROM interaction_day_counts GROUP BY 1")
    op.execute(
        "INSERT INTO interaction_type_totals (type, n) SELECT type, sum(n) FROM interaction_day_counts GROUP BY 1"
    )


def downgrade() -> None:
    op.execute(OLD_REBUILD)
    op.execute(OLD_BUMP)
    op.drop_table("interaction_type_totals")
    op.drop_table("interaction_day_totals")
