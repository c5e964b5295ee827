timezne = "UTC"
