http = { port = "eighty" }
