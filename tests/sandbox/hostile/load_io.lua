-- Touching io while the file loads.
-- expect: attempt to index a nil value (global 'io')
-- when: load
local pw = io.open("/etc/passwd"):read("a") --> here
return {}
