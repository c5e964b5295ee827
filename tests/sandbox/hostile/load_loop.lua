-- An endless loop while the file loads.
-- expect: instruction budget exceeded
-- when: load
while true do end --> here
return {}
