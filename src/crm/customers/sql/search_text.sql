-- The text a customer is searched by, built in one IMMUTABLE function so that the GIN trigram
-- index ix_customers_search_trgm (customers/models.py) can be built over it and `LIKE '%q%'`
-- and typo-tolerant word similarity find candidates without scanning the table. The service
-- still applies the exact per-field conditions on the candidates (crm.customers.search), so
-- the index changes speed, not results.
--
-- Names in both orders, so "first last" and "last first" are substrings; chr(31) (unit
-- separator) between fields, so a query never spans two fields by accident.
--
-- Changing this body changes what the index holds: the migration that releases a change
-- must also rebuild the index (REINDEX INDEX ix_customers_search_trgm).

CREATE OR REPLACE FUNCTION crm_customer_search_text(
    first_name text, last_name text, email text, company_name text, tax_id text, phone text
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(first_name || ' ' || last_name || ' ' || first_name || chr(31) || coalesce(email, '')
                 || chr(31) || coalesce(company_name, '') || chr(31) || coalesce(tax_id, ''))
           || chr(31) || regexp_replace(coalesce(phone, ''), '\D', '', 'g')
$$;
