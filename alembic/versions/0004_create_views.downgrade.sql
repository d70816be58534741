DROP VIEW daily_activity;
DROP VIEW learner_progress;
DROP VIEW item_statistics;
DROP VIEW system_health;
DROP VIEW connection_stats;
DROP VIEW index_usage;
DROP VIEW slow_queries;
DROP VIEW table_sizes;
