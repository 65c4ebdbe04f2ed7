CREATE TABLE fragments (
    segment_id INTEGER NOT NULL REFERENCES segments (id),
    seq INTEGER NOT NULL,
    file_offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    start_utc_us INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    media_start INTEGER NOT NULL,         -- video decode time (timescale units) within the segment
    frames INTEGER NOT NULL,
    starts_with_key INTEGER NOT NULL,
    PRIMARY KEY (segment_id, seq)
) WITHOUT ROWID;
CREATE TABLE garbage (
    file_name TEXT PRIMARY KEY
);
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL REFERENCES streams (id),
    file_name TEXT NOT NULL UNIQUE,       -- relative to the data dir
    open INTEGER NOT NULL,                -- 1 while still being written
    start_utc_us INTEGER NOT NULL,
    end_utc_us INTEGER NOT NULL,
    bytes INTEGER NOT NULL,               -- indexed length: init + indexed fragments
    init_len INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    video_codec TEXT NOT NULL,            -- RFC 6381, e.g. avc1.64001f
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    audio_codec TEXT,
    video_timescale INTEGER NOT NULL
);
CREATE INDEX segments_by_open_start ON segments (open, start_utc_us);
CREATE INDEX segments_by_stream_start ON segments (stream_id, start_utc_us);
CREATE TABLE streams (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    kind TEXT NOT NULL,
    UNIQUE (camera, kind)
);
