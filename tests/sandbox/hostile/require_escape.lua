-- Reaching outside the lib folder through a helper name.
-- expect: require: '../../../../etc/passwd' is not a helper name
-- when: load
local x = require("../../../../etc/passwd") --> here
return {
  id = "require_escape", version = 1, title = "Hostile require escape",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  steps = { "Nothing." },
}
