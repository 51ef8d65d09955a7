-- The text a contact is searched by, as for customers (customers/sql/search_text.sql): one
-- IMMUTABLE function, so the GIN trigram index ix_contacts_search_trgm (contacts/models.py)
-- finds the candidates of `LIKE '%q%'` and of word similarity; the service decides with the
-- exact per-field conditions. The job_title argument is the `position` column.
--
-- Names in both orders, so "first last" and "last first" are substrings; chr(31) (unit
-- separator) between fields, so a query never spans two fields by accident.
--
-- Changing this body changes what the index holds: the migration that releases a change
-- must also rebuild the index (REINDEX INDEX ix_contacts_search_trgm).

CREATE OR REPLACE FUNCTION crm_contact_search_text(
    first_name text, last_name text, email text, job_title text, phone text
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(first_name || ' ' || last_name || ' ' || first_name || chr(31) || coalesce(email, '')
                 || chr(31) || coalesce(job_title, ''))
           || chr(31) || regexp_replace(coalesce(phone, ''), '\D', '', 'g')
$$;
