local t = {}
t.t = t
http = t
