print("ancre")
