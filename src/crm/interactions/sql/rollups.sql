-- The interaction roll-ups (crm.interactions.aggregates describes each table and the question
-- it answers), kept exact by row triggers in the writing transaction, so statistics over the
-- whole data set read small tables instead of scanning every interaction, and a reader sees
-- counts consistent with the rows it can see, under any concurrency:
--
--   interaction_daily_counts (day, type, user_id), interaction_day_counts (day, type),
--   interaction_user_counts (user_id), interaction_day_totals (day),
--   interaction_type_totals (type), interaction_month_days (month: byDate pre-rendered),
--   interaction_month_user_counts (month, user_id).
--
-- Days are UTC days. Rows whose count fell back to zero stay (the trigger only adds deltas);
-- readers skip them.

-- One month's byDate fragment from the day totals, exactly as json_object_agg prints its
-- entries (`"2025-05-01" : 3, "2025-05-02" : 7`, days ascending, no zero days), so the
-- all-time statistics join one short string per month instead of aggregating every day.
-- to_char, not day::text: the writer's DateStyle is not ours to rely on. One function, so the
-- trigger and the rebuild (common/sql/rebuild_aggregates.sql) cannot disagree.
CREATE OR REPLACE FUNCTION crm_month_days(p_month date) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(string_agg('"' || to_char(day, 'YYYY-MM-DD') || '" : ' || n, ', ' ORDER BY day), '')
    FROM interaction_day_totals
    WHERE day >= p_month AND day < (p_month + interval '1 month')::date AND n <> 0
$$;

-- Lock (creating if need be) the month rows a write will re-render, ascending, before any
-- count changes. Why before: the render runs in a later statement, and a volatile function
-- takes a new snapshot per statement, so it sees every day total committed by the writers that
-- held the lock before us (rendering in the statement that waited for the lock would use the
-- snapshot from before the wait and lose their counts). Why ascending and all at once: a move
-- from January to February and one from February to January would otherwise each hold one
-- month and wait for the other. Writers of one month now queue on its row from the start, so
-- they also take the day, type and user rows after it in turn.
CREATE OR REPLACE FUNCTION crm_lock_months(p_months date[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO interaction_month_days (month, days)
    SELECT DISTINCT month, '' FROM unnest(p_months) AS month WHERE month IS NOT NULL ORDER BY 1
    ON CONFLICT (month) DO NOTHING;
    SELECT 1 FROM interaction_month_days WHERE month = ANY (p_months) ORDER BY month FOR NO KEY UPDATE;
$$;

-- Add p_delta interactions of one (UTC day, type, user) to every roll-up, then re-render that
-- day's month (the caller, the trigger, already holds the month's row: see crm_lock_months).
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
    INSERT INTO interaction_month_user_counts AS m (month, user_id, n)
    VALUES (date_trunc('month', p_date AT TIME ZONE 'UTC')::date, p_user, p_delta)
    ON CONFLICT (month, user_id) DO UPDATE SET n = m.n + excluded.n;
    UPDATE interaction_month_days
    SET days = crm_month_days(month)
    WHERE month = date_trunc('month', p_date AT TIME ZONE 'UTC')::date;
$$;

-- A move (an update of date, type or user) counts as the old row leaving and the new arriving.
CREATE OR REPLACE FUNCTION crm_interactions_daily_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm_lock_months(ARRAY[
        CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN date_trunc('month', OLD.date AT TIME ZONE 'UTC')::date END,
        CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN date_trunc('month', NEW.date AT TIME ZONE 'UTC')::date END
    ]);
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM crm_bump_daily(OLD.date, OLD.type, OLD.user_id, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM crm_bump_daily(NEW.date, NEW.type, NEW.user_id, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER interactions_daily
    AFTER INSERT OR DELETE ON interactions
    FOR EACH ROW EXECUTE FUNCTION crm_interactions_daily_trg();

-- Only updates that move an interaction between roll-up rows touch the counters.
CREATE OR REPLACE TRIGGER interactions_daily_update
    AFTER UPDATE OF date, type, user_id ON interactions
    FOR EACH ROW WHEN (OLD.date IS DISTINCT FROM NEW.date OR OLD.type IS DISTINCT FROM NEW.type
                       OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION crm_interactions_daily_trg();

-- byUser over the whole UTC days [p_first, p_end) (NULL: unbounded): the calendar months
-- wholly inside from interaction_month_user_counts, the days before the first and after the
-- last of them from interaction_daily_counts. A range of years then reads ~50 users a month
-- and at most two months of days, instead of every (day, type, user) row it covers (~110,000
-- for a year of the bench's data). With no whole month inside, every day comes from the days.
-- Dates are truncated as timestamps without time zone: the session's TimeZone must not move them.
CREATE OR REPLACE FUNCTION crm_users_between(p_first date, p_end date) RETURNS TABLE (user_id uuid, n bigint)
LANGUAGE sql STABLE AS $$
    WITH span AS (
        SELECT coalesce(p_first, '-infinity'::date) AS first_day,
               coalesce(p_end, 'infinity'::date) AS end_day,
               CASE WHEN p_first IS NULL THEN '-infinity'::date
                    ELSE (date_trunc('month', (p_first - 1)::timestamp) + interval '1 month')::date END AS m0,
               CASE WHEN p_end IS NULL THEN 'infinity'::date
                    ELSE date_trunc('month', p_end::timestamp)::date END AS m1
    ), bounds AS (
        SELECT first_day, end_day,
               CASE WHEN m0 < m1 THEN m0 ELSE end_day END AS m0,
               CASE WHEN m0 < m1 THEN m1 ELSE end_day END AS m1
        FROM span
    )
    SELECT pieces.user_id, sum(pieces.n)::bigint
    FROM (
        SELECT m.user_id, m.n FROM interaction_month_user_counts m, bounds
        WHERE m.month >= bounds.m0 AND m.month < bounds.m1
        UNION ALL
        SELECT d.user_id, d.n FROM interaction_daily_counts d, bounds
        WHERE d.day >= bounds.first_day AND d.day < bounds.m0
        UNION ALL
        SELECT d.user_id, d.n FROM interaction_daily_counts d, bounds
        WHERE d.day >= bounds.m1 AND d.day < bounds.end_day
    ) AS pieces
    GROUP BY pieces.user_id
    HAVING sum(pieces.n) <> 0
$$;
