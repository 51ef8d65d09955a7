-- One webhook delivery per enabled subscription whose patterns match an event's type, written
-- by the statement that writes the events, so in the change's own transaction: a committed
-- change has its deliveries, a rolled-back one has none (whatever RabbitMQ does meanwhile).
-- Once per statement, not per row: a customer's delete writes all its children's events in
-- one statement, and they meet the subscriptions in one join.
--
-- A pattern is an exact type (`crm.customer.updated`), an entity's types (`crm.customer.*`) or
-- every type (`*`): an event matches when its subscription's array overlaps the three patterns
-- that would name it, one array operator, with no per-row pattern parsing.
--
-- Only the head of a (subscription, customer) queue is scheduled (`next_attempt_at` set); the
-- deliveries behind it wait with none, so the dispatcher never walks them, however many a
-- failing receiver piles up. The dispatcher schedules the next one when the head is done. That
-- hand-over cannot miss a delivery being written: the writer holds the customer's
-- `event_sequences` row lock until it commits (crm.events.outbox), the dispatcher takes it
-- (FOR SHARE) before it looks for the next one, and each statement here reads a fresh snapshot.
CREATE OR REPLACE FUNCTION crm_webhook_deliveries_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Most databases have no subscription: one probe of an empty table, and nothing else.
    IF NOT EXISTS (SELECT FROM webhook_subscriptions WHERE enabled) THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_deliveries (subscription_id, event_id, type, customer_id, sequence, next_attempt_at)
    SELECT m.subscription_id, m.event_id, m.type, m.customer_id, m.sequence,
           CASE WHEN m.first AND NOT EXISTS (
                    SELECT FROM webhook_deliveries p
                    WHERE p.subscription_id = m.subscription_id AND p.customer_id = m.customer_id
                      AND p.status = 'pending')
                THEN now() END
    FROM (
        SELECT s.id AS subscription_id, e.id AS event_id, e.type, e.customer_id, e.sequence,
               row_number() OVER (PARTITION BY s.id, e.customer_id ORDER BY e.sequence) = 1 AS first
        FROM new_events e
        JOIN webhook_subscriptions s
          ON s.enabled
         AND s.events && ARRAY[e.type, 'crm.' || split_part(e.type, '.', 2) || '.*', '*']::text[]
    ) m;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER crm_webhook_deliveries AFTER INSERT ON events
REFERENCING NEW TABLE AS new_events
FOR EACH STATEMENT EXECUTE FUNCTION crm_webhook_deliveries_trg();
