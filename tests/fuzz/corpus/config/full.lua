database = ":memory:"
protocols = "scripts/protocols"
default_protocol = "iastm_home"
language = "en"
timezone = "Europe/Berlin"
reminder_time = "18:00"
quiet_hours = { from = "21:00", to = "08:00" }
lua = { memory_mb = 16, instructions = 1000000 }
log_level = "warn"
console = true
http = { listen = "127.0.0.1", port = 0, enabled = true }
telegram = { token = "", poll_timeout = 30, clinician_chat = "" }
