local s = string.rep("ab", 1e5)
for w in s:gmatch("(a*)(b*)(a*)c") do end
language = s:gsub("%s*(a-)c", "")
