-- The words of customers' names, emails and company names, lowered (crm.customers.search's
-- typo tier looks up the words similar to a query here, then searches for them literally).
-- Kept by a row trigger in the writing transaction. Words are only ever added: deciding that
-- a changed or deleted customer's word is no one's any more would race with a concurrent
-- insert of it, and a word nobody has left only costs the typo tier a search that finds nothing.
-- A word is split at spaces and ASCII punctuation (the same under any LC_CTYPE); words of
-- digits only (phone-like email parts, numbers) are left out: no typo tier for those.
CREATE OR REPLACE FUNCTION crm_customer_words(first_name text, last_name text, email text, company_name text)
RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT DISTINCT word
    FROM regexp_split_to_table(lower(concat_ws(' ', first_name, last_name, email, company_name)),
                               '[[:space:][:punct:]]+') AS word
    WHERE word <> '' AND word !~ '^[0-9]+$'
$$;

-- Inserted in sorted order, so two writers adding the same new words cannot deadlock.
CREATE OR REPLACE FUNCTION crm_customer_words_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_words (word)
    SELECT word FROM crm_customer_words(NEW.first_name, NEW.last_name, NEW.email, NEW.company_name) AS word
    ORDER BY word
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- After a bulk load that bypassed the trigger (or to drop the words nobody has any more).
CREATE OR REPLACE FUNCTION crm_rebuild_customer_words() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE customers IN SHARE MODE;
    DELETE FROM customer_words;
    INSERT INTO customer_words (word)
        SELECT DISTINCT word
        FROM customers, crm_customer_words(first_name, last_name, email, company_name) AS word;
END
$$;

CREATE OR REPLACE TRIGGER customers_words
    AFTER INSERT ON customers
    FOR EACH ROW EXECUTE FUNCTION crm_customer_words_trg();

-- Only updates that change a word-bearing field look at the words.
CREATE OR REPLACE TRIGGER customers_words_update
    AFTER UPDATE OF first_name, last_name, email, company_name ON customers
    FOR EACH ROW WHEN (OLD.first_name IS DISTINCT FROM NEW.first_name
        OR OLD.last_name IS DISTINCT FROM NEW.last_name OR OLD.email IS DISTINCT FROM NEW.email
        OR OLD.company_name IS DISTINCT FROM NEW.company_name)
    EXECUTE FUNCTION crm_customer_words_trg();
