-- (w1) raw SQL equivalent, pgbench script: one new product for a random write-only shop
-- (`writes-NNNN`, id md5('writes:' || n)::uuid, added by bench/stratix-seed.sql), a fresh
-- shopify_id/handle per transaction from gen_random_uuid(), the same kind of title,
-- description and data as w1_product_create.params.sql; returns what the GraphQL targets
-- return. As the superuser: no RLS; the triggers (updated_at, change feed) fire as for them.
\set n random(1, 200)
INSERT INTO products (id, shop_id, shopify_id, handle, title, description, data)
SELECT gen_random_uuid(), md5('writes:' || CAST(:n AS text))::uuid, 'w1-' || k.u, 'new-product-' || k.u,
       format('%s %s %s',
              (ARRAY['Classic', 'Organic', 'Vintage', 'Premium', 'Everyday', 'Limited'])[1 + :n % 6],
              (ARRAY['Cotton', 'Linen', 'Leather', 'Ceramic', 'Bamboo', 'Wool', 'Steel'])[1 + (:n / 6) % 7],
              (ARRAY['Tee', 'Mug', 'Bag', 'Scarf', 'Lamp', 'Bottle', 'Notebook', 'Cap'])[1 + (:n / 42) % 8]),
       format('A new product crafted for everyday use. %s', repeat(md5('w1:' || CAST(:n AS text)) || ' ', 4)),
       jsonb_build_object('vendor', format('Vendor %s', 1 + :n % 12),
                          'price', round((5 + (:n * 7919 % 9500) / 100.0)::numeric, 2),
                          'tags', jsonb_build_array('tag' || (:n % 10), 'tag' || (:n % 7), 'season' || (:n % 4)),
                          'variants', 1 + :n % 5,
                          'status', 'draft')
FROM (SELECT gen_random_uuid()::text AS u) k
RETURNING id, shopify_id, handle, title, updated_at;
