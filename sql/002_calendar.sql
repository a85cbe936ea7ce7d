-- 002_calendar: trading calendars. Gap detection expects windows only inside
-- sessions; all time-zone math happens here, in SQL, not in C.

-- The calendars optsnap knows. A stored calendar ('us-options') is only
-- defined between valid_from and valid_to: asking beyond that is an error,
-- not an empty answer, so a stale calendar can never hide a gap.
-- 'always' is computed (one session per UTC day), for tests and 24/7 venues.
CREATE TABLE trading_calendars (
    calendar    text PRIMARY KEY,
    description text NOT NULL,
    stored      boolean NOT NULL,
    valid_from  date,
    valid_to    date,
    CHECK (NOT stored OR (valid_from IS NOT NULL AND valid_to >= valid_from))
);
INSERT INTO trading_calendars (calendar, description, stored, valid_from, valid_to) VALUES
    ('us-options', 'US listed options: NYSE holidays and early closes, 09:30-16:00 America/New_York',
     true, DATE '2024-01-01', DATE '2027-12-31'),
    ('always', 'always open: one session per UTC day, 00:00-24:00', false, NULL, NULL);

-- NYSE holidays and early closes (13:00 America/New_York), 2024-2027, from
-- the exchange's published calendars. Rules applied: a Saturday holiday is
-- observed on Friday, a Sunday holiday on Monday, except that New Year's Day
-- 2028 (a Saturday) is not observed on Friday 2027-12-31. Early closes: the
-- day before Independence Day when that is a weekday session, the day after
-- Thanksgiving, Christmas Eve when that is a weekday session.
CREATE TABLE trading_holidays (
    day        date PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('closed', 'early_close')),
    close_time time,
    name       text,
    CHECK ((kind = 'early_close') = (close_time IS NOT NULL))
);
INSERT INTO trading_holidays (day, kind, close_time, name) VALUES
    -- 2024: 252 sessions
    ('2024-01-01', 'closed', NULL, 'New Year''s Day'),
    ('2024-01-15', 'closed', NULL, 'Martin Luther King Jr. Day'),
    ('2024-02-19', 'closed', NULL, 'Washington''s Birthday'),
    ('2024-03-29', 'closed', NULL, 'Good Friday'),
    ('2024-05-27', 'closed', NULL, 'Memorial Day'),
    ('2024-06-19', 'closed', NULL, 'Juneteenth'),
    ('2024-07-03', 'early_close', '13:00', 'Day before Independence Day'),
    ('2024-07-04', 'closed', NULL, 'Independence Day'),
    ('2024-09-02', 'closed', NULL, 'Labor Day'),
    ('2024-11-28', 'closed', NULL, 'Thanksgiving Day'),
    ('2024-11-29', 'early_close', '13:00', 'Day after Thanksgiving'),
    ('2024-12-24', 'early_close', '13:00', 'Christmas Eve'),
    ('2024-12-25', 'closed', NULL, 'Christmas Day'),
    -- 2025: 250 sessions
    ('2025-01-01', 'closed', NULL, 'New Year''s Day'),
    ('2025-01-09', 'closed', NULL, 'National Day of Mourning for President Carter'),
    ('2025-01-20', 'closed', NULL, 'Martin Luther King Jr. Day'),
    ('2025-02-17', 'closed', NULL, 'Washington''s Birthday'),
    ('2025-04-18', 'closed', NULL, 'Good Friday'),
    ('2025-05-26', 'closed', NULL, 'Memorial Day'),
    ('2025-06-19', 'closed', NULL, 'Juneteenth'),
    ('2025-07-03', 'early_close', '13:00', 'Day before Independence Day'),
    ('2025-07-04', 'closed', NULL, 'Independence Day'),
    ('2025-09-01', 'closed', NULL, 'Labor Day'),
    ('2025-11-27', 'closed', NULL, 'Thanksgiving Day'),
    ('2025-11-28', 'early_close', '13:00', 'Day after Thanksgiving'),
    ('2025-12-24', 'early_close', '13:00', 'Christmas Eve'),
    ('2025-12-25', 'closed', NULL, 'Christmas Day'),
    -- 2026: 251 sessions. July 4 is a Saturday: observed Friday July 3, and
    -- Thursday July 2 is a full session.
    ('2026-01-01', 'closed', NULL, 'New Year''s Day'),
    ('2026-01-19', 'closed', NULL, 'Martin Luther King Jr. Day'),
    ('2026-02-16', 'closed', NULL, 'Washington''s Birthday'),
    ('2026-04-03', 'closed', NULL, 'Good Friday'),
    ('2026-05-25', 'closed', NULL, 'Memorial Day'),
    ('2026-06-19', 'closed', NULL, 'Juneteenth'),
    ('2026-07-03', 'closed', NULL, 'Independence Day (observed)'),
    ('2026-09-07', 'closed', NULL, 'Labor Day'),
    ('2026-11-26', 'closed', NULL, 'Thanksgiving Day'),
    ('2026-11-27', 'early_close', '13:00', 'Day after Thanksgiving'),
    ('2026-12-24', 'early_close', '13:00', 'Christmas Eve'),
    ('2026-12-25', 'closed', NULL, 'Christmas Day'),
    -- 2027: 251 sessions. Juneteenth (Sat) observed Fri June 18, July 4 (Sun)
    -- observed Mon July 5, Christmas (Sat) observed Fri Dec 24; so the only
    -- early close is the day after Thanksgiving.
    ('2027-01-01', 'closed', NULL, 'New Year''s Day'),
    ('2027-01-18', 'closed', NULL, 'Martin Luther King Jr. Day'),
    ('2027-02-15', 'closed', NULL, 'Washington''s Birthday'),
    ('2027-03-26', 'closed', NULL, 'Good Friday'),
    ('2027-05-31', 'closed', NULL, 'Memorial Day'),
    ('2027-06-18', 'closed', NULL, 'Juneteenth (observed)'),
    ('2027-07-05', 'closed', NULL, 'Independence Day (observed)'),
    ('2027-09-06', 'closed', NULL, 'Labor Day'),
    ('2027-11-25', 'closed', NULL, 'Thanksgiving Day'),
    ('2027-11-26', 'early_close', '13:00', 'Day after Thanksgiving'),
    ('2027-12-24', 'closed', NULL, 'Christmas Day (observed)');

-- Stored sessions, one row per trading day. open_at/close_at are instants:
-- the local wall-clock time converted in SQL, so DST is PostgreSQL's tzdata.
CREATE TABLE trading_sessions (
    calendar    text NOT NULL REFERENCES trading_calendars (calendar),
    day         date NOT NULL,
    open_at     timestamptz NOT NULL,
    close_at    timestamptz NOT NULL,
    early_close boolean NOT NULL DEFAULT false,
    PRIMARY KEY (calendar, day),
    CHECK (close_at > open_at)
);
INSERT INTO trading_sessions (calendar, day, open_at, close_at, early_close)
SELECT 'us-options',
       g::date,
       (g::date + time '09:30') AT TIME ZONE 'America/New_York',
       (g::date + coalesce(h.close_time, time '16:00')) AT TIME ZONE 'America/New_York',
       coalesce(h.kind = 'early_close', false)
  FROM generate_series(date '2024-01-01', date '2027-12-31', interval '1 day') AS g
  LEFT JOIN trading_holidays h ON h.day = g::date
 WHERE extract(isodow FROM g) < 6
   AND h.kind IS DISTINCT FROM 'closed';

-- Sessions of calendar `cal` that overlap [from_ts, to_ts), ordered by day.
-- 'always' yields every UTC day touching the range, whole (not clipped).
-- Raises for an unknown calendar, and for a stored calendar asked about
-- days it does not define (extend it with a new migration).
CREATE FUNCTION optsnap_sessions(cal text, from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (day date, open_at timestamptz, close_at timestamptz)
LANGUAGE plpgsql
STABLE
ROWS 10
AS $fn$
DECLARE
    c trading_calendars%ROWTYPE;
BEGIN
    SELECT * INTO c FROM trading_calendars tc WHERE tc.calendar = cal;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'optsnap_sessions: unknown calendar "%"', cal
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_ts IS NULL OR to_ts IS NULL OR to_ts <= from_ts THEN
        RETURN;
    END IF;
    IF NOT c.stored THEN
        RETURN QUERY
            SELECT g::date,
                   g AT TIME ZONE 'UTC',
                   (g + interval '1 day') AT TIME ZONE 'UTC'
              FROM generate_series(date_trunc('day', from_ts AT TIME ZONE 'UTC'),
                                   (to_ts - interval '1 microsecond') AT TIME ZONE 'UTC',
                                   interval '1 day') AS g;
        RETURN;
    END IF;
    IF (from_ts AT TIME ZONE 'UTC')::date < c.valid_from
       OR ((to_ts - interval '1 microsecond') AT TIME ZONE 'UTC')::date > c.valid_to THEN
        RAISE EXCEPTION 'optsnap_sessions: calendar "%" is defined for % .. % only, asked % .. %',
            cal, c.valid_from, c.valid_to, from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A session lies within its local day, which is within one day of the
    -- UTC date: the bound on `day` lets the primary key serve the scan.
    RETURN QUERY
        SELECT s.day, s.open_at, s.close_at
          FROM trading_sessions s
         WHERE s.calendar = cal
           AND s.day >= (from_ts AT TIME ZONE 'UTC')::date - 1
           AND s.day <= (to_ts AT TIME ZONE 'UTC')::date + 1
           AND s.open_at < to_ts
           AND s.close_at > from_ts
         ORDER BY s.day;
END
$fn$;
