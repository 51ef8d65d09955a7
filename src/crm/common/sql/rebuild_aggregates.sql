-- Recount every maintained aggregate from the rows, exactly: the customer segment counts
-- (customers/sql/segment_counts.sql) and the interaction roll-ups
-- (interactions/sql/rollups.sql). For after a bulk load that bypassed the triggers
-- (crm.demo.load). It locks both tables against writes while it counts, so the counts it
-- leaves are those of the rows when it commits. It lives here, not in one feature, because
-- it rebuilds both: a change to what a trigger counts is a change here too.
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
    DELETE FROM interaction_month_user_counts;
    INSERT INTO interaction_month_user_counts (month, user_id, n)
        SELECT date_trunc('month', day::timestamp)::date, user_id, sum(n) FROM interaction_daily_counts GROUP BY 1, 2;
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
$$;
