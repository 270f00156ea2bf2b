"""Workshops: a room of lab machines (seats) on one host, a web page per attendee with the
lab's steps and a terminal on their own machine, and a live grid for the instructor.

room.py the workshop's record (seats, tokens); seats.py bringing seats up and down;
grid.py the seats x steps grid; checker.py the background checks; terminal.py the
terminals (each page a tmux client on the seat's shells, which live on the seat's machine
and outlive the server); join.py handing out seats (the join page); sheet.py the printable
seat cards; watch.py the machines watched; app.py the web app; server.py serving it;
db.py the room's database (every check and run, the settings); report.py that
database as a report; lock.py one server per workshop.
"""
