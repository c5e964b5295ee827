-- A pattern bomb while the file loads.
-- expect: pattern too costly
-- when: load
local n = string.find(string.rep("a", 1e5), ".-.-.-b") --> here
return {}
