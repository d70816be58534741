-- Back to 0003: every partition's row clone on again, no statement triggers.
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN
        SELECT t.tgrelid::regclass FROM pg_trigger t
        JOIN pg_inherits h ON h.inhrelid = t.tgrelid AND h.inhparent = 'attempts'::regclass
        WHERE t.tgname = 'trg_attempts_require_active_items'
    LOOP
        EXECUTE format('DROP TRIGGER trg_attempts_require_active_items ON %s', part);
        EXECUTE format('ALTER TABLE %s ENABLE TRIGGER trg_attempts_require_active_item', part);
    END LOOP;
END
$$;
DROP FUNCTION attempts_check_partition_by_statement(regclass);
DROP TRIGGER trg_attempts_require_active_items ON attempts;
DROP FUNCTION attempts_require_active_items();
