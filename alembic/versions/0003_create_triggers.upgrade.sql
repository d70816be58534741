-- 0003 integrity triggers. Row triggers on the partitioned attempts table are cloned onto
-- every partition, present and future (BEFORE ROW triggers on partitioned tables: PG 13+).

-- updated_at always tells when a row last changed, whoever changed it.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER trg_users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_skills_set_updated_at BEFORE UPDATE ON skills
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_items_set_updated_at BEFORE UPDATE ON items
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_learning_sessions_set_updated_at BEFORE UPDATE ON learning_sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_skill_mastery_set_updated_at BEFORE UPDATE ON skill_mastery
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- E-mail addresses are stored trimmed and lower-cased, so lookups need no lower().
-- BEFORE triggers run before CHECK constraints, so the check sees the normalised value.
CREATE FUNCTION normalize_user_email() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.email := lower(btrim(NEW.email));
    RETURN NEW;
END
$$;

CREATE TRIGGER trg_users_normalize_email BEFORE INSERT OR UPDATE OF email ON users
    FOR EACH ROW EXECUTE FUNCTION normalize_user_email();

-- Attempts are facts: never updated, never deleted one by one. The one exception is a
-- delete cascaded from erasing a learner (a foreign-key action runs one trigger level down).
-- Old data leaves by detaching whole partitions (alp-db partitions detach), not by DELETE.
CREATE FUNCTION attempts_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND pg_trigger_depth() > 1 THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'attempts are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'Record a new attempt instead; old attempts leave by detaching partitions.';
END
$$;

CREATE TRIGGER trg_attempts_append_only BEFORE UPDATE OR DELETE ON attempts
    FOR EACH ROW EXECUTE FUNCTION attempts_append_only();

-- Learners can only answer items that are live.
CREATE FUNCTION attempts_require_active_item() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    item_state item_status;
BEGIN
    SELECT status INTO item_state FROM items WHERE id = NEW.item_id;
    IF item_state IS DISTINCT FROM 'active' THEN
        RAISE EXCEPTION 'item % is not active (status: %)', NEW.item_id, coalesce(item_state::text, 'missing')
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER trg_attempts_require_active_item BEFORE INSERT ON attempts
    FOR EACH ROW EXECUTE FUNCTION attempts_require_active_item();

-- The skill hierarchy must stay a forest: no skill may become its own ancestor.
CREATE FUNCTION skills_prevent_cycle() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.parent_id IS NOT NULL AND EXISTS (
        WITH RECURSIVE ancestors(id) AS (
            SELECT NEW.parent_id
            UNION
            SELECT s.parent_id FROM skills s JOIN ancestors a ON s.id = a.id
            WHERE s.parent_id IS NOT NULL
        )
        SELECT 1 FROM ancestors WHERE id = NEW.id
    ) THEN
        RAISE EXCEPTION 'skill % cannot be a descendant of itself', NEW.code
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER trg_skills_prevent_cycle BEFORE INSERT OR UPDATE OF parent_id ON skills
    FOR EACH ROW EXECUTE FUNCTION skills_prevent_cycle();
