-- 0002 indexes for the platform's query paths. The tables are new and empty when this runs,
-- so plain CREATE INDEX is right here; on a populated table use CONCURRENTLY (and, for
-- attempts, scripts.partitions' per-partition helper).

-- One account per address whatever its case.
CREATE UNIQUE INDEX uq_users_email_lower ON users (lower(email));

CREATE INDEX ix_skills_parent_id ON skills (parent_id);

-- Adaptive selection: active items near a learner's ability.
CREATE INDEX ix_items_active_difficulty ON items (difficulty) WHERE status = 'active'::item_status;
CREATE INDEX ix_items_created_by ON items (created_by);

CREATE INDEX ix_item_skills_skill_id ON item_skills (skill_id);

CREATE INDEX ix_learning_sessions_user_id_started_at ON learning_sessions (user_id, started_at DESC);

-- On the partitioned parent: each partition gets its own copy, present and future.
CREATE INDEX ix_attempts_user_id_attempted_at ON attempts (user_id, attempted_at DESC);
CREATE INDEX ix_attempts_item_id_attempted_at ON attempts (item_id, attempted_at);
CREATE INDEX ix_attempts_session_id ON attempts (session_id);
CREATE INDEX brin_attempts_attempted_at ON attempts USING brin (attempted_at);

CREATE INDEX ix_skill_mastery_skill_id ON skill_mastery (skill_id);
