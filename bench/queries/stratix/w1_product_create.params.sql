-- (w1) one JSON object of GraphQL variables per row, for both dialects (postgraphile-stratix/
-- links to this file): a new product for one of the 200 write-only shops `writes-NNNN` that
-- bench/stratix-seed.sql adds for the write workloads. No read workload sees those shops
-- (they sort after every `shop-NNNN` domain, so workload c's pages 0..180 do not reach them),
-- so the rows w1 adds, which stay in the cached database, change no read's answer or cost.
--
-- shopifyId and handle must be new on every request ((shop_id, shopify_id) is unique): they
-- carry the token {{unique}}, which the load generator must replace per request with a value
-- never sent before (e.g. a per-run nonce + a request counter). The peer harness does not do
-- that yet: see bench/README.md, "Writes".
SELECT json_build_object(
         'shopId', s.id,
         'shopifyId', 'w1-{{unique}}',
         'handle', 'new-product-{{unique}}',
         'title', format('%s %s %s',
                         (ARRAY['Classic', 'Organic', 'Vintage', 'Premium', 'Everyday', 'Limited'])[1 + n % 6],
                         (ARRAY['Cotton', 'Linen', 'Leather', 'Ceramic', 'Bamboo', 'Wool', 'Steel'])[1 + (n / 6) % 7],
                         (ARRAY['Tee', 'Mug', 'Bag', 'Scarf', 'Lamp', 'Bottle', 'Notebook', 'Cap'])[1 + (n / 42) % 8]),
         'description', format('A new product crafted for everyday use. %s', repeat(md5('w1:' || n) || ' ', 4)),
         'data', jsonb_build_object(
                   'vendor', format('Vendor %s', 1 + n % 12),
                   'price', round((5 + (n * 7919 % 9500) / 100.0)::numeric, 2),
                   'tags', jsonb_build_array('tag' || (n % 10), 'tag' || (n % 7), 'season' || (n % 4)),
                   'variants', 1 + n % 5,
                   'status', 'draft'))
FROM (SELECT id, row_number() OVER (ORDER BY domain) AS n FROM shops WHERE domain LIKE 'writes-%') s
ORDER BY n;
