"""maintained aggregates: customer segment counts and interaction roll-ups (by day/type/user, day/type, user)

Both tables are kept exact by row triggers that run in the writing transaction, so a
reader sees counts consistent with the rows it can see, under any concurrency.

Revision ID: 5a1f0c2d9e7b
Revises: d639fc32596e
Create Date: 2026-11-26 15:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5a1f0c2d9e7b"
down_revision: str | None = "d639fc32596e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# asyncpg runs one statement per call: the DDL is a list, split on the marker line.
FUNCTIONS = """
-- 16 slots per (status, type): see crm.customers.aggregates.SLOTS.
CREATE FUNCTION crm_bump_segment(p_status text, p_type text, p_delta bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO customer_segment_counts AS c (status, type, slot, n)
    VALUES (p_status, coalesce(p_type, 'unspecified'), floor(random() * 16)::smallint, p_delta)
    ON CONFLICT (status, type, slot) DO UPDATE SET n = c.n + excluded.n
$$;
--;;
CREATE FUNCTION crm_customers_segments_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM crm_bump_segment(OLD.status, OLD.type, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM crm_bump_segment(NEW.status, NEW.type, 1);
    END IF;
    RETURN NULL;
END
$$;
--;;
CREATE FUNCTION crm_bump_daily(p_date timestamptz, p_type text, p_user uuid, p_delta bigint) RETURNS void
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
$$;
--;;
CREATE FUNCTION crm_interactions_daily_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM crm_bump_daily(OLD.date, OLD.type, OLD.user_id, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM crm_bump_daily(NEW.date, NEW.type, NEW.user_id, 1);
    END IF;
    RETURN NULL;
END
$$;
--;;
-- After a bulk load that bypassed the triggers: recount everything, exactly.
CREATE FUNCTION crm_rebuild_aggregates() RETURNS void
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
END
$$;
--;;
CREATE TRIGGER customers_segments
    AFTER INSERT OR DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION crm_customers_segments_trg();
--;;
CREATE TRIGGER customers_segments_update
    AFTER UPDATE OF status, type ON customers
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.type IS DISTINCT FROM NEW.type)
    EXECUTE FUNCTION crm_customers_segments_trg();
--;;
CREATE TRIGGER interactions_daily
    AFTER INSERT OR DELETE ON interactions
    FOR EACH ROW EXECUTE FUNCTION crm_interactions_daily_trg();
--;;
CREATE TRIGGER interactions_daily_update
    AFTER UPDATE OF date, type, user_id ON interactions
    FOR EACH ROW WHEN (OLD.date IS DISTINCT FROM NEW.date OR OLD.type IS DISTINCT FROM NEW.type
                       OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION crm_interactions_daily_trg();
"""


def upgrade() -> None:
    op.create_table(
        "customer_segment_counts",
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("status", "type", "slot", name=op.f("pk_customer_segment_counts")),
    )
    op.create_table(
        "interaction_daily_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "type", "user_id", name=op.f("pk_interaction_daily_counts")),
    )
    op.create_index("ix_interaction_daily_counts_user_id_day", "interaction_daily_counts", ["user_id", "day"])
    op.create_table(
        "interaction_day_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "type", name=op.f("pk_interaction_day_counts")),
    )
    op.create_table(
        "interaction_user_counts",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_interaction_user_counts")),
    )
    for statement in FUNCTIONS.split("--;;"):
        if statement.strip():
            op.execute(statement)
    # Existing rows (an upgrade of a live database) are counted once, here.
    op.execute("SELECT crm_rebuild_aggregates()")


def downgrade() -> None:
    op.execute("DROP TRIGGER interactions_daily_update ON interactions")
    op.execute("DROP TRIGGER interactions_daily ON interactions")
    op.execute("DROP TRIGGER customers_segments_update ON customers")
    op.execute("DROP TRIGGER customers_segments ON customers")
    op.execute("DROP FUNCTION crm_rebuild_aggregates()")
    op.execute("DROP FUNCTION crm_interactions_daily_trg()")
    op.execute("DROP FUNCTION crm_bump_daily(timestamptz, text, uuid, bigint)")
    op.execute("DROP FUNCTION crm_customers_segments_trg()")
    op.execute("DROP FUNCTION crm_bump_segment(text, text, bigint)")
    op.drop_table("interaction_user_counts")
    op.drop_table("interaction_day_counts")
    op.drop_index("ix_interaction_daily_counts_user_id_day", table_name="interaction_daily_counts")
    op.drop_table("interaction_daily_counts")
    op.drop_table("customer_segment_counts")
