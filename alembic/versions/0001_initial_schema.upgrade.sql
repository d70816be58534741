-- 0001 initial schema: enum types, tables, yearly partitions of attempts and a DEFAULT partition.
-- Mirrors models/ exactly; constraint names follow models.base.NAMING_CONVENTION.

CREATE TYPE user_role AS ENUM ('learner', 'instructor', 'admin');
CREATE TYPE item_type AS ENUM ('multiple_choice', 'true_false', 'short_answer', 'numeric');
CREATE TYPE item_status AS ENUM ('draft', 'active', 'retired');
CREATE TYPE session_status AS ENUM ('active', 'completed', 'abandoned');

CREATE TABLE users (
    id           uuid             NOT NULL DEFAULT gen_random_uuid(),
    email        varchar(254)     NOT NULL,
    display_name varchar(200),
    role         user_role        NOT NULL DEFAULT 'learner',
    country_code char(2),
    ability      double precision NOT NULL DEFAULT 0,
    created_at   timestamptz      NOT NULL DEFAULT now(),
    updated_at   timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT pk_users PRIMARY KEY (id),
    CONSTRAINT ck_users_email_format
        CHECK (email ~* '^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$'),
    CONSTRAINT ck_users_country_code_iso CHECK (country_code ~ '^[A-Z]{2}$'),
    CONSTRAINT ck_users_ability_range CHECK (ability BETWEEN -6 AND 6)
);

CREATE TABLE skills (
    id         uuid         NOT NULL DEFAULT gen_random_uuid(),
    code       varchar(64)  NOT NULL,
    name       varchar(200) NOT NULL,
    parent_id  uuid,
    created_at timestamptz  NOT NULL DEFAULT now(),
    updated_at timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT pk_skills PRIMARY KEY (id),
    CONSTRAINT uq_skills_code UNIQUE (code),
    CONSTRAINT ck_skills_not_own_parent CHECK (parent_id <> id),
    CONSTRAINT fk_skills_parent_id_skills
        FOREIGN KEY (parent_id) REFERENCES skills (id) ON DELETE SET NULL
);

CREATE TABLE items (
    id             uuid             NOT NULL DEFAULT gen_random_uuid(),
    item_type      item_type        NOT NULL,
    status         item_status      NOT NULL DEFAULT 'draft',
    stem           text             NOT NULL,
    difficulty     double precision NOT NULL DEFAULT 0,
    discrimination double precision NOT NULL DEFAULT 1,
    guessing       double precision NOT NULL DEFAULT 0,
    created_by     uuid,
    created_at     timestamptz      NOT NULL DEFAULT now(),
    updated_at     timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT pk_items PRIMARY KEY (id),
    CONSTRAINT ck_items_difficulty_range CHECK (difficulty BETWEEN -5 AND 5),
    CONSTRAINT ck_items_discrimination_range CHECK (discrimination > 0 AND discrimination <= 4),
    CONSTRAINT ck_items_guessing_range CHECK (guessing >= 0 AND guessing <= 0.5),
    CONSTRAINT fk_items_created_by_users
        FOREIGN KEY (created_by) REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE item_skills (
    item_id  uuid             NOT NULL,
    skill_id uuid             NOT NULL,
    weight   double precision NOT NULL DEFAULT 1,
    CONSTRAINT pk_item_skills PRIMARY KEY (item_id, skill_id),
    CONSTRAINT ck_item_skills_weight_range CHECK (weight > 0 AND weight <= 1),
    CONSTRAINT fk_item_skills_item_id_items
        FOREIGN KEY (item_id) REFERENCES items (id) ON DELETE CASCADE,
    CONSTRAINT fk_item_skills_skill_id_skills
        FOREIGN KEY (skill_id) REFERENCES skills (id) ON DELETE RESTRICT
);

CREATE TABLE learning_sessions (
    id         uuid           NOT NULL DEFAULT gen_random_uuid(),
    user_id    uuid           NOT NULL,
    status     session_status NOT NULL DEFAULT 'active',
    started_at timestamptz    NOT NULL DEFAULT now(),
    ended_at   timestamptz,
    updated_at timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT pk_learning_sessions PRIMARY KEY (id),
    CONSTRAINT ck_learning_sessions_ends_after_start
        CHECK (ended_at IS NULL OR ended_at >= started_at),
    CONSTRAINT fk_learning_sessions_user_id_users
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

-- Partitioned by RANGE on the attempt time; the primary key must include the partition key.
CREATE TABLE attempts (
    id               uuid             NOT NULL DEFAULT gen_random_uuid(),
    attempted_at     timestamptz      NOT NULL DEFAULT now(),
    user_id          uuid             NOT NULL,
    item_id          uuid             NOT NULL,
    session_id       uuid,
    is_correct       boolean          NOT NULL,
    score            double precision NOT NULL,
    response_time_ms integer          NOT NULL,
    answer           jsonb,
    CONSTRAINT pk_attempts PRIMARY KEY (id, attempted_at),
    CONSTRAINT ck_attempts_score_range CHECK (score >= 0 AND score <= 1),
    CONSTRAINT ck_attempts_response_time_non_negative CHECK (response_time_ms >= 0),
    CONSTRAINT fk_attempts_user_id_users
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_attempts_item_id_items
        FOREIGN KEY (item_id) REFERENCES items (id) ON DELETE RESTRICT,
    CONSTRAINT fk_attempts_session_id_learning_sessions
        FOREIGN KEY (session_id) REFERENCES learning_sessions (id) ON DELETE NO ACTION
) PARTITION BY RANGE (attempted_at);

-- Yearly partitions named as the guide names them; `alp-db partitions ensure` adds later ones.
CREATE TABLE attempts_2024 PARTITION OF attempts
    FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2025-01-01 00:00:00+00');
CREATE TABLE attempts_2025 PARTITION OF attempts
    FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2026-01-01 00:00:00+00');
CREATE TABLE attempts_2026 PARTITION OF attempts
    FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2027-01-01 00:00:00+00');
CREATE TABLE attempts_2027 PARTITION OF attempts
    FOR VALUES FROM ('2027-01-01 00:00:00+00') TO ('2028-01-01 00:00:00+00');
-- Rows outside every range land here instead of failing the insert.
CREATE TABLE attempts_default PARTITION OF attempts DEFAULT;

CREATE TABLE skill_mastery (
    user_id        uuid             NOT NULL,
    skill_id       uuid             NOT NULL,
    mastery        double precision NOT NULL DEFAULT 0,
    attempts_count integer          NOT NULL DEFAULT 0,
    correct_count  integer          NOT NULL DEFAULT 0,
    updated_at     timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT pk_skill_mastery PRIMARY KEY (user_id, skill_id),
    CONSTRAINT ck_skill_mastery_mastery_range CHECK (mastery >= 0 AND mastery <= 1),
    CONSTRAINT ck_skill_mastery_counts_consistent
        CHECK (correct_count >= 0 AND correct_count <= attempts_count),
    CONSTRAINT fk_skill_mastery_user_id_users
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_skill_mastery_skill_id_skills
        FOREIGN KEY (skill_id) REFERENCES skills (id) ON DELETE CASCADE
);
