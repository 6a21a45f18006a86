-- Roles and database for tenant-enclave: the single source for both
--   * compose.yaml (mounted into the postgres image's /docker-entrypoint-initdb.d), and
--   * .ci/run (applied with psql to its throwaway PostgreSQL).
-- Run it once, as a superuser, with psql (it uses \connect).
--
-- enclave_owner  owns the database and the public schema; the app's migrations run as it
--                (DATABASE_ADMIN_URL). It creates the tables, enables + forces RLS and GRANTs
--                to enclave_app. Not a superuser, cannot create roles or databases.
-- enclave_app    the app's login role (DATABASE_URL) and the role tenant transactions
--                SET ROLE to (DATABASE_APP_ROLE). Not a superuser, no BYPASSRLS, owns nothing.
--
-- The passwords are development values, shared by compose.yaml and CI. Change them (here and
-- in the two URLs) for anything that is not a laptop or a CI run.

\set ON_ERROR_STOP on

CREATE ROLE enclave_owner WITH LOGIN PASSWORD 'enclave_owner_dev'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;

CREATE ROLE enclave_app WITH LOGIN PASSWORD 'enclave_app_dev'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;

CREATE DATABASE enclave WITH OWNER enclave_owner ENCODING 'UTF8' TEMPLATE template0;

-- Only the two roles may connect (the owner always can).
REVOKE ALL ON DATABASE enclave FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE enclave TO enclave_app;

\connect enclave

-- PostgreSQL 15 already gives `public` to pg_database_owner and revokes CREATE from PUBLIC;
-- say it explicitly so the result is the same on any version.
ALTER SCHEMA public OWNER TO enclave_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO enclave_app;
