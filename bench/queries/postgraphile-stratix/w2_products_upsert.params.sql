-- (w2) for PostGraphile: the same 200 rows as ../stratix/w2_products_upsert.params.sql (a
-- write-only shop's 250 seeded products by shopify_id, the same values), as the variables of
-- w2_products_upsert.graphql: $i0 .. $i249, each `{rowId, productPatch: {handle, title, data}}`
-- for `updateProductByRowId`. PostGraphile has no upsert on (shop_id, shopify_id) (see that
-- file), so its client sends the row ids.
SELECT json_object_agg('i' || (n - 1), json_build_object(
         'rowId', id,
         'productPatch', json_build_object(
           'handle', handle,
           'title', title,
           'data', data || jsonb_build_object('inventory', (shopify_id::bigint % 1000 * 7919) % 500))))
FROM (SELECT s.domain, p.*, row_number() OVER (PARTITION BY s.domain ORDER BY p.shopify_id) AS n
      FROM shops s
      JOIN products p ON p.shop_id = s.id
      WHERE s.domain LIKE 'writes-%'
        AND p.shopify_id ~ '^[0-9]+$') x
GROUP BY domain
ORDER BY domain;
