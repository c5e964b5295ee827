-- strigil.conf.lua: the Strigil daemon's configuration.
--
-- Lua syntax, run in a sandbox: plain assignments, tables for sections.
-- Every setting is listed here with its default value. An unknown name or
-- a value of the wrong type stops the daemon with this file's name and line.
--
-- Each setting can be overridden by an environment variable named STRIGIL_
-- plus the setting's name upper-cased, with '.' written as '_':
--   STRIGIL_DATABASE=:memory:  STRIGIL_QUIET_HOURS_FROM=22:00
--   STRIGIL_LUA_MEMORY_MB=64   STRIGIL_CONSOLE=false
-- STRIGIL_CONFIG picks another file than this one.

-- SQLite database file holding patients, plans and history. ":memory:"
-- keeps everything in memory (tests; lost on exit).
database = "data/strigil.db"

-- Folder of treatment protocols, one Lua file per protocol.
protocols = "scripts/protocols"

-- Protocol a new patient starts on unless the clinic picks another; the name
-- of a file in `protocols` without ".lua".
default_protocol = "iastm_home"

-- Folder of the engine's own texts, one file per language.
lang_dir = "scripts/lang"

-- Language of the engine's texts when a patient has not chosen one.
language = "en"

-- Time zone of a new patient until they set their own: an IANA name such
-- as "Europe/Berlin" or "America/New_York". Reminders follow its DST rules.
timezone = "UTC"

-- Daily reminder time ("HH:MM", patient's local time) when the protocol
-- does not set one.
reminder_time = "18:00"

-- No messages start in this window (patient's local time); anything due is
-- held until it ends. `from` later than `to` wraps midnight; equal times mean
-- no quiet hours.
quiet_hours = {
	from = "21:00",
	to = "08:00",
}

-- Limits for each protocol's Lua state.
lua = {
	memory_mb = 32,			-- memory per protocol state, in MiB
	instructions = 10000000,	-- Lua instructions per handler call
}

-- Least severe log level written to stderr: "debug", "info", "warn" or
-- "error".
log_level = "info"

-- Run the console chat adapter (stdin/stdout) under `strigil run`. Left out,
-- it runs only when telegram.token and matrix.homeserver are empty.
-- console = true

-- The built-in HTTP server of `strigil run`: GET /healthz (JSON status for
-- Docker's HEALTHCHECK and `strigil health`) and GET /metrics (Prometheus).
-- Neither shows patient data. It listens on loopback only unless `listen`
-- says otherwise ("0.0.0.0" for every interface, e.g. inside a container);
-- port 0 picks a free port, which the log names (event=http_listening).
http = {
	listen = "127.0.0.1",
	port = 8080,
	enabled = true,
}

-- The Telegram adapter (long polling, or a webhook). An empty token leaves it
-- off. The token
-- is a secret: prefer STRIGIL_TELEGRAM_TOKEN or STRIGIL_TELEGRAM_TOKEN_FILE to
-- writing it here; it is never logged. `api_url` can point at a self-hosted Bot
-- API server. Escalations go to `clinician_chat` (a chat id; empty: dropped
-- with a warning). Rates are messages a second, per chat and in all.
telegram = {
	token = "",
	api_url = "https://api.telegram.org",
	poll_timeout = 50,
	clinician_chat = "",
	rate_per_chat = 1,
	rate_global = 30,
	-- A webhook instead of polling: a public https:// URL that a TLS reverse
	-- proxy forwards to POST /telegram/webhook on the HTTP server, and a
	-- secret (1-256 of A-Za-z0-9_-; prefer STRIGIL_TELEGRAM_WEBHOOK_SECRET_FILE).
	webhook_url = "",
	webhook_secret = "",
	-- "HH:MM" in `timezone`: yesterday's summary to clinician_chat; "": none.
	summary_time = "",
	-- true: a reminder says only "Time for your session. Open the chat for
	-- details." until the patient taps for the details.
	private_reminders = false,
}

-- The Matrix adapter (/sync long polling). An empty homeserver leaves it off.
-- `user` is the bot's account ("@strigil:clinic.org" or its localpart); it
-- logs in with `password`, or uses `access_token` instead. Both are secrets:
-- prefer STRIGIL_MATRIX_PASSWORD_FILE (or ..._ACCESS_TOKEN_FILE); they are
-- never logged. Escalations go to `clinician_room` (a room id "!...:server").
-- Invites are accepted from `allowed_inviters`: user ids and ":server"
-- suffixes separated by commas; the others are declined.
matrix = {
	homeserver = "",
	user = "",
	password = "",
	access_token = "",
	clinician_room = "",
	allowed_inviters = "",
	poll_timeout = 30,
}
