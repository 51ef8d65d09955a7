-- The words of interactions' subjects and descriptions, lowered (interaction_words,
-- crm.interactions.models.InteractionWord): the typo-tolerant search asks here first whether
-- any known word resembles the query's, and skips its trigram pass over millions of texts when
-- none does (a word nobody wrote costs a lookup in a small table, not seconds of rechecks).
-- Kept by a row trigger in the writing transaction. Words are only ever added: deciding that a
-- changed or deleted interaction's word is no one's any more would race with a concurrent
-- insert of it, and a stale word only lets the search look where it finds nothing.
-- Split as pg_trgm splits words (at anything not a letter or digit), from the lowered text the
-- trigram index is built over; words of digits only are left out, as in customer_words.
CREATE OR REPLACE FUNCTION crm_interaction_words(subject text, description text)
RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT DISTINCT word
    FROM regexp_split_to_table(crm_interaction_search_text(subject, description), '[^[:alnum:]]+') AS word
    WHERE word <> '' AND word !~ '^[0-9]+$'
$$;

-- Inserted in sorted order, so two writers adding the same new words cannot deadlock.
CREATE OR REPLACE FUNCTION crm_interaction_words_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO interaction_words (word)
    SELECT word FROM crm_interaction_words(NEW.subject, NEW.description) AS word
    ORDER BY word
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- After a bulk load that bypassed the trigger (or to drop the words nobody has any more). The
-- texts are deduplicated before they are split: staff reuse subjects and templates, and the
-- demo data's 5M interactions hold a few hundred distinct texts.
CREATE OR REPLACE FUNCTION crm_rebuild_interaction_words() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE interactions IN SHARE MODE;
    DELETE FROM interaction_words;
    INSERT INTO interaction_words (word)
        SELECT DISTINCT word
        FROM (SELECT DISTINCT subject, description FROM interactions) AS texts,
             crm_interaction_words(texts.subject, texts.description) AS word;
END
$$;

CREATE OR REPLACE TRIGGER interactions_words
    AFTER INSERT ON interactions
    FOR EACH ROW EXECUTE FUNCTION crm_interaction_words_trg();

-- Only updates that change the text look at the words.
CREATE OR REPLACE TRIGGER interactions_words_update
    AFTER UPDATE OF subject, description ON interactions
    FOR EACH ROW WHEN (OLD.subject IS DISTINCT FROM NEW.subject OR OLD.description IS DISTINCT FROM NEW.description)
    EXECUTE FUNCTION crm_interaction_words_trg();
