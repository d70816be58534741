-- Undo 0001: drop in reverse dependency order (partitions go with their parent).
DROP TABLE skill_mastery;
DROP TABLE attempts;
DROP TABLE learning_sessions;
DROP TABLE item_skills;
DROP TABLE items;
DROP TABLE skills;
DROP TABLE users;
DROP TYPE session_status;
DROP TYPE item_status;
DROP TYPE item_type;
DROP TYPE user_role;
