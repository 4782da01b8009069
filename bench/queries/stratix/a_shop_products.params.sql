-- (a) for Stratix (and, through a link, for PostGraphile): the harness's params/a_shop_products.sql
-- (one row per shop domain) restricted to the 200 seeded shops `shop-NNNN`. The harness's query
-- lists every shop, and bench/stratix-seed.sql adds 200 write-only shops (`writes-NNNN`, no
-- revisions; see bench/README.md, "Writes") that (a) must not read: with them, half of (a)'s
-- requests would read a shop without revisions. Same 200 rows, same order, so the same request
-- sequence as the harness's params on its own seed.
SELECT json_build_object('domain', domain) FROM shops WHERE domain LIKE 'shop-%' ORDER BY domain;
