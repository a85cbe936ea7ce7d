-- 008_leases: leases with epochs (fencing tokens) for many daemons on one
-- universe, and for backfill/repair. DESIGN §7.
--
-- One row per (kind, underlying): kind 'live' is the daemon's right to sweep
-- an underlying, kind 'history' the right to backfill/repair it. The epoch
-- grows on every claim of a lease that was not live and ours (a change of
-- holder, or our own lease claimed again after it expired), so a holder that
-- was paused or partitioned past its ttl can never mark a window: the
-- statement that marks a window checks (holder, epoch) and locks the lease
-- row FOR SHARE, so a claim waits for a mark in flight and a mark after a
-- claim finds the new epoch. Rows are never deleted (a release expires
-- them), so an epoch never goes back. Times are the database's
-- (clock_timestamp()), never a daemon's.

ALTER TABLE ingest_leases ADD COLUMN kind text NOT NULL DEFAULT 'history'
    CHECK (kind IN ('live', 'history'));
ALTER TABLE ingest_leases ADD COLUMN epoch bigint NOT NULL DEFAULT 1;
ALTER TABLE ingest_leases ADD COLUMN since timestamptz NOT NULL DEFAULT now();
ALTER TABLE ingest_leases DROP CONSTRAINT ingest_leases_pkey;
ALTER TABLE ingest_leases ADD CONSTRAINT ingest_leases_pkey PRIMARY KEY (kind, underlying);
ALTER TABLE ingest_leases ALTER COLUMN kind DROP DEFAULT;
CREATE INDEX ingest_leases_holder_idx ON ingest_leases (holder, kind);

-- Every change of holder (and every new epoch), for audits and the fleet
-- test: a mark (holder, epoch) was valid from `since` of its epoch until
-- `since` of the next one.
CREATE TABLE ingest_lease_log (
    kind       text NOT NULL,
    underlying text NOT NULL,
    epoch      bigint NOT NULL,
    holder     text NOT NULL,
    since      timestamptz NOT NULL,
    PRIMARY KEY (kind, underlying, epoch)
);

-- Live daemons, counted from their heartbeats: each targets
-- ceil(universe / live daemons) leases.
CREATE TABLE ingest_daemons (
    holder        text PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at  timestamptz NOT NULL,
    universe_size integer NOT NULL DEFAULT 0
);

-- Who marked a window: the holder and epoch of the lease it was marked
-- under (NULL for a mark not fenced by a lease: tests, benchmarks).
ALTER TABLE ingest_coverage ADD COLUMN holder text;
ALTER TABLE ingest_coverage ADD COLUMN epoch bigint;

-- The history lease (backfill, repair, the daemon's healing): the
-- functions of 003 on kind 'history', with epochs.
CREATE OR REPLACE FUNCTION optsnap_lease_acquire(underlying text, holder text, ttl interval)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
AS $fn$
#variable_conflict use_column
DECLARE
    got bigint;
BEGIN
    IF optsnap_lease_acquire.underlying IS NULL OR optsnap_lease_acquire.holder IS NULL
       OR optsnap_lease_acquire.ttl IS NULL OR optsnap_lease_acquire.ttl <= interval '0' THEN
        RAISE EXCEPTION 'optsnap_lease_acquire: underlying, holder and a positive ttl are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO ingest_leases AS l (kind, underlying, holder, expires_at, epoch, since)
    VALUES ('history', optsnap_lease_acquire.underlying, optsnap_lease_acquire.holder,
            clock_timestamp() + optsnap_lease_acquire.ttl, 1, clock_timestamp())
    ON CONFLICT (kind, underlying) DO UPDATE
        SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at,
            epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at >= clock_timestamp()
                         THEN l.epoch ELSE l.epoch + 1 END,
            since = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at >= clock_timestamp()
                         THEN l.since ELSE clock_timestamp() END
        WHERE l.expires_at < clock_timestamp() OR l.holder = EXCLUDED.holder
    RETURNING l.epoch INTO got;
    IF got IS NULL THEN
        RETURN false;
    END IF;
    INSERT INTO ingest_lease_log (kind, underlying, epoch, holder, since)
    VALUES ('history', optsnap_lease_acquire.underlying, got, optsnap_lease_acquire.holder, clock_timestamp())
    ON CONFLICT DO NOTHING;
    RETURN true;
END
$fn$;

CREATE OR REPLACE FUNCTION optsnap_lease_renew(underlying text, holder text, ttl interval)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
AS $fn$
#variable_conflict use_column
BEGIN
    IF optsnap_lease_renew.ttl IS NULL OR optsnap_lease_renew.ttl <= interval '0' THEN
        RAISE EXCEPTION 'optsnap_lease_renew: a positive ttl is required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE ingest_leases l
       SET expires_at = clock_timestamp() + optsnap_lease_renew.ttl
     WHERE l.kind = 'history'
       AND l.underlying = optsnap_lease_renew.underlying
       AND l.holder = optsnap_lease_renew.holder;
    RETURN FOUND;
END
$fn$;

-- Gives the lease up: nobody holds it (holder '') and it has expired; the
-- row stays, so the epoch never goes back.
CREATE OR REPLACE FUNCTION optsnap_lease_release(underlying text, holder text)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
AS $fn$
#variable_conflict use_column
BEGIN
    UPDATE ingest_leases l
       SET holder = '', expires_at = least(l.expires_at, clock_timestamp())
     WHERE l.kind = 'history'
       AND l.underlying = optsnap_lease_release.underlying
       AND l.holder = optsnap_lease_release.holder;
    RETURN FOUND;
END
$fn$;

-- One heartbeat of a live daemon, one statement (it works through a
-- transaction-mode pooler): record the heartbeat; expire the leases it
-- hands back (p_release); renew the leases it still holds; count the live
-- daemons (heartbeats younger than the ttl); and claim free or expired
-- leases of the universe up to its fair share, ceil(universe / live), each
-- daemon in its own hash order so that joiners do not all reach for the
-- same rows, skipping rows another claimer has locked. Returns the leases
-- it holds after the call, with their epochs and the last live window the
-- coverage ledger has for each (so a new holder never sweeps one again).
CREATE FUNCTION optsnap_live_heartbeat(p_holder text, p_universe text[], p_ttl interval,
                                       p_release text[] DEFAULT '{}')
RETURNS TABLE (underlying text, epoch bigint, since timestamptz, last_live timestamptz,
               live_daemons integer, target integer)
LANGUAGE plpgsql
VOLATILE
AS $fn$
#variable_conflict use_column
DECLARE
    t       timestamptz := clock_timestamp();
    live    integer;
    fair    integer;
    held    integer;
    want    integer;
    u       text;
BEGIN
    IF p_holder IS NULL OR p_ttl IS NULL OR p_ttl <= interval '0' THEN
        RAISE EXCEPTION 'optsnap_live_heartbeat: holder and a positive ttl are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO ingest_daemons AS d (holder, heartbeat_at, universe_size)
    VALUES (p_holder, t, coalesce(cardinality(p_universe), 0))
    ON CONFLICT (holder) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at, universe_size = EXCLUDED.universe_size;
    DELETE FROM ingest_daemons d WHERE d.heartbeat_at < t - 20 * p_ttl;

    UPDATE ingest_leases l SET holder = '', expires_at = t
     WHERE l.kind = 'live' AND l.holder = p_holder AND l.underlying = ANY(coalesce(p_release, '{}'));
    -- ours and still live: renewed; ours but expired: claimed again below, with a new epoch
    UPDATE ingest_leases l SET expires_at = t + p_ttl
     WHERE l.kind = 'live' AND l.holder = p_holder AND l.expires_at > t
       AND l.underlying = ANY(p_universe) AND l.underlying <> ALL(coalesce(p_release, '{}'));

    SELECT count(*) INTO live FROM ingest_daemons d WHERE d.heartbeat_at > t - p_ttl;
    fair := ceil(coalesce(cardinality(p_universe), 0)::numeric / greatest(live, 1));
    SELECT count(*) INTO held FROM ingest_leases l
     WHERE l.kind = 'live' AND l.holder = p_holder AND l.expires_at > t AND l.underlying = ANY(p_universe);
    want := fair - held;

    IF want > 0 THEN
        -- never seen: a new row, epoch 1 (of two claimers one wins; the other skips it)
        FOR u IN SELECT x FROM unnest(p_universe) AS x
                  WHERE NOT EXISTS (SELECT 1 FROM ingest_leases l WHERE l.kind = 'live' AND l.underlying = x)
                    AND x <> ALL(coalesce(p_release, '{}'))
                  ORDER BY hashtext(x || p_holder) LIMIT want LOOP
            INSERT INTO ingest_leases (kind, underlying, holder, expires_at, epoch, since)
            VALUES ('live', u, p_holder, t + p_ttl, 1, t) ON CONFLICT DO NOTHING;
            IF FOUND THEN
                INSERT INTO ingest_lease_log (kind, underlying, epoch, holder, since) VALUES ('live', u, 1, p_holder, t);
                want := want - 1;
            END IF;
        END LOOP;
    END IF;
    IF want > 0 THEN
        -- expired (a dead or paused holder, a release): a new epoch
        WITH free AS (
            SELECT l.underlying FROM ingest_leases l
             WHERE l.kind = 'live' AND l.expires_at <= t AND l.underlying = ANY(p_universe)
               AND l.underlying <> ALL(coalesce(p_release, '{}'))
             ORDER BY hashtext(l.underlying || p_holder)
             LIMIT want
             FOR UPDATE SKIP LOCKED),
        claimed AS (
            UPDATE ingest_leases l SET holder = p_holder, expires_at = t + p_ttl, epoch = l.epoch + 1, since = t
              FROM free WHERE l.kind = 'live' AND l.underlying = free.underlying AND l.expires_at <= t
            RETURNING l.underlying, l.epoch)
        INSERT INTO ingest_lease_log (kind, underlying, epoch, holder, since)
        SELECT 'live', c.underlying, c.epoch, p_holder, t FROM claimed c;
    END IF;

    RETURN QUERY
    SELECT l.underlying, l.epoch, l.since,
           (SELECT max(c.window_start) FROM ingest_coverage c WHERE c.underlying = l.underlying AND c.source = 'live'),
           live, fair
      FROM ingest_leases l
     WHERE l.kind = 'live' AND l.holder = p_holder AND l.expires_at > t AND l.underlying = ANY(p_universe);
END
$fn$;

-- A leaving daemon (SIGTERM, after its drain): every live lease it holds
-- expires now, so the others claim them at their next heartbeat; it no
-- longer counts as live.
CREATE FUNCTION optsnap_live_release_all(p_holder text)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
AS $fn$
DECLARE
    n integer;
BEGIN
    UPDATE ingest_leases l SET holder = '', expires_at = least(l.expires_at, clock_timestamp())
     WHERE l.kind = 'live' AND l.holder = p_holder;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM ingest_daemons d WHERE d.holder = p_holder;
    RETURN n;
END
$fn$;
