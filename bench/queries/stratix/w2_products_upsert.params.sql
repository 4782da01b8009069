-- (w2) for Stratix: one JSON object of GraphQL variables per write-only shop (`writes-NNNN`,
-- 200 rows; bench/stratix-seed.sql gives each 250 products, and no read workload sees them):
-- `inputs` = the shop's 250 seeded products by shopify_id, each with its natural key (shopId,
-- shopifyId), its handle and title as stored, and `data` as stored with a new `inventory`
-- (from the product's number 1..250: the same on every run, and the values
-- ../sql/w2_products_upsert.sql writes). Every row exists: the upsert updates all 250.
-- Upserting the same values again is still a write of every row (ON CONFLICT DO UPDATE has
-- no "unchanged" shortcut, and the updated_at trigger moves updated_at), so a row the load
-- generator picks again costs the same. Products w1 added to these shops are left out.
SELECT json_build_object('inputs', json_agg(json_build_object(
         'shopId', p.shop_id,
         'shopifyId', p.shopify_id,
         'handle', p.handle,
         'title', p.title,
         'data', p.data || jsonb_build_object('inventory', (p.shopify_id::bigint % 1000 * 7919) % 500))
       ORDER BY p.shopify_id))
FROM shops s
JOIN products p ON p.shop_id = s.id
WHERE s.domain LIKE 'writes-%'
  AND p.shopify_id ~ '^[0-9]+$'
GROUP BY s.domain
ORDER BY s.domain;
