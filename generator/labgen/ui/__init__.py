"""All printing: the verbs' records on a terminal (printers.py), trace and draw output
(views.py), and a workshop's live table of seats (live.py). Nothing else prints."""
