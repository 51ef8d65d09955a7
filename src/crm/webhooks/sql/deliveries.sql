-- One webhook delivery per enabled subscription whose patterns match an event's type, written
-- by the statement that writes the events, so in the change's own transaction: a committed
-- change has its deliveries, a rolled-back one has none (whatever RabbitMQ does meanwhile).
-- Once per statement, not per row: a customer's delete writes all its children's events in
-- one statement, and they meet the subscriptions in one join.
--
-- A pattern is an exact type (`crm.customer.updated`), an entity's types (`crm.customer.*`) or
-- every type (`*`): an event matches when its subscription's array overlaps the three patterns
-- that would name it, one array operator, with no per-row pattern parsing.
CREATE OR REPLACE FUNCTION crm_webhook_deliveries_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Most databases have no subscription: one probe of an empty table, and nothing else.
    IF NOT EXISTS (SELECT FROM webhook_subscriptions WHERE enabled) THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_deliveries (subscription_id, event_id, type, customer_id, sequence)
    SELECT s.id, e.id, e.type, e.customer_id, e.sequence
    FROM new_events e
    JOIN webhook_subscriptions s
      ON s.enabled
     AND s.events && ARRAY[e.type, 'crm.' || split_part(e.type, '.', 2) || '.*', '*']::text[];
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER crm_webhook_deliveries AFTER INSERT ON events
REFERENCING NEW TABLE AS new_events
FOR EACH STATEMENT EXECUTE FUNCTION crm_webhook_deliveries_trg();
