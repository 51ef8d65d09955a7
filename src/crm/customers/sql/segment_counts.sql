-- customer_segment_counts (crm.customers.aggregates): customers by (status, type), kept exact
-- by row triggers in the writing transaction, so `GET /api/customers/segments` reads a few
-- rows instead of counting every customer, and a reader sees counts consistent with the rows
-- it can see, under any concurrency.
--
-- Each (status, type) is spread over 16 slots (crm.customers.aggregates.SLOTS) and a write
-- bumps a random one, so concurrent inserts rarely wait on the same counter row; readers sum
-- the slots. A NULL type is counted under 'unspecified' (primary key columns cannot be NULL).

CREATE OR REPLACE FUNCTION crm_bump_segment(p_status text, p_type text, p_delta bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO customer_segment_counts AS c (status, type, slot, n)
    VALUES (p_status, coalesce(p_type, 'unspecified'), floor(random() * 16)::smallint, p_delta)
    ON CONFLICT (status, type, slot) DO UPDATE SET n = c.n + excluded.n
$$;

CREATE OR REPLACE FUNCTION crm_customers_segments_trg() RETURNS trigger
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

CREATE OR REPLACE TRIGGER customers_segments
    AFTER INSERT OR DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION crm_customers_segments_trg();

-- Only updates that move a customer between segments touch the counters.
CREATE OR REPLACE TRIGGER customers_segments_update
    AFTER UPDATE OF status, type ON customers
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.type IS DISTINCT FROM NEW.type)
    EXECUTE FUNCTION crm_customers_segments_trg();
