"""`jiuzhang plan`: what a profile will cost (teacher calls, device hours, USD) and whether it fits, before it runs."""
