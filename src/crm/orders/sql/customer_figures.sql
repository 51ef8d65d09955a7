-- customer_order_figures (crm.orders.projection) holds a row for every customer, so the
-- customer list can sort and filter by the figures with one index walk (a customer without
-- orders has total_orders 0, total_spent 0 and no dates; orders_synced_at NULL until the
-- projection first brings a change for it). A new customer gets its row in the writing
-- transaction; rows the projection made earlier for that id (orders naming a customer the CRM
-- did not have yet) are kept as they are.

CREATE OR REPLACE FUNCTION crm_customer_figures_row_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_order_figures (customer_id) VALUES (NEW.id) ON CONFLICT (customer_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER customers_order_figures_row
    AFTER INSERT ON customers
    FOR EACH ROW EXECUTE FUNCTION crm_customer_figures_row_trg();
