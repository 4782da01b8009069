-- (c) for Stratix: one JSON object of GraphQL variables per offset 0..180, the same pages as
-- peer/queries/params/c_shops_product_counts.sql. Stratix pages by keyset cursor: the page at
-- offset o starts after the shop at position o-1 (ordered by domain, then id), so `after` is
-- that shop's cursor (null for o = 0). A cursor (api/src/graphql/query.rs, encode_cursor) is
-- base64url without padding of the compact JSON array ["domain+l,id+l", <domain>, <uuid>]:
-- the ordering's signature (column, '+' ascending, 'l' nulls last; id is appended as the
-- tie-breaker), then the row's sort key. PostgreSQL's base64 wraps lines every 76 chars and
-- pads with '=': strip both, and map '+/' to base64url's '-_'.
WITH ranked AS (
    SELECT row_number() OVER (ORDER BY domain, id) AS pos, domain, id FROM shops
)
SELECT json_build_object('after',
         CASE WHEN o = 0 THEN NULL ELSE (
           SELECT translate(rtrim(replace(encode(convert_to(
                    json_build_array('domain+l,id+l', r.domain, r.id)::text, 'UTF8'),
                    'base64'), E'\n', ''), '='), '+/', '-_')
           FROM ranked r WHERE r.pos = o
         ) END)
FROM generate_series(0, 180) AS o
ORDER BY o;
