database = 
