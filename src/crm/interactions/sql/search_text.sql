-- The text an interaction is searched by, as for customers (customers/sql/search_text.sql):
-- one IMMUTABLE function, so the GIN trigram index ix_interactions_search_trgm
-- (interactions/models.py) finds the candidates of `LIKE '%q%'`; the service decides with the
-- exact per-field conditions. chr(31) between the fields: a query never spans both.
--
-- Changing this body changes what the index holds: the migration that releases a change
-- must also rebuild the index (REINDEX INDEX ix_interactions_search_trgm).

CREATE OR REPLACE FUNCTION crm_interaction_search_text(subject text, description text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(subject || chr(31) || coalesce(description, ''))
$$;
