"""interaction month days: the all-time statistics' byDate pre-rendered, one JSON fragment per month

The dashboards' poll rendered byDate with json_object_agg over ~1,100 day totals on every
call: ~225 of the ~245 us of backend CPU the all-time document took (1M customers, 5M
interactions). Each row here holds one UTC month's entries exactly as json_object_agg prints
them (`"2025-05-01" : 3, "2025-05-02" : 7`, days ascending, no zero days), so the reader joins
~36 short strings instead (the whole document: ~53 us). The trigger re-renders the month of
each day it changes (~30 day totals), in the writing transaction.

Revision ID: 7e2b9c4d1a60
Revises: c3d4e5f6a7b8
Create Date: 2026-11-26 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7e2b9c4d1a60"
down_revision: str | None = "c3d4e5f6a7b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One month's fragment from the day totals. to_char, not day::text: the writer's DateStyle is
# not ours to rely on. Kept in one place so the trigger and the rebuild cannot disagree.
RENDER = """
CREATE OR REPLACE FUNCTION crm_month_days(p_month date) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(string_agg('"' || to_char(day, 'YYYY-MM-DD') || '" : ' || n, ', ' ORDER BY day), '')
    FROM interaction_day_totals
    WHERE day >= p_month AND day < (p_month + interval '1 month')::date AND n <> 0
$$
"""

# Lock (creating if need be) the month rows a write will re-render, ascending, before any
# count changes. Why before: the render runs in a later statement, and a volatile function
# takes a new snapshot per statement, so it sees every day total committed by the writers that
# held the lock before us (rendering in the statement that waited for the lock would use the
# snapshot from before the wait and lose their counts). Why ascending and all at once: a move
# from January to February and one from February to January would otherwise each hold one
# month and wait for the other. Writers of one month now queue on its row from the start, so
# they also take the day, type and user rows after it in turn.
LOCK = """
CREATE OR REPLACE FUNCTION crm_lock_months(p_months date[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO interaction_month_days (month, days)
    SELECT DISTINCT month, '' FROM unnest(p_months) AS month WHERE month IS NOT NULL ORDER BY 1
    ON CONFLICT (month) DO NOTHING;
    SELECT 1 FROM interaction_month_days WHERE month = ANY (p_months) ORDER BY month FOR NO KEY UPDATE;
$$
"""

_TRIGGER = """
CREATE OR REPLACE FUNCTION crm_interactions_daily_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
"""

_LOCK_MONTHS = """    PERFORM crm_lock_months(ARRAY[
        CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN date_trunc('month', OLD.date AT TIME ZONE 'UTC')::date END,
        CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN date_trunc('month', NEW.date AT TIME ZONE 'UTC')::date END
    ]);
"""

# As 2026-11-26-1545 defined it.
_BUMPS = """    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM crm_bump_daily(OLD.date, OLD.type, OLD.user_id, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM crm_bump_daily(NEW.date, NEW.type, NEW.user_id, 1);
    END IF;
    RETURN NULL;
END
$$
"""

TRIGGER = _TRIGGER + _LOCK_MONTHS + _BUMPS
OLD_TRIGGER = _TRIGGER + _BUMPS  # for the downgrade

_HEAD = """
CREATE OR REPLACE FUNCTION crm_bump_daily(p_date timestamptz, p_type text, p_user uuid, p_delta bigint) RETURNS void
LANGUAGE sql AS $$
"""

# As 2026-11-26-1930 defined them.
_COUNTS = """    INSERT INTO interaction_daily_counts AS d (day, type, user_id, n)
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
"""

# The caller (the trigger) holds the month's row: see LOCK.
_RENDER_MONTH = """    UPDATE interaction_month_days
    SET days = crm_month_days(month)
    WHERE month = date_trunc('month', p_date AT TIME ZONE 'UTC')::date;
"""

BUMP = _HEAD + _COUNTS + _RENDER_MONTH + "$$\n"
OLD_BUMP = _HEAD + _COUNTS + "$$\n"  # for the downgrade

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
    DELETE FROM interaction_month_days;
    INSERT INTO interaction_month_days (month, days)
        SELECT month, crm_month_days(month)
        FROM (SELECT DISTINCT date_trunc('month', day::timestamp)::date AS month FROM interaction_day_totals) AS months;
    -- Until it has statistics the planner guesses a thousand rows here and walks the primary
    -- key for the poll's month order; a seq scan and sort of the ~36 rows costs ~30% less.
    ANALYZE interaction_month_days;
END
$$
"""

# What 2026-11-26-1930 defined, for the downgrade.
OLD_REBUILD = REBUILD.partition("    DELETE FROM interaction_month_days;")[0] + "END\n$$\n"  # noqa: S608 - constant DDL


def upgrade() -> None:
    op.create_table(
        "interaction_month_days",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("days", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_interaction_month_days")),
    )
    op.execute(RENDER)
    op.execute(LOCK)
    op.execute(BUMP)
    op.execute(TRIGGER)
    op.execute(REBUILD)
    # Existing day totals (an upgrade of a live database) are rendered once, here, under the
    # same lock the rebuild takes, so no write slips between the render and the new trigger.
    op.execute("LOCK TABLE interactions IN SHARE MODE")
    op.execute(
        "INSERT INTO interaction_month_days (month, days) SELECT month, crm_month_days(month) "
        "FROM (SELECT DISTINCT date_trunc('month', day::timestamp)::date AS month FROM interaction_day_totals) AS months"
    )
    op.execute("ANALYZE interaction_month_days")  # as the rebuild does, for the same reason


def downgrade() -> None:
    op.execute(OLD_REBUILD)
    op.execute(OLD_TRIGGER)
    op.execute(OLD_BUMP)
    op.execute("DROP FUNCTION crm_lock_months(date[])")
    op.execute("DROP FUNCTION crm_month_days(date)")
    op.drop_table("interaction_month_days")
