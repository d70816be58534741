-- 0005 attempts only on active items, checked once per statement over its transition table.

-- One query for the whole statement: the first inserted attempt whose item is not active.
CREATE FUNCTION attempts_require_active_items() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.item_id, i.status INTO bad
    FROM inserted_attempts n
    LEFT JOIN items i ON i.id = n.item_id
    WHERE i.status IS DISTINCT FROM 'active'
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'item % is not active (status: %)', bad.item_id, coalesce(bad.status::text, 'missing')
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER trg_attempts_require_active_items AFTER INSERT ON attempts
    REFERENCING NEW TABLE AS inserted_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION attempts_require_active_items();

-- A partition named directly by an INSERT or COPY fires its own statement triggers only, so it
-- gets the same check, and its clone of the per-row check is switched off (the clone stays, so
-- the downgrade only switches it back on). Run it on each partition created after this revision.
CREATE FUNCTION attempts_check_partition_by_statement(partition regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'CREATE TRIGGER trg_attempts_require_active_items AFTER INSERT ON %s '
        'REFERENCING NEW TABLE AS inserted_attempts '
        'FOR EACH STATEMENT EXECUTE FUNCTION attempts_require_active_items()',
        partition
    );
    EXECUTE format('ALTER TABLE %s DISABLE TRIGGER trg_attempts_require_active_item', partition);
END
$$;

DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'attempts'::regclass
    LOOP
        PERFORM attempts_check_partition_by_statement(part);
    END LOOP;
END
$$;
