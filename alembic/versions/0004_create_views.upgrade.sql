-- 0004 monitoring and analytics views. The monitoring views read only the statistics
-- views every server has, so they work without pg_stat_statements.

-- Biggest tables first; a partitioned table's partitions are rolled up into it.
CREATE VIEW table_sizes AS
WITH rels AS (
    SELECT c.oid, coalesce(pg_partition_root(c.oid), c.oid) AS root_oid, c.reltuples
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'm')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_toast'
)
SELECT rn.nspname AS schema_name,
       r.relname AS table_name,
       count(*) FILTER (WHERE rels.oid <> rels.root_oid) AS partitions,
       sum(greatest(rels.reltuples, 0))::bigint AS row_estimate,
       sum(pg_total_relation_size(rels.oid))::bigint AS total_bytes,
       sum(pg_relation_size(rels.oid))::bigint AS table_bytes,
       sum(pg_indexes_size(rels.oid))::bigint AS index_bytes,
       pg_size_pretty(sum(pg_total_relation_size(rels.oid))::bigint) AS total_size
FROM rels
JOIN pg_class r ON r.oid = rels.root_oid
JOIN pg_namespace rn ON rn.oid = r.relnamespace
GROUP BY rn.nspname, r.relname
ORDER BY total_bytes DESC, table_name;

-- Statements of this database running (or open in a transaction) for more than a second,
-- longest first: what is slow right now, from pg_stat_activity alone.
CREATE VIEW slow_queries AS
SELECT a.pid,
       a.usename AS username,
       a.application_name,
       a.state,
       a.wait_event_type,
       a.wait_event,
       a.query_start,
       now() - a.query_start AS duration,
       (extract(epoch FROM now() - a.query_start) * 1000)::bigint AS duration_ms,
       a.query
FROM pg_stat_activity a
WHERE a.datname = current_database()
  AND a.backend_type = 'client backend'
  AND a.pid <> pg_backend_pid()
  AND a.state <> 'idle'
  AND a.query_start < now() - interval '1 second'
ORDER BY duration DESC;

-- Least-used indexes first: candidates for removal, with what they cost.
CREATE VIEW index_usage AS
SELECT s.schemaname AS schema_name,
       s.relname AS table_name,
       s.indexrelname AS index_name,
       s.idx_scan,
       s.idx_tup_read,
       s.idx_tup_fetch,
       pg_relation_size(s.indexrelid) AS index_bytes,
       pg_size_pretty(pg_relation_size(s.indexrelid)) AS index_size,
       i.indisunique AS is_unique,
       i.indisprimary AS is_primary
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
ORDER BY s.idx_scan, index_bytes DESC, index_name;

-- Client connections per database and state, against the server's limit.
CREATE VIEW connection_stats AS
SELECT a.datname AS database_name,
       coalesce(a.state, 'unknown') AS state,
       count(*) AS connections,
       count(*) FILTER (WHERE a.wait_event_type = 'Lock') AS waiting_on_locks,
       max(now() - a.state_change) AS longest_in_state,
       current_setting('max_connections')::integer AS max_connections
FROM pg_stat_activity a
WHERE a.backend_type = 'client backend'
GROUP BY a.datname, a.state
ORDER BY connections DESC, database_name, state;

-- One row of vital signs for the current database.
CREATE VIEW system_health AS
WITH tuples AS (
    SELECT coalesce(sum(n_live_tup), 0)::bigint AS live, coalesce(sum(n_dead_tup), 0)::bigint AS dead
    FROM pg_stat_user_tables
), conns AS (
    SELECT count(*) AS total, count(*) FILTER (WHERE state = 'active') AS active
    FROM pg_stat_activity WHERE backend_type = 'client backend'
)
SELECT d.datname AS database_name,
       pg_database_size(d.datid) AS database_bytes,
       pg_size_pretty(pg_database_size(d.datid)) AS database_size,
       conns.total AS connections,
       conns.active AS active_connections,
       current_setting('max_connections')::integer AS max_connections,
       round(100.0 * d.blks_hit / nullif(d.blks_hit + d.blks_read, 0), 2) AS cache_hit_ratio,
       tuples.live AS live_tuples,
       tuples.dead AS dead_tuples,
       round(100.0 * tuples.dead / nullif(tuples.live + tuples.dead, 0), 2) AS dead_tuple_ratio,
       age(db.datfrozenxid) AS xid_age,
       round(100.0 * age(db.datfrozenxid) / 2147483647, 2) AS xid_wraparound_pct,
       d.deadlocks,
       d.temp_bytes,
       d.xact_commit,
       d.xact_rollback,
       now() - pg_postmaster_start_time() AS uptime
FROM pg_stat_database d
JOIN pg_database db ON db.oid = d.datid
CROSS JOIN tuples
CROSS JOIN conns
WHERE d.datname = current_database();

-- Classical item statistics: how often each item is answered and how hard it proves.
CREATE VIEW item_statistics AS
SELECT i.id AS item_id,
       i.item_type,
       i.status,
       i.difficulty,
       i.discrimination,
       i.guessing,
       count(a.id) AS attempts,
       count(a.id) FILTER (WHERE a.is_correct) AS correct,
       round(avg(a.is_correct::integer), 4) AS p_correct,
       avg(a.score) AS avg_score,
       round(avg(a.response_time_ms)) AS avg_response_time_ms,
       count(DISTINCT a.user_id) AS learners,
       max(a.attempted_at) AS last_attempt_at
FROM items i
LEFT JOIN attempts a ON a.item_id = i.id
GROUP BY i.id;

-- Each learner's activity and mastery (BKT's customary 0.95 threshold).
CREATE VIEW learner_progress AS
WITH activity AS (
    SELECT user_id,
           count(*) AS attempts,
           count(*) FILTER (WHERE is_correct) AS correct,
           count(DISTINCT session_id) AS sessions,
           max(attempted_at) AS last_attempt_at
    FROM attempts
    GROUP BY user_id
), mastery AS (
    SELECT user_id,
           count(*) AS skills_tracked,
           count(*) FILTER (WHERE mastery >= 0.95) AS skills_mastered,
           avg(mastery) AS avg_mastery
    FROM skill_mastery
    GROUP BY user_id
)
SELECT u.id AS user_id,
       u.email,
       u.display_name,
       u.country_code,
       u.ability,
       coalesce(activity.attempts, 0) AS attempts,
       coalesce(activity.correct, 0) AS correct,
       round(activity.correct::numeric / nullif(activity.attempts, 0), 4) AS accuracy,
       coalesce(activity.sessions, 0) AS sessions,
       activity.last_attempt_at,
       coalesce(mastery.skills_tracked, 0) AS skills_tracked,
       coalesce(mastery.skills_mastered, 0) AS skills_mastered,
       mastery.avg_mastery
FROM users u
LEFT JOIN activity ON activity.user_id = u.id
LEFT JOIN mastery ON mastery.user_id = u.id
WHERE u.role = 'learner';

-- Platform activity per UTC day.
CREATE VIEW daily_activity AS
SELECT (a.attempted_at AT TIME ZONE 'UTC')::date AS day,
       count(DISTINCT a.user_id) AS active_learners,
       count(*) AS attempts,
       count(*) FILTER (WHERE a.is_correct) AS correct,
       round(avg(a.is_correct::integer), 4) AS accuracy,
       round(avg(a.response_time_ms)) AS avg_response_time_ms
FROM attempts a
GROUP BY 1;
